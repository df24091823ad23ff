/** Shared pieces of the orchestration tests: fixture paths, generated datasets, a per-file setup. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { REPO_ROOT, connectClient, quietTemporalLogs, startWorker, uniqueTaskQueue } from '../support/temporal.ts';
import type { Db } from '../../db/client.ts';
import type { WorkerConfig } from '../../worker/config.ts';

export const MODELS = path.join(REPO_ROOT, 'test/fixtures/models');
export const SST2 = path.join(REPO_ROOT, 'test/fixtures/datasets/sst2');

export interface Suite {
  db: TestDatabase;
  client: Client;
  taskQueue: string;
  tmp: string;
  teardown(): Promise<void>;
}

/**
 * A fresh database, a Temporal client, a unique task queue and a temp folder for one test file; with
 * `worker`, also an in-process worker on the task queue (its cache in the temp folder unless the config
 * says otherwise), stopped first by teardown().
 */
export async function setupSuite(prefix: string, opts: { worker?: Partial<WorkerConfig> } = {}): Promise<Suite> {
  await quietTemporalLogs();
  const db = await createTestDatabase({ prefix: `icl_orch_${prefix.replace(/[^a-z0-9]/g, '_')}` });
  const { client, close } = await connectClient();
  const tmp = await mkdtemp(path.join(os.tmpdir(), `icl-${prefix}-`));
  const taskQueue = uniqueTaskQueue(prefix);
  const worker = opts.worker && (await startWorker(taskQueue, { db: db.db, config: { cacheDir: path.join(tmp, 'cache'), ...opts.worker } }));
  return {
    db,
    client,
    taskQueue,
    tmp,
    async teardown() {
      await worker?.stop();
      await terminateRunning(client, taskQueue).catch(() => {});
      await close().catch(() => {});
      await db.drop().catch(() => {});
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** A sentiment dataset (sst2 layout: sentence, label) with short sentences (the fixtures' context is 128 tokens). */
export async function makeSentimentDataset(dir: string, rows: { train: number; validation: number; test: number }): Promise<string> {
  const pos = ['a great film', 'wonderful and warm', 'truly delightful', 'a joy to watch', 'brilliant acting', 'moving and funny'];
  const neg = ['a dull mess', 'boring and flat', 'truly awful', 'a waste of time', 'terrible acting', 'tedious and cold'];
  await mkdir(dir, { recursive: true });
  for (const [split, n] of Object.entries(rows)) {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const label = i % 2;
      const words = label ? pos : neg;
      lines.push(JSON.stringify({ sentence: words[(i * 7 + split.length) % words.length], label }));
    }
    await writeFile(path.join(dir, `${split}.jsonl`), `${lines.join('\n')}\n`);
  }
  return dir;
}

export async function count(db: Db, query: string): Promise<number> {
  const res = await db.execute(sql.raw(query));
  const rows = (res as unknown as { rows: { n: number | string }[] }).rows;
  return Number(rows[0].n);
}

export async function rows<T = Record<string, unknown>>(db: Db, query: string): Promise<T[]> {
  const res = await db.execute(sql.raw(query));
  return (res as unknown as { rows: T[] }).rows;
}

type History = temporal.api.history.v1.IHistory;

/**
 * Ends what a test left running (a failed assertion, a timeout): sweeps and their cell workflows, whose
 * ids start with the test's task queue, would otherwise sit on the shared server with no worker.
 */
export async function terminateRunning(client: Client, idPrefix: string): Promise<void> {
  for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH '${idPrefix}' AND ExecutionStatus = 'Running'` })) {
    await client.workflow.getHandle(wf.workflowId).terminate('test over').catch(() => {});
  }
}

/** The histories of every run of a workflow (first run first), following continue-as-new. */
export async function runHistories(client: Client, workflowId: string, firstRunId: string): Promise<{ runId: string; history: History }[]> {
  const out: { runId: string; history: History }[] = [];
  for (let runId: string | undefined = firstRunId; runId; ) {
    const history: History = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    out.push({ runId, history });
    const last = history.events?.[history.events.length - 1];
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return out;
}

/** The arguments a continue-as-new event passes to the next run, decoded. */
export function continuedAsNewArgs(history: History): unknown[] | undefined {
  const last = history.events?.[history.events.length - 1];
  const payloads = last?.workflowExecutionContinuedAsNewEventAttributes?.input?.payloads;
  return payloads?.map((p) => defaultPayloadConverter.fromPayload(p as never));
}

/** Seconds since the epoch of an event's time. */
export function eventSeconds(event: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }): number {
  const t = event.eventTime!;
  return Number(t.seconds) + (t.nanos ?? 0) / 1e9;
}
