/** Temporal connection settings: Temporal's environment configuration (variables and TOML profiles), plus the old aliases. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TLSConfig } from '@temporalio/client';
import { connectTemporal } from '../../cli/client.ts';
import { temporalConfigFromEnv } from '../../worker/config.ts';
import { TEMPORAL_ADDRESS } from '../support/temporal.ts';

const dir = mkdtempSync(join(tmpdir(), 'icl-envconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const cert = file('client.pem', 'CERT BYTES');
const key = file('client.key', 'KEY BYTES');
const ca = file('ca.pem', 'CA BYTES');
// No user config file may leak in from the machine running the tests.
const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString() : undefined);
const tlsOf = (c: { tls?: TLSConfig | boolean }) => c.tls as TLSConfig;
const NO_FILE = { TEMPORAL_CONFIG_FILE: file('other.toml', '[profile.other]\naddress = "elsewhere:1"\n') };

describe('temporalConfigFromEnv', () => {
  it('defaults to localhost:7233, namespace "default", no TLS', () => {
    expect(temporalConfigFromEnv({ ...NO_FILE })).toEqual({ address: 'localhost:7233', namespace: 'default' });
  });

  it("reads Temporal's standard TLS variables", () => {
    const c = temporalConfigFromEnv({
      ...NO_FILE,
      TEMPORAL_ADDRESS: 'ns.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ns',
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'frontend',
    });
    expect(c.address).toBe('ns.tmprl.cloud:7233');
    expect(c.namespace).toBe('ns');
    const tls = tlsOf(c);
    expect(text(tls.clientCertPair?.crt)).toBe('CERT BYTES');
    expect(text(tls.clientCertPair?.key)).toBe('KEY BYTES');
    expect(text(tls.serverRootCACertificate)).toBe('CA BYTES');
    expect(tls.serverNameOverride).toBe('frontend');
  });

  it('keeps TEMPORAL_TLS_CERT / _KEY / _CA as aliases, the standard name winning when both are set', () => {
    const c = temporalConfigFromEnv({ ...NO_FILE, TEMPORAL_TLS_CERT: cert, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_CA: ca });
    expect(text(tlsOf(c).clientCertPair?.crt)).toBe('CERT BYTES');
    expect(text(tlsOf(c).serverRootCACertificate)).toBe('CA BYTES');
    const both = temporalConfigFromEnv({ ...NO_FILE, TEMPORAL_TLS_CA: cert, TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca });
    expect(text(tlsOf(both).serverRootCACertificate)).toBe('CA BYTES');
  });

  it('an API key turns TLS on; a certificate without its key is an error naming both variables', () => {
    expect(temporalConfigFromEnv({ ...NO_FILE, TEMPORAL_API_KEY: 'k' })).toMatchObject({ apiKey: 'k', tls: true });
    expect(() => temporalConfigFromEnv({ ...NO_FILE, TEMPORAL_TLS_CERT: cert })).toThrow(/TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH/);
  });

  it('reads a TOML profile, and variables override it', () => {
    const toml = file('temporal.toml', '[profile.default]\naddress = "a:1"\n\n[profile.staging]\naddress = "staging:7233"\nnamespace = "research"\n[profile.staging.grpc_meta]\nteam = "icl"\n');
    expect(temporalConfigFromEnv({ TEMPORAL_CONFIG_FILE: toml })).toMatchObject({ address: 'a:1', namespace: 'default' });
    const staging = temporalConfigFromEnv({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' });
    expect(staging).toMatchObject({ address: 'staging:7233', namespace: 'research', metadata: { team: 'icl' } });
    expect(temporalConfigFromEnv({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging', TEMPORAL_NAMESPACE: 'other' }).namespace).toBe('other');
  });

  it('an unreadable configuration file is an error naming the file', () => {
    const empty = file('empty.toml', '');
    expect(() => temporalConfigFromEnv({ TEMPORAL_CONFIG_FILE: empty })).toThrow(new RegExp(`Temporal client configuration \\(${empty}, profile default\\)`));
  });

  it('connects to the real server through a profile', async () => {
    const toml = file('local.toml', `[profile.local]\naddress = "${TEMPORAL_ADDRESS}"\nnamespace = "default"\n`);
    const { client, close } = await connectTemporal(temporalConfigFromEnv({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'local' }));
    try {
      const info = await client.workflowService.getSystemInfo({});
      expect(info.serverVersion).toMatch(/\d+\.\d+/);
    } finally {
      await close();
    }
  });
});
