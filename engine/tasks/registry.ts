/**
 * The task registry: task files (task-file.ts) read from the builtin folder (builtin/, the seven
 * protocol tasks) and from the folders a user names (the sweep spec's `taskDirs`, the
 * environment's ICL_SWEEP_TASK_DIRS). A task is found by its name or one of its aliases
 * (lm-evaluation-harness's names, e.g. ag_news). A name defined twice is an error, so a user
 * folder cannot silently replace a protocol task.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, delimiter, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { BUILTIN_TASKS, type BuiltinTask, type Protocol } from '../vocabulary.ts';
import { didYouMean } from '../suggest.ts';
import { EngineInputError, type CustomTask } from '../types.ts';
import { taskEntry, type TaskEntry } from './task-file.ts';
import { resolveCustomTask, type ResolvedTask } from './definitions.ts';

export const BUILTIN_TASK_DIR = fileURLToPath(new URL('./builtin/', import.meta.url));
/** Environment variable with extra task folders, separated like PATH. */
export const TASK_DIRS_ENV = 'ICL_SWEEP_TASK_DIRS';

export function taskDirsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[TASK_DIRS_ENV] ?? '').split(delimiter).filter((d) => d.trim() !== '');
}

/** Where to look and which variant to resolve. */
export interface TaskLookup {
  /** Folders besides the builtin one, in order. */
  dirs?: readonly string[];
  protocol?: Protocol;
}

const EXTENSIONS = new Set(['.yaml', '.yml']);

/** One YAML file as a task entry; parse errors give the position, never the file's text. */
function readTaskFile(file: string): TaskEntry {
  let value: unknown;
  try {
    value = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    const code = e instanceof YAMLParseError ? ` (${e.code})` : '';
    throw new EngineInputError(`task file ${file}: invalid YAML${where}${code}`, file);
  }
  return taskEntry(value, file, basename(file, extname(file)));
}

/** A folder's task files, re-read when a file is added, removed or changed. */
const folders = new Map<string, { signature: string; entries: TaskEntry[] }>();

function folderEntries(dir: string): TaskEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => EXTENSIONS.has(extname(f))).sort();
  } catch {
    throw new EngineInputError(`task folder ${dir} cannot be read (it must be a folder of .yaml task files)`, dir);
  }
  const files = names.map((f) => join(dir, f));
  const signature = JSON.stringify(files.map((f) => {
    const st = statSync(f);
    return [f, st.size, st.mtimeMs];
  }));
  const hit = folders.get(dir);
  if (hit && hit.signature === signature) return hit.entries;
  const entries = files.map(readTaskFile);
  folders.set(dir, { signature, entries });
  return entries;
}

export interface TaskRegistry {
  /** Every task, builtin first, in folder and file order. */
  entries: TaskEntry[];
  /** The task called `name` (or aliased so), or undefined. */
  find(name: string): TaskEntry | undefined;
}

/** The registry over the builtin folder and `dirs` (resolved against the working directory). */
export function taskRegistry(dirs: readonly string[] = []): TaskRegistry {
  const folderList = [BUILTIN_TASK_DIR, ...dirs.map((d) => resolve(d))].filter((d, i, all) => all.indexOf(d) === i);
  const entries = folderList.flatMap(folderEntries);
  const byName = new Map<string, TaskEntry>();
  for (const entry of entries) {
    for (const name of [entry.name, ...entry.aliases]) {
      const other = byName.get(name);
      if (other && other !== entry) {
        throw new EngineInputError(`task "${name}" is defined twice: in ${other.source} and in ${entry.source}; rename one`, entry.source);
      }
      byName.set(name, entry);
    }
  }
  return { entries, find: (name) => byName.get(name) };
}

/** "agnews (alias ag_news), cb, ..." for messages. */
export function describeTaskNames(registry: TaskRegistry): string {
  return registry.entries.map((e) => (e.aliases.length ? `${e.name} (alias ${e.aliases.join(', ')})` : e.name)).join(', ');
}

/** The named task under the lookup's protocol; an unknown name lists every known one. */
export function resolveNamedTask(name: string, lookup: TaskLookup = {}): ResolvedTask {
  const registry = taskRegistry(lookup.dirs);
  const entry = registry.find(name);
  if (!entry) {
    throw new EngineInputError(
      `unknown task "${name}"${didYouMean(name, registry.entries.flatMap((e) => [e.name, ...e.aliases]))}; known tasks: ${describeTaskNames(registry)}. A task file <name>.yaml in a folder named by the spec's "taskDirs" or ${TASK_DIRS_ENV} adds one`,
      name,
    );
  }
  return entry.resolve(lookup.protocol ?? 'default');
}

/** A dataset's task: a name from the registry, or the spec's inline custom task (the same under every protocol). */
export function resolveTask(task: string | CustomTask, lookup: TaskLookup = {}): ResolvedTask {
  return typeof task === 'string' ? resolveNamedTask(task, lookup) : resolveCustomTask(task);
}

/** The seven protocol tasks as the default protocol resolves them. */
export const BUILTIN_DEFINITIONS = Object.fromEntries(BUILTIN_TASKS.map((t) => [t, resolveNamedTask(t)])) as Record<BuiltinTask, ResolvedTask>;
