/** Content identity of a folder of files (a model), independent of where it lives. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

function isLinkToFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false; // a dangling link
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
    await new Promise<void>((done, fail) => {
      createReadStream(join(dir, f))
        .on('data', (c) => h.update(c))
        .on('end', () => done())
        .on('error', fail);
    });
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
