/** A Temporal client from the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS / API key: worker/config.ts). */
import { Client, Connection } from '@temporalio/client';
import { temporalConfigFromEnv, type TemporalConfig } from '../worker/config.ts';

export async function connectTemporal(config: TemporalConfig = temporalConfigFromEnv()): Promise<{ client: Client; close(): Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: config.address,
      connectTimeout: '10 seconds',
      ...(config.tls !== undefined ? { tls: config.tls } : {}),
      ...(config.apiKey ? { apiKey: config.apiKey } : {}),
      ...(config.metadata ? { metadata: config.metadata } : {}),
    });
  } catch (err) {
    throw new Error(`cannot reach the Temporal server at ${config.address} (TEMPORAL_ADDRESS): ${(err as Error).message}`);
  }
  return { client: new Client({ connection, namespace: config.namespace }), close: () => connection.close() };
}
