/**
 * Datasets: a folder of split files (see files.ts) checked against a task. Every present split
 * must have the task's fields; the train split must have rows, all labelled with labels the task
 * knows; a validation or test split is either fully labelled or fully unlabelled (label column
 * absent, or every label -1 / null / "", as in GLUE's and SuperGLUE's test splits). Messages name
 * file, row and field, never a value from the file.
 *
 * Fingerprint: sha256 of (each file's path relative to the folder + its bytes) and the canonical
 * JSON of the resolved task definition (templates, verbalizers, label map, defaults).
 */
import { createHash } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import type { CustomTask, DatasetSpec } from '../types.ts';
import type { ResolvedTask } from '../tasks/definitions.ts';
import { resolveTask } from '../tasks/registry.ts';
import { EngineInputError, type DatasetInfo } from '../types.ts';
import type { DataRoots } from '../paths.ts';
import { DEFAULT_LIMITS, folderSignature, readDatasetFolder, SPLITS, type DatasetLimits, type Row, type SplitName, type SplitRows } from './files.ts';

export { DEFAULT_LIMITS, discoverSplits, formatBytes, readDatasetFolder, SPLITS, type DatasetLimits, type Row, type SplitName } from './files.ts';

/** Bound of the parsed datasets a worker keeps in memory (their values as text), by default. */
export const DEFAULT_DATASET_CACHE_BYTES = 1024 * 2 ** 20;

export interface PreparedSplit {
  split: SplitName;
  /** The file (or first shard) for messages. */
  source: string;
  rows: Row[];
  /** Class index per row; null when the split is unlabelled. */
  labels: number[] | null;
}

export interface PreparedDataset {
  dir: string;
  task: ResolvedTask;
  splits: Partial<Record<SplitName, PreparedSplit>>;
  fingerprint: string;
  info: DatasetInfo;
}

/** JSON with object keys sorted, recursively (stable hashing). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function isUnlabelled(value: unknown): boolean {
  return value === undefined || value === null || value === -1 || value === '-1' || value === '';
}

function fileOfRow(split: SplitRows, i: number): string {
  let offset = 0;
  for (let f = 0; f < split.files.length; f++) {
    offset += split.counts[f];
    if (i < offset) return split.files[f];
  }
  return split.source;
}

function checkFields(split: SplitRows, task: ResolvedTask): void {
  if (split.rows.length === 0) return;
  for (const field of task.fields) {
    if (!split.rows.some((r) => r[field] !== undefined)) {
      throw new EngineInputError(`${split.source}: missing field "${field}" (task ${task.name} needs it; no row has it)`, split.files[0]);
    }
    const bad = split.rows.findIndex((r) => r[field] === undefined || r[field] === null);
    if (bad >= 0) {
      const file = fileOfRow(split, bad);
      throw new EngineInputError(`${file}: row ${bad}: missing field "${field}" (empty or null)`, file);
    }
  }
}

function labelKeysText(task: ResolvedTask): string {
  return Object.keys(task.labels).map((k) => JSON.stringify(k)).join(', ');
}

function mapLabels(split: SplitRows, task: ResolvedTask, mustBeLabelled: boolean): number[] | null {
  const field = task.labelField;
  const known = (v: unknown) => v !== undefined && v !== null && Object.prototype.hasOwnProperty.call(task.labels, String(v));
  if (split.rows.length > 0 && !mustBeLabelled && split.rows.every((r) => isUnlabelled(r[field]) && !known(r[field]))) return null;
  if (split.rows.length > 0 && split.rows.every((r) => r[field] === undefined)) {
    throw new EngineInputError(`${split.source}: missing field "${field}" (the label of task ${task.name})`, split.files[0]);
  }
  const labels: number[] = new Array(split.rows.length);
  for (let i = 0; i < split.rows.length; i++) {
    const raw = split.rows[i][field];
    const key = typeof raw === 'string' ? raw : raw === undefined || raw === null ? '' : String(raw);
    const cls = Object.prototype.hasOwnProperty.call(task.labels, key) ? task.labels[key] : undefined;
    if (cls === undefined) {
      const file = fileOfRow(split, i);
      const what = isUnlabelled(raw) ? 'is missing or unlabelled' : 'has a value that is not one of its labels';
      throw new EngineInputError(`${file}: row ${i}: field "${field}" ${what}; task ${task.name} knows ${labelKeysText(task)}`, file);
    }
    labels[i] = cls;
  }
  return labels;
}

export function prepareDataset(read: Awaited<ReturnType<typeof readDatasetFolder>>, task: ResolvedTask): PreparedDataset {
  const splits: Partial<Record<SplitName, PreparedSplit>> = {};
  const train = read.splits.train;
  if (train && train.rows.length === 0) throw new EngineInputError(`${train.source}: the train split has no rows`, train.files[0]);
  for (const name of SPLITS) {
    const split = read.splits[name];
    if (!split) continue;
    checkFields(split, task);
    const labels = mapLabels(split, task, name === 'train');
    splits[name] = { split: name, source: split.source, rows: split.rows, labels };
  }
  const fingerprint = createHash('sha256')
    .update(`files:${read.filesHash}\0task:${canonicalJson(task)}`)
    .digest('hex');
  return {
    dir: read.dir,
    task,
    splits,
    fingerprint,
    info: { fingerprint, task: task.name, classes: [...task.classes], kind: task.kind, defaultSeed: task.defaults.seed },
  };
}

/** What a recipe module (engine/data/recipes/index.ts, owned by the gguf member) must export. */
export interface RecipeModule {
  prepareRecipe(name: string, opts: { cacheDir: string }): Promise<{ path: string; task: string | CustomTask }>;
}

