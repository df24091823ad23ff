/**
 * `npm run worker`: a sweep worker configured from the environment (see worker/config.ts).
 * SIGTERM / SIGINT: stop polling, give running cells ICL_SWEEP_SHUTDOWN_GRACE_SECONDS to finish
 * (the SDK's own signal handling), close the engine, database and connection, exit 0.
 */
import { workerConfigFromEnv } from './config.ts';
import { createSweepWorker } from './create.ts';
import { cellsTaskQueue } from '../workflows/queues.ts';
import { recentSweepProgress } from '../db/queries.ts';

async function main(): Promise<void> {
  const config = workerConfigFromEnv();
  const metricsModule = await import('../activities/metrics.ts');
  if (process.env.ICL_SWEEP_TEMPORAL_METRICS_PORT) {
    // The SDK's own worker metrics (temporal_*); must come before any connection.
    await metricsModule.installTemporalMetrics(metricsModule.metricsPortsFromEnv().temporal);
  }
  const server = config.metricsPort !== undefined ? await metricsModule.startMetricsServer(config.metricsPort) : undefined;
  const worker = await createSweepWorker(config, { metrics: metricsModule.metrics });
  metricsModule.metrics.workerInfo?.({
    worker: config.workerName,
    taskQueue: config.taskQueue,
    executionProvider: config.executionProvider,
    engineVersion: worker.engineVersion,
  });
  if (config.roles.includes('workflows')) {
    // The orchestrator exports each recent sweep's progress as its workflow recorded it.
    metricsModule.exportSweepProgress(() => recentSweepProgress(worker.context.db, { runningSeconds: 7 * 86_400, endedSeconds: 6 * 3600 }));
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      console.log(`${signal}: draining (running cells get ${config.shutdownGraceSeconds}s to finish)`);
      metricsModule.setReady(false);
      worker.shutdown();
    });
  }
  const queues = [config.roles.includes('workflows') ? config.taskQueue : null, config.roles.includes('cells') ? cellsTaskQueue(config.taskQueue, config.executionProvider) : null].filter(Boolean);
  console.log(
    `icl-sweep worker ${config.workerName}: ${config.temporal.address} namespace ${config.temporal.namespace}, task queues ${queues.join(' + ')}, ` +
      `database ${worker.context.db.location}, concurrency ${config.concurrency} (+${config.prefetch} prefetched), ${config.executionProvider}` +
      (server ? `, metrics on :${server.port}/metrics` : ''),
  );
  try {
    await worker.run();
  } finally {
    await server?.close().catch(() => {});
  }
  console.log('worker stopped');
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
