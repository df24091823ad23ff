/**
 * prepareSweep: checks the spec's models and datasets once (sweepspec/inputs.ts: every problem at
 * once, by field, model and dataset), and registers the sweep. It reads the model and dataset files,
 * so it runs on the cells task queue, on the workers that mount them; the workflows-only orchestrator
 * needs no access to them.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { upsertSweep } from '../db/queries.ts';
import type { PreparedSweep } from '../sweepspec/cells.ts';
import { checkSweepInputs, problemsMessage } from '../sweepspec/inputs.ts';
import type { PrepareSweepInput } from './types.ts';
import type { CellActivityContext } from './context.ts';

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
        if (problems.length > 0) {
          // Input errors are not retried: the sweep fails at once with every problem listed.
          throw ApplicationFailure.create({ type: 'InvalidSpec', nonRetryable: true, message: problemsMessage(problems), details: [problems] });
        }
        await upsertSweep(ctx.db, { name: spec.name, workflowId, spec });
        return prepared;
      } finally {
        clearInterval(timer);
      }
    },
  };
}
