/**
 * The workflows with a careless edit: a new step (a timer) before the sweep's first one. Sweeps
 * started before the edit cannot replay on it; replay.test.ts shows that the recorded histories
 * catch this.
 */
import { sleep } from '@temporalio/workflow';
import { sweep as current } from '../../workflows/sweep.ts';

export { sweepCell } from '../../workflows/cell.ts';

export async function sweep(...args: Parameters<typeof current>): ReturnType<typeof current> {
  await sleep('1 second');
  return current(...args);
}
