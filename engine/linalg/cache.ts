/**
 * Decomposition cache keyed by content: sha256 of the (sliced) matrix bytes + its shape + the method.
 * In memory: LRU bounded by bytes. On disk: <cacheDir>/decompositions/<key>.svd (written atomically),
 * LRU bounded by bytes too: a read touches the file's mtime, and after each write the least recently
 * used files go until the folder is under its bound. The bound holds for the folder, whichever
 * processes share it (the files' mtimes are the shared order).
 * One instance per (process, cacheDir), shared by every model loaded in the process.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Decomposition, decompositionBytes } from './svd.ts';

const MAGIC = 0x31445653; // 'SVD1'

/** Disk bound of the decompositions when none is given: 20 GiB. */
const DEFAULT_DISK_CACHE_BYTES = 20 * 2 ** 30;

export function contentKey(data: Float32Array, m: number, n: number, method: string): string {
  const h = createHash('sha256');
  h.update(`${m}x${n}:${method}:`);
  h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return h.digest('hex');
}

/** sha256 of an [m, n] matrix's bytes, hashed in chunks that yield to the event loop between them. */
export async function matrixHash(data: Float32Array, m: number, n: number, chunkBytes = 8 << 20): Promise<string> {
  const h = createHash('sha256');
  h.update(`${m}x${n}:`);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  for (let off = 0; off < bytes.length; off += chunkBytes) {
    h.update(bytes.subarray(off, Math.min(bytes.length, off + chunkBytes)));
    if (off + chunkBytes < bytes.length) await new Promise((r) => setImmediate(r));
  }
  return h.digest('hex');
}

export interface CacheStats {
  hits: number;
  misses: number;
  diskHits: number;
  bytes: number;
  entries: number;
}

export class DecompositionCache {
  private entries = new Map<string, Decomposition>();
  private bytes = 0;
  private inflight = new Map<string, Promise<Decomposition>>();
  readonly stats: CacheStats = { hits: 0, misses: 0, diskHits: 0, bytes: 0, entries: 0 };
  private pruning: Promise<void> | null = null;
  private pruneAgain = false;

  constructor(
    readonly dir: string | null,
    public maxBytes: number,
    public diskMaxBytes: number = DEFAULT_DISK_CACHE_BYTES,
  ) {}

