/**
 * ONNX Runtime sessions of one model: created from the rewritten graph in memory, with the weights read by
 * the runtime from the export's folder, and kept in a small pool keyed by which matrices are fed.
 */
import * as ort from 'onnxruntime-node';
import { EngineInputError } from '../types.ts';

export interface SessionSettings {
  executionProvider: 'cpu' | 'cuda';
  /** CUDA device ordinal (default 0). */
  deviceId?: number;
  threads?: number;
  cpuMemArena?: boolean;
  /** Intra-op threads spin while waiting for work (lower latency on an idle machine, cycles taken from other
   *  processes on a busy one); default false. */
  spinning?: boolean;
  /** Folder the graph's external data locations are relative to (the ONNX file's folder). */
  externalFolder: string;
  /** External data files the runtime takes from memory instead of disk (widened 16-bit weights). */
  externalData?: { path: string; data: Uint8Array }[];
}

export function sessionOptions(s: SessionSettings): ort.InferenceSession.SessionOptions {
  const provider: ort.InferenceSession.ExecutionProviderConfig =
    s.executionProvider === 'cuda' ? { name: 'cuda', deviceId: s.deviceId ?? 0 } : 'cpu';
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    ...(s.cpuMemArena === false ? { enableCpuMemArena: false } : {}),
    ...(s.threads ? { intraOpNumThreads: s.threads } : {}),
    ...(s.externalData ? { externalData: s.externalData } : {}),
    extra: {
      session: {
        // A model created from memory has no path: external data locations resolve against this folder.
        model_external_initializers_file_folder_path: s.externalFolder,
        // Without pre-packing the CPU provider maps the weight file instead of copying every matrix into
        // packed buffers: sessions cost no weight memory of their own and open in milliseconds. Matrices
        // fed as inputs were never pre-packed anyway.
        ...(s.executionProvider === 'cpu' ? { disable_prepacking: '1' } : {}),
        ...(s.spinning ? {} : { 'intra_op.allow_spinning': '0' }),
      },
    },
  };
}

/** A session from graph bytes; a failure is the model's fault (EngineInputError) unless the provider failed to start. */
export async function createSession(graph: Uint8Array, options: ort.InferenceSession.SessionOptions, path: string, provider: 'cpu' | 'cuda'): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(graph, options);
  } catch (e) {
    const msg = (e as Error).message;
    if (provider !== 'cpu' && /ExecutionProvider|provider|cuda/i.test(msg)) {
      // the worker's setup, not the model: not an input error (another worker may have the provider)
      throw new Error(`ONNX Runtime cannot start the ${provider} execution provider for ${path}: ${msg}`);
    }
    throw new EngineInputError(`ONNX Runtime cannot load ${path}: ${msg}`, path);
  }
}

interface PoolEntry {
  session: Promise<ort.InferenceSession>;
  users: number;
}

async function close(entries: PoolEntry[]): Promise<void> {
  for (const e of entries) await e.session.then((s) => s.release()).catch(() => undefined);
}

/** A session lent out; release() gives it back to the pool. */
export interface SessionLease {
  session: ort.InferenceSession;
  release(): void;
}

/**
 * Sessions by graph variant ('': the whole model; others name a layer slice or the capture graph) and the set
 * of matrices fed as inputs (none: the pristine model), least recently used first. Idle sessions beyond
 * `max` are released before another is created, so with one cell at a time a worker holds one copy of the
 * weights on the device; sessions in use are never released.
 */
export class SessionPool {
  private entries = new Map<string, PoolEntry>();

  constructor(
    private readonly create: (fed: string[], variant: string) => Promise<ort.InferenceSession>,
    private readonly max: number,
  ) {}

  async acquire(fed: string[], variant = ''): Promise<SessionLease> {
    const key = [variant, ...[...fed].sort()].join('\n');
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key);
    else {
      // registered before anything is awaited, so a concurrent acquire of the same set shares it; the
      // sessions it displaces are released before it is created
      const session = close(this.dropIdle(this.max - 1)).then(() => this.create(fed, variant));
      entry = { session, users: 0 };
      const created = entry;
      session.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    this.entries.set(key, entry);
    entry.users++;
    const held = entry;
    let session: ort.InferenceSession;
    try {
      session = await held.session;
    } catch (e) {
      held.users--;
      throw e;
    }
    let released = false;
    return {
      session,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        void close(this.dropIdle(this.max));
      },
    };
  }

  /** Sessions held (in use or idle). */
  get size(): number {
    return this.entries.size;
  }

  /** Takes idle sessions out of the pool, oldest first, until at most `keep` remain (or only sessions in use). */
  private dropIdle(keep: number): PoolEntry[] {
    const dropped: PoolEntry[] = [];
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= Math.max(0, keep)) break;
      if (entry.users > 0) continue;
      this.entries.delete(key);
      dropped.push(entry);
    }
    return dropped;
  }

  async dispose(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await close(all);
  }
}
