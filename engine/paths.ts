/**
 * Allowed roots: the folders whose files a sweep may name. A path from a spec is resolved with
 * every symlink followed and must lie under one of the roots; a path outside them is refused with
 * the same words whether or not it exists, so a spec cannot probe the worker's filesystem. Inside a
 * model or dataset folder, links must stay under the roots too (a config.json linked to /etc/passwd
 * is refused before anything reads it).
 */
import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { EngineInputError } from './types.ts';

/** Symlink hops followed before giving up (as the kernel's ELOOP limit). */
const MAX_LINKS = 40;
/** Folder depth searched for links inside a model or dataset folder (model files and data/ shards sit at depth 1-2). */
const MAX_DEPTH = 4;

/**
 * The real path of `path` with every symlink followed; the part that does not exist is appended to
 * the real path of its longest existing ancestor (a dangling link is followed by its target's name).
 */
export async function realPathOf(path: string, hops = 0): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    if (hops >= MAX_LINKS) return abs;
    const parent = dirname(abs);
    if (parent === abs) return abs;
    try {
      if ((await lstat(abs)).isSymbolicLink()) return realPathOf(resolve(parent, await readlink(abs)), hops + 1);
    } catch {
      /* not there, or not readable: resolve its parent */
    }
    return join(await realPathOf(parent, hops + 1), basename(abs));
  }
}

function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

export class DataRoots {
  private readonly given: string[];

  /** `roots`: folders (relative ones against the working directory); at least one. */
  constructor(roots: readonly string[]) {
    this.given = roots.filter((r) => r.trim() !== '').map((r) => resolve(r));
    if (this.given.length === 0) throw new EngineInputError('no allowed data roots given (ICL_SWEEP_DATA_ROOTS)', 'ICL_SWEEP_DATA_ROOTS');
  }

  get roots(): readonly string[] {
    return this.given;
  }

  /** The roots' own real paths (resolved at each check: a root may be created or remounted after start). */
  private async realRoots(): Promise<string[]> {
    return Promise.all(this.given.map((r) => realPathOf(r)));
  }

  private outside(what: string, path: string): EngineInputError {
    return new EngineInputError(`${what} ${path} is outside the allowed roots (${this.given.join(', ')}; ICL_SWEEP_DATA_ROOTS)`, path);
  }

  /**
   * The real path of a model or dataset folder named by a spec, when it and every link inside it lie
   * under the roots; else an EngineInputError "... is outside the allowed roots" that says nothing of
   * whether the path exists.
   */
  async folder(what: string, path: string): Promise<string> {
    const roots = await this.realRoots();
    const real = await realPathOf(path);
    if (!roots.some((r) => isUnder(real, r))) throw this.outside(what, path);
    await this.checkLinks(what, path, real, '', roots);
    return real;
  }

  /** Every link under `dir` (a folder's own subfolders, `rel` deep) must resolve under the roots. */
  private async checkLinks(what: string, given: string, dir: string, rel: string, roots: string[]): Promise<void> {
    if (rel.split('/').length > MAX_DEPTH) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // not a folder (or not there): the reader says so
    }
    for (const e of entries) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      let target = join(dir, e.name);
      if (e.isSymbolicLink()) {
        target = await realPathOf(target);
        if (!roots.some((r) => isUnder(target, r))) throw this.outside(what, `${given}${sep}${name}`);
      }
      if (e.isDirectory() || e.isSymbolicLink()) await this.checkLinks(what, given, target, name, roots);
    }
  }
}
