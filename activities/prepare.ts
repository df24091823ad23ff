/**
 * prepareSweep: checks the spec's models and datasets once (sweepspec/inputs.ts: every problem at
 * once, by field, model and dataset), checks the grid against the cell limit, and claims the sweep
 * name for its grid (one grid per name). It reads the model and dataset files, so it runs on the
 * cells task queue, on the workers that mount them; the workflows-only orchestrator needs no access
 * to them.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { claimSweep } from '../db/queries.ts';
import type { PreparedSweep } from '../sweepspec/cells.ts';
import { gridIdentity, gridLimitProblem, gridShape, gridSplit } from '../sweepspec/grid.ts';
import { checkSweepInputs, problemsMessage } from '../sweepspec/inputs.ts';
import type { PrepareSweepInput } from './types.ts';
import type { CellActivityContext } from './context.ts';
import { activityOutage } from './outage.ts';

export function prepareActivities(ctx: CellActivityContext) {
  return {
    async prepareSweep({ spec, workflowId }: PrepareSweepInput): Promise<PreparedSweep> {
      const actx = Context.current();
      let step = 'starting';
      // Loading a large model or fingerprinting its files can take minutes: heartbeat on a timer meanwhile.
      const every = Math.max(200, Math.min(5000, (actx.info.heartbeatTimeoutMs ?? 30_000) / 3));
      const timer = setInterval(() => actx.heartbeat({ step }), every);
      try {
        const { prepared, problems } = await checkSweepInputs(ctx.engine, spec, ctx.engineVersion, {
          onStep: (what) => {
            step = what;
            actx.heartbeat({ step });
          },
        });
        const planned = problems.length === 0 ? gridShape(spec, prepared, gridSplit(spec)).size : 0;
        const tooBig = problems.length === 0 ? gridLimitProblem(planned, ctx.maxCells) : undefined;
        if (tooBig) problems.push(`(grid): ${tooBig}`);
        if (problems.length === 0) {
          step = 'claiming the sweep name';
          const claim = await activityOutage(ctx.outageToleranceMs, () => ({ step }))('claim the sweep name', () =>
            claimSweep(ctx.db, { name: spec.name, workflowId, spec, grid: gridIdentity(spec, prepared), replace: spec.replace, planned }),
          );
          if (!claim.claimed) {
            problems.push(
              `name: sweep "${spec.name}" already holds another grid (last started as workflow ${claim.holder.workflowId}, ${claim.holder.updatedAt.toISOString()}); ` +
                'give this sweep another name, or set "replace": true to re-link the name to this grid (stored cells stay and are reused)',
            );
          }
        }
        if (problems.length > 0) {
          // Input errors are not retried: the sweep fails at once with every problem listed.
          throw ApplicationFailure.create({ type: 'InvalidSpec', nonRetryable: true, message: problemsMessage(problems), details: [problems] });
        }
        return prepared;
      } finally {
        clearInterval(timer);
      }
    },
  };
}
