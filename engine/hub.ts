/**
 * Where a spec's model is on disk: `models[].path` as a local folder, or as a Hugging Face Hub id
 * (`org/name`, optional `@revision`) looked up in the local Hugging Face cache, never downloaded;
 * and `models[].file`, the ONNX file within that folder.
 *
 * The cache is the one `huggingface-cli download` and huggingface_hub write:
 *
 *   <cache>/models--<org>--<name>/refs/<branch or tag>         the commit hash it points at
 *   <cache>/models--<org>--<name>/snapshots/<commit>/...       the files (links into blobs/)
 *   <cache>/models--<org>--<name>/blobs/<hash>
 *
 * with <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (huggingface_hub's
 * order). A path that exists as a folder is always the folder, even when it also reads as an id.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { EngineInputError, type ModelSpec } from './types.ts';

/** A model's folder (config.json, tokenizer.json) and its ONNX file, relative to the folder. */
export interface ModelLocation {
  dir: string;
  file: string;
}

/** The ONNX file of the exporters' layout, then of the onnx-community layout. */
const DEFAULT_MODEL_FILES = ['model.onnx', 'onnx/model.onnx'] as const;

const HUB_ID = /^([A-Za-z0-9][A-Za-z0-9._-]*)\/([A-Za-z0-9][A-Za-z0-9._-]*)(?:@([A-Za-z0-9][A-Za-z0-9._/-]*))?$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** Whether `path` reads as a Hub id `org/name[@revision]` (it may also name a local folder). */
export function isHubId(path: string): boolean {
  return HUB_ID.test(path);
}

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'hub');
  return join(homedir(), '.cache', 'huggingface', 'hub');
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function listing(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The snapshot folder of a Hub id in the cache; throws naming the cache and what it does hold. */
function hubSnapshot(id: string, env: NodeJS.ProcessEnv = process.env): string {
  const m = HUB_ID.exec(id);
  if (!m) throw new EngineInputError(`model folder ${resolve(id)} does not exist (nor is "${id}" a Hub id org/name[@revision])`, id);
  const [, org, name, revision = 'main'] = m;
  const cache = hubCacheDir(env);
  const repo = join(cache, `models--${org}--${name}`);
  const fetchHint = `(it is never downloaded here: \`huggingface-cli download ${org}/${name}${revision === 'main' ? '' : ` --revision ${revision}`}\` with HF_HOME or HF_HUB_CACHE pointing at this cache)`;
  if (!isFolder(repo)) {
    throw new EngineInputError(`model path "${id}": no such folder (${resolve(id)}), and no Hub model ${org}/${name} in the Hugging Face cache ${cache} ${fetchHint}`, id);
  }
  let commit = revision;
  if (!COMMIT.test(revision)) {
    const ref = join(repo, 'refs', revision);
    if (!existsSync(ref)) {
      const refs = listing(join(repo, 'refs'));
      throw new EngineInputError(
        `model "${org}/${name}": the cache ${cache} has no revision "${revision}" (refs: ${refs.join(', ') || 'none'}; snapshots: ${listing(join(repo, 'snapshots')).join(', ') || 'none'}) ${fetchHint}`,
        id,
      );
    }
    commit = readFileSync(ref, 'utf8').trim();
  }
  const snapshot = join(repo, 'snapshots', commit);
  if (!isFolder(snapshot)) {
    throw new EngineInputError(`model "${org}/${name}@${revision}": snapshot ${commit} is missing from the cache ${cache} ${fetchHint}`, id);
  }
  return snapshot;
}

/** `file` as a path inside the folder: relative, no "..", an .onnx file. */
function checkFile(file: string): string {
  const clean = normalize(file);
  if (isAbsolute(file) || clean === '..' || clean.startsWith(`..${sep}`) || !clean.endsWith('.onnx')) {
    throw new EngineInputError(`model file "${file}" must be an .onnx file inside the model folder (a relative path such as onnx/model_fp16.onnx)`, 'file');
  }
  return clean.split(sep).join('/');
}

/** The ONNX files under a folder (two levels deep), for messages. */
function onnxFiles(dir: string): string[] {
  const top = listing(dir);
  const nested = top.filter((f) => isFolder(join(dir, f))).flatMap((d) => listing(join(dir, d)).map((f) => `${d}/${f}`));
  return [...top, ...nested].filter((f) => f.endsWith('.onnx'));
}

/** The folder and ONNX file of a model spec. */
export function locateModel(model: Pick<ModelSpec, 'path' | 'file'>, env: NodeJS.ProcessEnv = process.env): ModelLocation {
  const local = resolve(model.path);
  const dir = isFolder(local) ? local : hubSnapshot(model.path, env);
  if (model.file !== undefined) {
    const file = checkFile(model.file);
    if (!existsSync(join(dir, file))) {
      throw new EngineInputError(`model file ${file} not found in ${dir} (ONNX files there: ${onnxFiles(dir).join(', ') || 'none'})`, join(dir, file));
    }
    return { dir, file };
  }
  const file = DEFAULT_MODEL_FILES.find((f) => existsSync(join(dir, f)));
  if (!file) {
    const found = onnxFiles(dir);
    throw new EngineInputError(
      `no ${DEFAULT_MODEL_FILES.join(' or ')} in model folder ${dir}${found.length ? `; choose one of ${found.join(', ')} with "file"` : ''}`,
      join(dir, DEFAULT_MODEL_FILES[0]),
    );
  }
  return { dir, file };
}

/** Graph files and their external data: model.onnx, model.onnx_data, model.onnx.data, model.onnx_data_1. */
const ONNX_FILE = /\.onnx(?:[._]data(?:_\d+)?)?$/;

/**
 * Which files of a model folder are the model: everything but the ONNX graphs and weight files it
 * does not use, so the other variants of an onnx-community folder (model_fp16.onnx, ...) change
 * neither its fingerprint nor its cell keys, and a folder whose only ONNX files are the model's own hashes
 * every file it has.
 */
export function modelFileFilter(file: string, externalData: readonly string[]): (relativePath: string) => boolean {
  const used = new Set([file, ...externalData]);
  return (rel) => !ONNX_FILE.test(rel) || used.has(rel);
}