  /**
   * The decomposition for `key`, computing it with `compute` on a miss. `onResult(hit, seconds)` tells the
   * caller whether an SVD ran (a disk hit counts as a hit) and how long it took.
   */
  async get(key: string, compute: () => Promise<Decomposition>, onResult?: (hit: boolean, seconds: number) => void): Promise<Decomposition> {
    const mem = this.entries.get(key);
    if (mem) {
      this.entries.delete(key);
      this.entries.set(key, mem);
      this.stats.hits++;
      onResult?.(true, 0);
      return mem;
    }
    const pending = this.inflight.get(key);
    if (pending) {
      const d = await pending;
      this.stats.hits++;
      onResult?.(true, 0);
      return d;
    }
    const job = (async () => {
      const disk = await this.readDisk(key);
      if (disk) {
        this.stats.hits++;
        this.stats.diskHits++;
        onResult?.(true, 0);
        return disk;
      }
      const t0 = performance.now();
      const d = await compute();
      const seconds = (performance.now() - t0) / 1000;
      this.stats.misses++;
      onResult?.(false, seconds);
      await this.writeDisk(key, d).catch(() => undefined); // a cache write failure must not fail the cell
      return d;
    })();
    this.inflight.set(key, job);
    try {
      const d = await job;
      this.put(key, d);
      return d;
    } finally {
      this.inflight.delete(key);
    }
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  private put(key: string, d: Decomposition): void {
    const size = decompositionBytes(d);
    if (size > this.maxBytes) return;
    if (this.entries.has(key)) return;
    this.entries.set(key, d);
    this.bytes += size;
    while (this.bytes > this.maxBytes) {
      const oldest = this.entries.keys().next().value as string;
      this.bytes -= decompositionBytes(this.entries.get(oldest)!);
      this.entries.delete(oldest);
    }
    this.stats.bytes = this.bytes;
    this.stats.entries = this.entries.size;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
    this.stats.bytes = 0;
    this.stats.entries = 0;
  }

  private file(key: string): string {
    return join(this.dir!, 'decompositions', `${key}.svd`);
  }

  private async readDisk(key: string): Promise<Decomposition | null> {
    if (!this.dir) return null;
    let buf: Buffer;
    try {
      buf = await readFile(this.file(key));
    } catch {
      return null;
    }
    if (buf.length < 16) return null;
    const now = new Date();
    await utimes(this.file(key), now, now).catch(() => undefined); // most recently used; gone meanwhile is fine
    const head = new Uint32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 16));
    const [magic, m, n, r] = head;
    if (magic !== MAGIC || buf.length !== 16 + 4 * (m * r + r + r * n)) return null;
    const body = new Float32Array(buf.buffer.slice(buf.byteOffset + 16, buf.byteOffset + buf.length));
    return { m, n, r, u: body.slice(0, m * r), s: body.slice(m * r, m * r + r), vt: body.slice(m * r + r) };
  }

  private async writeDisk(key: string, d: Decomposition): Promise<void> {
    if (!this.dir || 16 + decompositionBytes(d) > this.diskMaxBytes) return;
    const dir = join(this.dir, 'decompositions');
    await mkdir(dir, { recursive: true });
    const head = Buffer.from(new Uint32Array([MAGIC, d.m, d.n, d.r]).buffer);
    const parts = [head, Buffer.from(d.u.buffer, d.u.byteOffset, d.u.byteLength), Buffer.from(d.s.buffer, d.s.byteOffset, d.s.byteLength), Buffer.from(d.vt.buffer, d.vt.byteOffset, d.vt.byteLength)];
    const tmp = `${this.file(key)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, Buffer.concat(parts));
    await rename(tmp, this.file(key));
    await this.pruneDisk();
  }

  /** Deletes least recently used files until the folder is under diskMaxBytes (one pass at a time; a write during it asks for another). */
  async pruneDisk(): Promise<void> {
    if (!this.dir) return;
    if (this.pruning) {
      this.pruneAgain = true;
      return this.pruning;
    }
    this.pruning = (async () => {
      do {
        this.pruneAgain = false;
        await evictLeastRecentlyUsed(join(this.dir!, 'decompositions'), this.diskMaxBytes);
      } while (this.pruneAgain);
    })().finally(() => (this.pruning = null));
    return this.pruning;
  }
}

/** Deletes the oldest-used `.svd` files of `dir` until their total is at most `maxBytes`. */
async function evictLeastRecentlyUsed(dir: string, maxBytes: number): Promise<void> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.svd'));
  const files = (
    await Promise.all(
      names.map(async (name) => {
        const s = await stat(join(dir, name)).catch(() => null); // removed by another process meanwhile
        return s ? { path: join(dir, name), bytes: s.size, used: s.mtimeMs } : null;
      }),
    )
  ).filter((f) => f !== null);
  let total = files.reduce((n, f) => n + f.bytes, 0);
  if (total <= maxBytes) return;
  files.sort((a, b) => a.used - b.used);
  for (const f of files) {
    if (total <= maxBytes) break;
    await unlink(f.path).catch(() => undefined);
    total -= f.bytes;
  }
}

const shared = new Map<string, DecompositionCache>();

/** The process-wide cache for a cache folder (its byte bounds are the largest ones asked for). */
export function sharedCache(cacheDir: string, maxBytes: number, diskMaxBytes = DEFAULT_DISK_CACHE_BYTES): DecompositionCache {
  let c = shared.get(cacheDir);
  if (!c) {
    c = new DecompositionCache(cacheDir, maxBytes, diskMaxBytes);
    shared.set(cacheDir, c);
  } else {
    c.maxBytes = Math.max(c.maxBytes, maxBytes);
    c.diskMaxBytes = Math.max(c.diskMaxBytes, diskMaxBytes);
  }
  return c;
}
