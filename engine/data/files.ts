/**
 * Reading a dataset folder in the layouts Hugging Face datasets use:
 *
 *   <dir>/train.parquet | train.jsonl | train.json | train.csv   (and validation.*, test.*)
 *   <dir>/data/train-00000-of-00001.parquet                      (the hub's layout; shards in order)
 *   <dir>/train-00000-of-00002.parquet, ...                      (shards at the top level)
 *
 * `.json` is a JSON array of objects or JSON Lines; `.jsonl` / `.ndjson` are JSON Lines; `.csv` has a
 * header row (values stay strings; labels are mapped through the task). Parquet integers that
 * arrive as BigInt are turned into numbers.
 *
 * Bounded input: the split files together (Parquet: uncompressed) may hold at most
 * `limits.datasetBytes`, checked before any row is parsed, and one example (a JSON line, a CSV
 * record, a row's values) at most `limits.exampleBytes`, checked while reading: JSON Lines are
 * streamed, so an oversized line is refused after reading at most the limit of it.
 *
 * Errors name the file, the row or line and what is wrong, never the file's bytes (a spec may point
 * at any file under the allowed roots; the message is stored and sent to Temporal).
 */
import { createHash, type Hash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { EngineInputError } from '../types.ts';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];
export type Row = Record<string, unknown>;

export interface SplitFiles {
  split: SplitName;
  /** Absolute paths, in shard order. */
  files: string[];
}

export interface SplitRows {
  split: SplitName;
  files: string[];
  /** A name for messages: the single file, or the first shard and a count. */
  source: string;
  rows: Row[];
  /** Rows per file, in the order of `files` (to name the shard a bad row is in). */
  counts: number[];
}

export interface DatasetLimits {
  /** Largest example: one JSON line, one CSV record, or the values of one Parquet / JSON-array row, in bytes. */
  exampleBytes: number;
  /** Largest dataset: its split files together (Parquet: uncompressed), in bytes. */
  datasetBytes: number;
}

/**
 * Generous for real benchmark data (the paper's tasks are under 50 MB, their longest examples a few
 * KB; long-document sets such as IMDb reviews stay under 20 KB per example) and small enough that
 * one bad file cannot exhaust a worker.
 */
export const DEFAULT_LIMITS: DatasetLimits = { exampleBytes: 1 << 20, datasetBytes: 512 * 2 ** 20 };

/** "1 MiB", "512 KiB", "3.4 GiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

function exampleTooLarge(file: string, where: string, limits: DatasetLimits): EngineInputError {
  return new EngineInputError(`${file}: ${where} is larger than the limit of ${formatBytes(limits.exampleBytes)} per example (ICL_SWEEP_MAX_EXAMPLE_KB)`, file);
}

const EXTENSIONS = ['parquet', 'jsonl', 'ndjson', 'json', 'csv'] as const;
const FILE_PATTERN = /^(train|validation|test)(?:-(\d+)-of-(\d+))?\.(parquet|jsonl|ndjson|json|csv)$/;

async function listFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** Finds the split files of a dataset folder. Throws EngineInputError when the folder or its train split is missing. */
export async function discoverSplits(dir: string): Promise<Partial<Record<SplitName, SplitFiles>>> {
  let info;
  try {
    info = await stat(dir);
  } catch {
    throw new EngineInputError(`dataset folder ${dir} does not exist`, dir);
  }
  if (!info.isDirectory()) throw new EngineInputError(`dataset path ${dir} is not a folder`, dir);
  const out: Partial<Record<SplitName, SplitFiles>> = {};
  for (const folder of [dir, join(dir, 'data')]) {
    const found = new Map<SplitName, { name: string; shard: number; ext: string }[]>();
    for (const name of await listFiles(folder)) {
      const m = FILE_PATTERN.exec(name);
      if (!m) continue;
      const split = m[1] as SplitName;
      if (out[split]) continue; // the top level wins over data/
      const list = found.get(split) ?? [];
      list.push({ name, shard: m[2] === undefined ? 0 : Number(m[2]), ext: m[4] });
      found.set(split, list);
    }
    for (const [split, list] of found) {
      const exts = new Set(list.map((f) => f.ext));
      if (exts.size > 1) {
        throw new EngineInputError(
          `dataset folder ${folder} has the ${split} split in several formats (${[...exts].join(', ')}); keep one`,
          join(folder, list[0].name),
        );
      }
      list.sort((a, b) => a.shard - b.shard || a.name.localeCompare(b.name));
      out[split] = { split, files: list.map((f) => join(folder, f.name)) };
    }
  }
  if (!out.train) {
    throw new EngineInputError(
      `dataset folder ${dir} has no train split (expected train.{${EXTENSIONS.join(',')}} or data/train-00000-of-00001.parquet)`,
      join(dir, 'train'),
    );
  }
  return out;
}

