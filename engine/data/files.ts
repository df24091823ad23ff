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
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
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

function parseJsonLines(text: string, file: string): Row[] {
  const rows: Row[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new EngineInputError(`${file}: line ${i + 1} is not valid JSON (${(e as Error).message})`, file);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new EngineInputError(`${file}: line ${i + 1} is not a JSON object`, file);
    }
    rows.push(value as Row);
  });
  return rows;
}

async function readOne(file: string, bytes: Buffer): Promise<Row[]> {
  const ext = file.slice(file.lastIndexOf('.') + 1);
  try {
    if (ext === 'parquet') {
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      const rows = (await parquetReadObjects({ file: ab })) as Row[];
      for (const row of rows) for (const k of Object.keys(row)) row[k] = normalise(row[k]);
      return rows;
    }
    const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
    if (ext === 'csv') {
      return parseCsv(text, { columns: true, skip_empty_lines: true, relax_quotes: false }) as Row[];
    }
    if (ext === 'json') {
      const trimmed = text.trimStart();
      if (trimmed.startsWith('[')) {
        const value = JSON.parse(text) as unknown;
        if (!Array.isArray(value) || value.some((r) => r === null || typeof r !== 'object' || Array.isArray(r))) {
          throw new EngineInputError(`${file}: expected a JSON array of objects`, file);
        }
        return value as Row[];
      }
    }
    return parseJsonLines(text, file);
  } catch (e) {
    if (e instanceof EngineInputError) throw e;
    throw new EngineInputError(`${file}: cannot read as ${ext}: ${(e as Error).message}`, file);
  }
}

export interface ReadDataset {
  dir: string;
  splits: Partial<Record<SplitName, SplitRows>>;
  /** sha256 over each file's path relative to the folder and its contents. */
  filesHash: string;
  /** Size and mtime of every file read, to notice a changed folder. */
  signature: string;
}

/** Reads every split of a dataset folder into rows. */
export async function readDatasetFolder(dir: string): Promise<ReadDataset> {
  const found = await discoverSplits(dir);
  const hash = createHash('sha256');
  const splits: Partial<Record<SplitName, SplitRows>> = {};
  const sig: string[] = [];
  for (const split of SPLITS) {
    const sf = found[split];
    if (!sf) continue;
    const rows: Row[] = [];
    const counts: number[] = [];
    for (const file of sf.files) {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (e) {
        throw new EngineInputError(`${file}: cannot read: ${(e as Error).message}`, file);
      }
      const st = await stat(file);
      sig.push(`${file}:${st.size}:${st.mtimeMs}`);
      hash.update(`${relative(dir, file)}\0${bytes.length}\0`);
      hash.update(bytes);
      const part = await readOne(file, bytes);
      for (const r of part) rows.push(r);
      counts.push(part.length);
    }
    const source = sf.files.length === 1 ? sf.files[0] : `${sf.files[0]} (+${sf.files.length - 1} shards)`;
    splits[split] = { split, files: sf.files, source, rows, counts };
  }
  return { dir, splits, filesHash: hash.digest('hex'), signature: sig.join('|') };
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
