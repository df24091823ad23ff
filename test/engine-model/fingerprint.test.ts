/** The model folder's content fingerprint: sha256 over names, sizes and bytes, read in overlapping chunks. */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprintFolder } from '../../engine/fingerprint.ts';

const root = mkdtempSync(join(tmpdir(), 'icl-fingerprint-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fingerprintFolder', () => {
  it('hashes files larger than its read chunks exactly as one sha256 over the whole bytes, and memoises the result', async () => {
    const dir = join(root, 'model');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    // 9 MiB + 3 bytes: two whole 4 MiB chunks, a partial one; varied bytes so a skipped or repeated chunk shows
    const big = Buffer.alloc(9 * 2 ** 20 + 3);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    writeFileSync(join(dir, 'onnx', 'model.onnx_data'), big);
    writeFileSync(join(dir, 'config.json'), '{"model_type":"gpt2"}');
    const expected = createHash('sha256');
    for (const f of ['config.json', 'onnx/model.onnx_data']) {
      const bytes = readFileSync(join(dir, f));
      expected.update(`${f}\0${bytes.length}\0`).update(bytes);
    }
    const cache = join(root, 'cache');
    expect(await fingerprintFolder(dir, cache)).toBe(expected.digest('hex'));
    expect(readdirSync(join(cache, 'fingerprints'))).toHaveLength(1);
    expect(await fingerprintFolder(dir, cache)).toBe(await fingerprintFolder(dir));
  });
});