function normalise(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** Bytes one row's values take as text (what the example-size limit measures for parsed rows). */
function rowBytes(row: Row): number {
  let n = 0;
  for (const v of Object.values(row)) {
    if (typeof v === 'string') n += Buffer.byteLength(v);
    else if (v !== null && typeof v === 'object') n += Buffer.byteLength(JSON.stringify(v) ?? '');
    else n += 8;
  }
  return n;
}

function checkRows(rows: Row[], file: string, limits: DatasetLimits, where: (i: number) => string): void {
  rows.forEach((r, i) => {
    if (rowBytes(r) > limits.exampleBytes) throw exampleTooLarge(file, where(i), limits);
  });
}

/** Where a JSON.parse error is, without the text it quotes (the file's bytes). */
function jsonErrorWhere(e: unknown): string {
  const message = (e as Error)?.message ?? '';
  const at = /at position (\d+)/.exec(message);
  if (at) return ` (at character ${Number(at[1]) + 1})`;
  if (/end of JSON input/i.test(message)) return ' (it ends early)';
  return '';
}

const CHUNK = 1 << 20;
const NEWLINE = 0x0a;

/**
 * The rows of a JSON Lines file, streamed: each line is parsed as it completes, and a line longer
 * than the example limit is refused as soon as that many bytes of it have been read. `hash` sees
 * every byte read.
 */
async function readJsonLines(file: string, hash: Hash, limits: DatasetLimits): Promise<Row[]> {
  const rows: Row[] = [];
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let parts: Buffer[] = [];
    let partBytes = 0;
    let line = 0;
    const finishLine = (bytes: Buffer) => {
      line++;
      let text = bytes.toString('utf8');
      if (line === 1) text = text.replace(/^\uFEFF/, '');
      if (text.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new EngineInputError(`${file}: line ${line} is not valid JSON${jsonErrorWhere(e)}`, file);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new EngineInputError(`${file}: line ${line} is not a JSON object`, file);
      rows.push(value as Row);
    };
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      let from = 0;
      for (let nl = chunk.indexOf(NEWLINE, from); nl >= 0; nl = chunk.indexOf(NEWLINE, from)) {
        if (partBytes + nl - from > limits.exampleBytes) throw exampleTooLarge(file, `row ${rows.length} (line ${line + 1})`, limits);
        const piece = chunk.subarray(from, nl);
        finishLine(parts.length ? Buffer.concat([...parts, piece]) : Buffer.from(piece));
        parts = [];
        partBytes = 0;
        from = nl + 1;
      }
      if (from < chunk.length) {
        partBytes += chunk.length - from;
        if (partBytes > limits.exampleBytes) throw exampleTooLarge(file, `row ${rows.length} (line ${line + 1})`, limits);
        parts.push(Buffer.from(chunk.subarray(from)));
      }
    }
    if (partBytes > 0) finishLine(Buffer.concat(parts));
  } finally {
    await fh.close();
  }
  return rows;
}

/** The whole file (already checked against the dataset limit), into `hash` too. */
async function readWhole(file: string, hash: Hash): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const bytes = await fh.readFile();
    hash.update(bytes);
    return bytes;
  } finally {
    await fh.close();
  }
}

/** Whether a .json file is one JSON array (else JSON Lines): its first character that is not blank. */
async function startsWithBracket(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    for (let pos = 0; ; pos += buf.length) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return false;
      const text = buf.subarray(0, bytesRead).toString('utf8').replace(/^\uFEFF/, '').trimStart();
      if (text.length > 0) return text.startsWith('[');
    }
  } finally {
    await fh.close();
  }
}

function parseParquet(file: string, bytes: Buffer, limits: DatasetLimits): Promise<Row[]> {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let uncompressed = 0;
  try {
    for (const group of parquetMetadata(ab).row_groups) uncompressed += Number(group.total_byte_size);
  } catch {
    throw new EngineInputError(`${file}: cannot read as Parquet (not a Parquet file, or truncated)`, file);
  }
  if (uncompressed > limits.datasetBytes) {
    throw new EngineInputError(
      `${file}: holds ${formatBytes(uncompressed)} uncompressed, over the limit of ${formatBytes(limits.datasetBytes)} per dataset (ICL_SWEEP_MAX_DATASET_MB)`,
      file,
    );
  }
  return parquetReadObjects({ file: ab }).then(
    (rows) => {
      for (const row of rows as Row[]) for (const k of Object.keys(row)) row[k] = normalise(row[k]);
      return rows as Row[];
    },
    () => {
      throw new EngineInputError(`${file}: cannot read as Parquet (corrupt, or an encoding the reader lacks)`, file);
    },
  );
}

