/**
 * Captured hidden states of the unpruned model, kept for layer-sliced runs: blocks of numbers (a prefix's
 * hidden state entering one layer, one layer's states of a batch of rows, a prefix's past key values) held
 * in memory up to a byte bound; beyond it the least recently used blocks are written to a spill folder
 * under the cache folder and read back when a cell needs them. Prompt sets (a prefix with the rows run on
 * top of it) are kept up to a number and a disk bound, least recently used dropped whole.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Numbers as the runtime returns them: float32, or float16 bit patterns. */
export type Numbers = Float32Array | Uint16Array;

export interface Block {
  readonly owner: PromptStates;
  readonly bytes: number;
  readonly half: boolean;
  /** In memory, or null when only its spill file holds it. */
  data: Numbers | null;
  file: string | null;
}

/** Where one row's states are: a run's blocks (one per layer) and the row's positions within them. */
export interface RowStates {
  blocks: (Block | null)[];
  offset: number;
  length: number;
}

/** A prefix and the rows captured on top of it. */
export interface PromptStates {
  readonly key: string;
  /** The prefix's length, its hidden state entering each layer ([P, hidden]; null at layers without a cut) and its past key values. */
  prefix: { length: number; hidden: (Block | null)[]; past: Block[] } | null;
  rows: Map<string, RowStates>;
  blocks: Set<Block>;
  /** Cells using the set: a set in use is never dropped. */
  users: number;
}

export interface StateLimits {
  /** Bytes of states kept in memory. */
  memoryBytes: number;
  /** Bytes of spilled states kept on disk (whole prompt sets dropped beyond it). */
  diskBytes: number;
  /** Prompt sets kept. */
  promptSets: number;
}

export function idsKey(ids: readonly number[]): string {
  return createHash('sha256').update(Int32Array.from(ids)).digest('base64url');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class StateStore {
  private readonly sets = new Map<string, PromptStates>();
  /** Blocks in memory, least recently used first. */
  private readonly resident = new Set<Block>();
  private memory = 0;
  private disk = 0;
  private folder: string | null = null;
  private files = 0;

  constructor(
    private readonly spillRoot: string,
    private readonly limits: StateLimits,
  ) {}

  /** The prompt set of a prefix (made empty if new), most recently used and held until `release(set)`. */
  acquire(pastIds: readonly number[]): PromptStates {
    const key = idsKey(pastIds);
    let set = this.sets.get(key);
    if (set) this.sets.delete(key);
    else set = { key, prefix: null, rows: new Map(), blocks: new Set(), users: 0 };
    set.users++;
    this.sets.set(key, set);
    this.trimSets();
    return set;
  }

  release(set: PromptStates): void {
    set.users--;
    this.trimSets();
  }

  /** Keeps `data` as a block of `set`. */
  add(set: PromptStates, data: Numbers): Block {
    const block: Block = { owner: set, bytes: data.byteLength, half: data instanceof Uint16Array, data, file: null };
    set.blocks.add(block);
    this.resident.add(block);
    this.memory += block.bytes;
    this.trimMemory(block);
    return block;
  }

  /** A block's numbers, read back from its spill file if needed. */
  read(block: Block): Numbers {
    if (this.resident.delete(block)) {
      this.resident.add(block);
      return block.data!;
    }
    if (!block.file) throw new Error('internal: a dropped state block was read');
    const bytes = new Uint8Array(block.bytes);
    bytes.set(readFileSync(block.file));
    const data = block.half ? new Uint16Array(bytes.buffer) : new Float32Array(bytes.buffer);
    block.data = data;
    this.resident.add(block);
    this.memory += block.bytes;
    this.trimMemory(block);
    return data;
  }

  get memoryBytes(): number {
    return this.memory;
  }

  get diskBytes(): number {
    return this.disk;
  }

  /** Drops every prompt set and the spill folder. */
  clear(): void {
    for (const set of [...this.sets.values()]) this.drop(set);
    if (this.folder) rmSync(this.folder, { recursive: true, force: true });
    this.folder = null;
  }

  /**
   * Drops the least recently used sets not in use while there are too many or the spill folder is too big;
   * the most recently used set stays whatever its size (dropping it would only make the next cell capture it
   * again).
   */
  private trimSets(): void {
    const sets = [...this.sets.values()];
    for (const set of sets.slice(0, -1)) {
      if (this.sets.size <= this.limits.promptSets && this.disk <= this.limits.diskBytes) break;
      if (set.users === 0) this.drop(set);
    }
  }

  /** Spills least recently used blocks (never `keep`, the one just added or read) until memory fits. */
  private trimMemory(keep: Block): void {
    for (const block of this.resident) {
      if (this.memory <= this.limits.memoryBytes) break;
      if (block === keep) continue;
      if (!block.file) this.spill(block);
      this.resident.delete(block);
      block.data = null;
      this.memory -= block.bytes;
    }
    if (this.disk > this.limits.diskBytes) this.trimSets();
  }

  private spill(block: Block): void {
    block.file = join(this.spillFolder(), `${this.files++}.bin`);
    const data = block.data!;
    writeFileSync(block.file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.disk += block.bytes;
  }

  private drop(set: PromptStates): void {
    this.sets.delete(set.key);
    for (const block of set.blocks) {
      if (this.resident.delete(block)) this.memory -= block.bytes;
      if (block.file) {
        rmSync(block.file, { force: true });
        this.disk -= block.bytes;
      }
      block.data = null;
      block.file = null;
    }
    set.blocks.clear();
    set.rows.clear();
    set.prefix = null;
  }

  /** This process's spill folder, made on first use; folders left by processes that are gone are removed. */
  private spillFolder(): string {
    if (this.folder) return this.folder;
    mkdirSync(this.spillRoot, { recursive: true });
    for (const name of readdirSync(this.spillRoot)) {
      const pid = Number(name.split('-')[0]);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) rmSync(join(this.spillRoot, name), { recursive: true, force: true });
    }
    let folder: string;
    do folder = join(this.spillRoot, `${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    while (existsSync(folder));
    mkdirSync(folder);
    this.folder = folder;
    return folder;
  }
}
