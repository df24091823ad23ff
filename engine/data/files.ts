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
 * Bounded input: the split files together may hold at most `limits.datasetBytes`, checked from their
 * sizes before any row is parsed (and again on the parsed text); each file's reader (formats.ts)
 * checks one example against `limits.exampleBytes` while reading.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { EngineInputError } from '../types.ts';
import { DEFAULT_LIMITS, formatBytes, readSplitFile, rowBytes, type DatasetLimits, type Row } from './formats.ts';

export { DEFAULT_LIMITS, formatBytes, type DatasetLimits, type Row } from './formats.ts';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

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
        part = await readSplitFile(file, hash, limits);
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