function parseCsvText(file: string, text: string, limits: DatasetLimits): Row[] {
  try {
    return parseCsv(text, { columns: true, skip_empty_lines: true, relax_quotes: false, max_record_size: limits.exampleBytes }) as Row[];
  } catch (e) {
    const { code, lines } = e as { code?: string; lines?: number };
    if (code === 'CSV_MAX_RECORD_SIZE') throw exampleTooLarge(file, `the record at line ${lines}`, limits);
    throw new EngineInputError(`${file}: not valid CSV${lines ? ` at line ${lines}` : ''}${code ? ` (${code})` : ''}`, file);
  }
}

function parseJsonArray(file: string, text: string): Row[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new EngineInputError(`${file}: not valid JSON${jsonErrorWhere(e)}`, file);
  }
  if (!Array.isArray(value) || value.some((r) => r === null || typeof r !== 'object' || Array.isArray(r))) {
    throw new EngineInputError(`${file}: expected a JSON array of objects`, file);
  }
  return value as Row[];
}

/** The rows of one split file; every byte read goes into `hash`. */
async function readOne(file: string, hash: Hash, limits: DatasetLimits): Promise<Row[]> {
  const ext = file.slice(file.lastIndexOf('.') + 1);
  if (ext === 'jsonl' || ext === 'ndjson' || (ext === 'json' && !(await startsWithBracket(file)))) return readJsonLines(file, hash, limits);
  const bytes = await readWhole(file, hash);
  if (ext === 'parquet') {
    const rows = await parseParquet(file, bytes, limits);
    checkRows(rows, file, limits, (i) => `row ${i}`);
    return rows;
  }
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  if (ext === 'csv') return parseCsvText(file, text, limits);
  const rows = parseJsonArray(file, text);
  checkRows(rows, file, limits, (i) => `row ${i}`);
  return rows;
}

export interface ReadDataset {
  dir: string;
  splits: Partial<Record<SplitName, SplitRows>>;
  /** sha256 over each file's path relative to the folder and its contents. */
  filesHash: string;
  /** Size and mtime of every file read, to notice a changed folder. */
  signature: string;
  /** Bytes the parsed rows' values take as text (what the dataset cache counts against its bound). */
  bytes: number;
}

/** Reads every split of a dataset folder into rows, within `limits`. */
export async function readDatasetFolder(dir: string, limits: DatasetLimits = DEFAULT_LIMITS): Promise<ReadDataset> {
  const found = await discoverSplits(dir);
  const files = SPLITS.flatMap((split) => found[split]?.files ?? []);
  const sizes = new Map<string, { size: number; mtimeMs: number }>();
  let total = 0;
  for (const file of files) {
    let st;
    try {
      st = await stat(file);
    } catch {
      throw new EngineInputError(`${file}: cannot read`, file);
    }
    sizes.set(file, st);
    total += st.size;
  }
  if (total > limits.datasetBytes) {
    throw new EngineInputError(
      `dataset ${dir}: its split files hold ${formatBytes(total)}, over the limit of ${formatBytes(limits.datasetBytes)} per dataset (ICL_SWEEP_MAX_DATASET_MB)`,
      dir,
    );
  }
  const hash = createHash('sha256');
  const splits: Partial<Record<SplitName, SplitRows>> = {};
  const sig: string[] = [];
  let bytes = 0;
  for (const split of SPLITS) {
    const sf = found[split];
    if (!sf) continue;
    const rows: Row[] = [];
    const counts: number[] = [];
    for (const file of sf.files) {
      const st = sizes.get(file)!;
      sig.push(`${file}:${st.size}:${st.mtimeMs}`);
      hash.update(`${relative(dir, file)}\0${st.size}\0`);
      let part: Row[];
      try {
        part = await readOne(file, hash, limits);
      } catch (e) {
        if (e instanceof EngineInputError) throw e;
        throw new EngineInputError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'I/O error'})`, file);
      }
      for (const r of part) {
        rows.push(r);
        bytes += rowBytes(r);
      }
      counts.push(part.length);
    }
    const source = sf.files.length === 1 ? sf.files[0] : `${sf.files[0]} (+${sf.files.length - 1} shards)`;
    splits[split] = { split, files: sf.files, source, rows, counts };
  }
  // Parsed text can outgrow the files (Parquet's dictionary encoding repeats one value for many rows).
  if (bytes > limits.datasetBytes) {
    throw new EngineInputError(
      `dataset ${dir}: its rows hold ${formatBytes(bytes)} of text, over the limit of ${formatBytes(limits.datasetBytes)} per dataset (ICL_SWEEP_MAX_DATASET_MB)`,
      dir,
    );
  }
  return { dir, splits, filesHash: hash.digest('hex'), signature: sig.join('|'), bytes };
}

/** Size+mtime signature of the files a dataset folder would be read from (cheap; for cache validation). */
export async function folderSignature(dir: string): Promise<string> {
  const found = await discoverSplits(dir);
  const sig: string[] = [];
  for (const split of SPLITS) {
    for (const file of found[split]?.files ?? []) {
      const st = await stat(file);
      sig.push(`${file}:${st.size}:${st.mtimeMs}`);
    }
  }
  return sig.join('|');
}
