/** Following a running sweep: a live progress bar from the workflow's `progress` query, then its result. */
import type { WorkflowHandle } from '@temporalio/client';
import type { SweepProgress, SweepResult } from '../workflows/sweep.ts';

export function renderBar(p: SweepProgress, width = 30): string {
  const finished = p.done + p.reused + p.failed;
  const frac = p.total > 0 ? Math.min(1, finished / p.total) : 0;
  const full = Math.round(frac * width);
  const bar = '█'.repeat(full) + '░'.repeat(width - full);
  return (
    `[${bar}] ${finished}/${p.total || '?'} ${(frac * 100).toFixed(0).padStart(3)}%  ` +
    `done ${p.done}  reused ${p.reused}  failed ${p.failed}  in flight ${p.inFlight}  ${p.phase}` +
    (p.run > 1 ? `  run ${p.run}` : '')
  );
}

/** Shows progress until the workflow closes; resolves to its result (rejects with its failure). */
export async function follow(handle: WorkflowHandle, out: NodeJS.WriteStream = process.stderr, everyMs = 500): Promise<SweepResult> {
  const tty = out.isTTY === true;
  let last = '';
  let lastPrinted = 0;
  let closed = false;
  const result = handle.result() as Promise<SweepResult>;
  result.then(
    () => (closed = true),
    () => (closed = true),
  );
  const show = (line: string, force = false) => {
    if (tty) out.write(`\r${line}\x1b[K`);
    else if (force || (line !== last && Date.now() - lastPrinted > 5000)) {
      out.write(`${line}\n`);
      lastPrinted = Date.now();
    }
    last = line;
  };
  while (!closed) {
    try {
      show(renderBar((await handle.query('progress')) as SweepProgress));
    } catch {
      /* not started yet, or between runs (continue-as-new) */
    }
    await Promise.race([result.catch(() => {}), new Promise((r) => setTimeout(r, everyMs))]);
  }
  try {
    const r = await result;
    show(renderBar({ sweep: r.sweep, phase: 'done', total: r.total, done: r.done, reused: r.reused, failed: r.failed, inFlight: 0, run: r.runs }), true);
    if (tty) out.write('\n');
    return r;
  } catch (err) {
    if (tty && last) out.write('\n');
    throw err;
  }
}