async function resolveRecipe(name: string, cacheDir: string): Promise<{ path: string; task: string | CustomTask }> {
  let mod: Partial<RecipeModule>;
  try {
    mod = (await import(new URL('./recipes/index.ts', import.meta.url).href)) as Partial<RecipeModule>;
  } catch (e) {
    throw new EngineInputError(`dataset recipe "${name}": recipes are not available in this build (${(e as Error).message})`, name);
  }
  if (typeof mod.prepareRecipe !== 'function') {
    throw new EngineInputError(`dataset recipe "${name}": engine/data/recipes/index.ts does not export prepareRecipe`, name);
  }
  return mod.prepareRecipe(name, { cacheDir });
}

/**
 * Where a dataset spec's files are and which task applies (a spec's task overrides a recipe's). With
 * `roots`, a path must lie under them (recipes are prepared by the engine in its own cache folder).
 */
export async function resolveDatasetSpec(
  spec: DatasetSpec,
  cacheDir: string,
  roots?: DataRoots,
): Promise<{ dir: string; task: string | CustomTask }> {
  if (spec.recipe !== undefined) {
    const r = await resolveRecipe(spec.recipe, cacheDir);
    return { dir: resolvePath(r.path), task: spec.task ?? r.task };
  }
  if (spec.path === undefined) throw new EngineInputError(`dataset "${spec.name}" has neither "path" nor "recipe"`, spec.name);
  if (spec.task === undefined) throw new EngineInputError(`dataset "${spec.name}" is given by path and needs a "task"`, spec.name);
  const dir = roots ? await roots.folder('dataset folder', spec.path) : resolvePath(spec.path);
  return { dir, task: spec.task };
}

export interface DatasetCacheOptions {
  limits?: DatasetLimits;
  /** Bound of the kept datasets, counted as the bytes of their values as text; default DEFAULT_DATASET_CACHE_BYTES. */
  maxBytes?: number;
  /** Folders dataset paths must lie under; undefined: any path. */
  roots?: DataRoots;
  /** Task folders of the engine (a dataset's own taskDirs are looked up after them). */
  taskDirs?: readonly string[];
}

/**
 * Loads and checks datasets, keeping the parsed rows in memory per (folder, task), least recently
 * used first out once they hold more than `maxBytes` (a dataset larger than that is not kept). A
 * cached entry is reused while the files' sizes and modification times are unchanged.
 */
export class DatasetCache {
  private entries = new Map<string, { signature: string; dataset: PreparedDataset; bytes: number }>();
  private pending = new Map<string, Promise<PreparedDataset>>();
  private heldBytes = 0;
  private readonly limits: DatasetLimits;
  private readonly maxBytes: number;
  private readonly roots?: DataRoots;
  private readonly taskDirs: readonly string[];

  constructor(
    private readonly cacheDir: string,
    opts: DatasetCacheOptions = {},
  ) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_DATASET_CACHE_BYTES;
    this.roots = opts.roots;
    this.taskDirs = opts.taskDirs ?? [];
  }

  /** Bytes the kept datasets hold (their values as text). */
  get bytes(): number {
    return this.heldBytes;
  }

  async get(spec: DatasetSpec): Promise<PreparedDataset> {
    const { dir, task } = await resolveDatasetSpec(spec, this.cacheDir, this.roots);
    // A spec's task folders are paths from a client like its dataset paths: they must lie under the roots too.
    const specTaskDirs = await Promise.all((spec.taskDirs ?? []).map((d) => (this.roots ? this.roots.folder('task folder', d) : d)));
    const resolved = resolveTask(task, { dirs: [...this.taskDirs, ...specTaskDirs], protocol: spec.protocol });
    const key = `${dir}\0${canonicalJson(resolved)}`;
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const p = (async () => {
      const signature = await folderSignature(dir);
      const hit = this.entries.get(key);
      if (hit && hit.signature === signature) {
        this.entries.delete(key);
        this.entries.set(key, hit);
        return hit.dataset;
      }
      if (hit) this.drop(key);
      const read = await readDatasetFolder(dir, this.limits);
      const dataset = prepareDataset(read, resolved);
      this.keep(key, { signature: read.signature, dataset, bytes: read.bytes });
      return dataset;
    })();
    this.pending.set(key, p);
    try {
      return await p;
    } finally {
      this.pending.delete(key);
    }
  }

  private keep(key: string, entry: { signature: string; dataset: PreparedDataset; bytes: number }): void {
    if (entry.bytes > this.maxBytes) return;
    this.entries.set(key, entry);
    this.heldBytes += entry.bytes;
    for (const oldest of this.entries.keys()) {
      if (this.heldBytes <= this.maxBytes) break;
      this.drop(oldest);
    }
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.heldBytes -= e.bytes;
  }
}

/** Reads and checks a dataset folder against a task (no caching). */
export async function loadDataset(dir: string, task: string | CustomTask, limits: DatasetLimits = DEFAULT_LIMITS): Promise<PreparedDataset> {
  return prepareDataset(await readDatasetFolder(resolvePath(dir), limits), resolveTask(task));
}
