/**
 * The readers of one split file, each within the size limits: Parquet, JSON Lines (streamed: an
 * oversized line is refused after reading at most the limit of it), a JSON array, CSV. Parquet
 * integers that arrive as BigInt are turned into numbers; CSV values stay strings.
 *
 * Errors name the file, the row or line and what is wrong, never the file's bytes (a spec may point
 * at any file under the allowed roots; the message is stored and sent to Temporal).
 */
import type { Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { parseJson } from '../json.ts';
import { EngineInputError } from '../types.ts';

export type Row = Record<string, unknown>;

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

function normalise(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** Bytes one row's values take as text (what the example-size limit measures for parsed rows). */
export function rowBytes(row: Row): number {
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
      const value = parseJson(text, `${file}: line ${line}`, file);
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
  const value = parseJson(text, file, file);
  if (!Array.isArray(value) || value.some((r) => r === null || typeof r !== 'object' || Array.isArray(r))) {
    throw new EngineInputError(`${file}: expected a JSON array of objects`, file);
  }
  return value as Row[];
}

/** The rows of one split file; every byte read goes into `hash`. */
export async function readSplitFile(file: string, hash: Hash, limits: DatasetLimits): Promise<Row[]> {
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

