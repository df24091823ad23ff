/**
 * Replay safety: the histories recorded from representative sweeps (test/replay/histories, made by
 * `npm run histories:record`) replay on the current workflow code with Temporal's replayer, so a
 * change to workflows/ that breaks determinism fails CI. The check can fail: the same histories
 * against a careless edit (a new first step) give determinism violations, and against the same edit
 * behind patched() replay cleanly.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, quietTemporalLogs } from '../support/temporal.ts';
import { WORKFLOWS_PATH } from '../../worker/create.ts';

const DIR = path.join(REPO_ROOT, 'test/replay/histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const histories = files.map((file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(path.join(DIR, file), 'utf8')));
  // The workflow id the history ran under: cell workflow ids derive from it.
  return { workflowId: history.events![0].workflowExecutionStartedEventAttributes!.workflowId!, history };
});

/** Replays every history, one at a time in file order; the error of each (undefined: it replayed). */
async function replay(workflowsPath: string): Promise<Map<string, Error | undefined>> {
  await quietTemporalLogs();
  const results = new Map<string, Error | undefined>();
  for await (const r of Worker.runReplayHistories({ workflowsPath, replayName: path.basename(workflowsPath, '.ts') }, histories)) results.set(files[results.size], r.error);
  return results;
}

describe('recorded sweep histories', () => {
  it('cover a window, continue-as-new, failures, a cancellation, the selection step and the cells', () => {
    for (const scenario of ['window.run1', 'continue-as-new.run2', 'failure.run1', 'cancellation.run1', 'selection.run1', 'invalid-spec.run1']) {
      expect(files).toContain(`${scenario}.json`);
    }
    for (const cell of ['cell-done', 'cell-failed', 'cell-cancelled']) expect(files.some((f) => f.includes(cell)), cell).toBe(true);
  });

  it('replay on the current workflow code', async () => {
    const results = await replay(WORKFLOWS_PATH);
    expect([...results.keys()].sort()).toEqual(files);
    for (const [file, error] of results) expect(error, `${file}: ${error?.message}`).toBeUndefined();
  }, 120_000);

  it('catch a change that breaks determinism (a new first step in the sweep)', async () => {
    const results = await replay(path.join(REPO_ROOT, 'test/replay/drifted-workflows.ts'));
    for (const [file, error] of results) {
      if (file.includes('.cell-')) expect(error, file).toBeUndefined(); // the cell workflow did not change
      else expect(error, file).toBeInstanceOf(DeterminismViolationError);
    }
  }, 120_000);

  it('replay the same change behind patched()', async () => {
    const results = await replay(path.join(REPO_ROOT, 'test/replay/patched-workflows.ts'));
    for (const [file, error] of results) expect(error, `${file}: ${error?.message}`).toBeUndefined();
  }, 120_000);
});
