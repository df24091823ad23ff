/** Content identity of a folder of files (a model), independent of where it lives. */
import { createHash, type Hash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

function isLinkToFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false; // a dangling link
  }
}

const CHUNK = 4 << 20;

/**
 * Feeds a file's bytes to `h` at disk speed: large positioned reads, the next one under way while the
 * current one is hashed, so reading and hashing overlap.
 */
async function hashFile(h: Hash, path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
    let position = 0;
    let which = 0;
    let pending = fh.read(buffers[which], 0, CHUNK, position);
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) break;
      const filled = buffers[which];
      position += bytesRead;
      which ^= 1;
      pending = fh.read(buffers[which], 0, CHUNK, position);
      h.update(filled.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

/**
 * sha256 over the folder's files (sorted relative names, sizes and contents), not its path; links to
 * files count as the files they point at (the Hugging Face cache links snapshots to blobs/). `keep`
 * leaves files out (e.g. the ONNX variants a model does not use). With a cacheDir, the result is
 * remembered under <cacheDir>/fingerprints keyed by (path, names, sizes, mtimes), so a multi-GB model
 * is read for hashing once, not at every load.
 */
export async function fingerprintFolder(dir: string, cacheDir?: string, keep: (relativePath: string) => boolean = () => true): Promise<string> {
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if ((e.isFile() || (e.isSymbolicLink() && isLinkToFile(join(dir, r)))) && keep(r)) files.push(r);
    }
  };
  walk('');
  files.sort();
  const stats = files.map((f) => {
    const st = statSync(join(dir, f));
    return [f, st.size, st.mtimeMs] as const;
  });
  const memo = cacheDir
    ? join(cacheDir, 'fingerprints', createHash('sha256').update(JSON.stringify([resolve(dir), stats])).digest('hex'))
    : null;
  if (memo && existsSync(memo)) {
    const v = readFileSync(memo, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(v)) return v;
  }
  const h = createHash('sha256');
  for (const [f, size] of stats) {
    h.update(`${f}\0${size}\0`);
    await hashFile(h, join(dir, f));
  }
  const hex = h.digest('hex');
  if (memo) {
    try {
      await mkdir(dirname(memo), { recursive: true });
      await writeFile(memo, hex);
    } catch {
      // a cache write failure must not fail the load
    }
  }
  return hex;
}
