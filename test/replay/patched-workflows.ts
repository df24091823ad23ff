/**
 * The same edit as drifted-workflows.ts, rolled out as README.md says: behind patched(), which is
 * false while a history recorded before the edit replays and true for every new workflow task, so
 * old sweeps go on unchanged and new ones take the new step.
 */
import { patched, sleep } from '@temporalio/workflow';
import { sweep as current } from '../../workflows/sweep.ts';

export { sweepCell } from '../../workflows/cell.ts';

export async function sweep(...args: Parameters<typeof current>): ReturnType<typeof current> {
  if (patched('pause-before-validate')) await sleep('1 second');
  return current(...args);
}
