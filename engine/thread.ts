/**
 * The engine on a thread of its own. ONNX Runtime's binding runs a model (and makes a session) on the thread
 * that calls it and holds that thread for the whole run; on a worker's main thread that stalls its heartbeats,
 * the dispatch of the next cell, its database reads and the previous cell's save until the run ends. A
 * threaded engine is the same Engine with the work on a worker thread: the caller's thread only passes
 * messages, carrying requests, results, errors (an EngineInputError keeps its class and subject), progress,
 * cancellation and model-load reports across.
 */
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { type CellRequest, type CellsCheck, type DatasetSpec, type Engine, EngineInputError, type EngineOptions, type EvaluateOptions, type ModelSpec } from './types.ts';

type Method = 'evaluate' | 'describeModel' | 'describeDataset' | 'checkCells' | 'close';

type ToEngine =
  | { kind: 'call'; id: number; method: Method; arg: unknown; reusePrefix?: boolean; progress: boolean }
  | { kind: 'abort'; id: number; reason: string };

interface ErrorData {
  name: string;
  message: string;
  subject?: string;
  stack?: string;
}

type FromEngine =
  | { kind: 'progress'; id: number; done: number; total: number }
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: ErrorData }
  | { kind: 'modelLoad'; seconds: number; modelDir: string };

interface ThreadData {
  options: Omit<EngineOptions, 'onModelLoad'>;
  engineModule?: string;
}

interface Call {
  resolve(value: unknown): void;
  reject(err: Error): void;
  onProgress?: (done: number, total: number) => void;
}

/**
 * An engine whose work runs on a worker thread, started at once (so it is ready, its modules loaded, when the
 * first cell comes) and again on the call after one that stopped.
 * `engineModule`: the module whose createEngine(options) makes it there (default: this folder's index.ts);
 * the options must be plain data besides onModelLoad.
 */
export function createThreadedEngine<O extends EngineOptions>(opts: O, engineModule?: URL): Engine {
  const { onModelLoad, ...options } = opts;
  const calls = new Map<number, Call>();
  let nextId = 0;
  let thread: Worker | null = null;

  const start = (): Worker => {
    const w = new Worker(new URL('./thread-boot.mjs', import.meta.url), { workerData: { options, engineModule: engineModule?.href } satisfies ThreadData });
    w.on('message', (m: FromEngine) => receive(m));
    w.on('error', (err) => stopped(w, err));
    w.on('exit', (code) => stopped(w, new Error(`the engine thread stopped (exit code ${code})`)));
    return w;
  };
  /** A thread that died fails its calls (transient errors: a retry starts a new thread). */
  const stopped = (w: Worker, err: Error) => {
    if (thread !== w) return;
    thread = null;
    for (const c of calls.values()) c.reject(err);
    calls.clear();
  };
  const receive = (m: FromEngine) => {
    if (m.kind === 'modelLoad') {
      try {
        onModelLoad?.(m.seconds, m.modelDir);
      } catch {
        // a report's failure is not the engine's
      }
      return;
    }
    const c = calls.get(m.id);
    if (!c) return;
    if (m.kind === 'progress') return c.onProgress?.(m.done, m.total);
    calls.delete(m.id);
    if (calls.size === 0) thread?.unref(); // an idle engine does not keep the process alive
    if (m.kind === 'result') c.resolve(m.value);
    else c.reject(revive(m.error));
  };
  thread = start();
  thread.unref();
  const call = <T>(method: Method, arg: unknown, options: EvaluateOptions = {}): Promise<T> => {
    const w = (thread ??= start());
    const id = nextId++;
    const { signal, onProgress, reusePrefix } = options;
    return new Promise<T>((resolve, reject) => {
      const abort = () => w.postMessage({ kind: 'abort', id, reason: reasonOf(signal!) } satisfies ToEngine);
      const done = () => signal?.removeEventListener('abort', abort);
      calls.set(id, { resolve: (v) => (done(), resolve(v as T)), reject: (e) => (done(), reject(e)), onProgress });
      w.ref();
      w.postMessage({ kind: 'call', id, method, arg, reusePrefix, progress: onProgress !== undefined } satisfies ToEngine);
      if (signal?.aborted) abort();
      else signal?.addEventListener('abort', abort, { once: true });
    });
  };
  return {
    evaluate: (request: CellRequest, options?: EvaluateOptions) => call('evaluate', request, options),
    describeModel: (model: ModelSpec) => call('describeModel', model),
    describeDataset: (dataset: DatasetSpec) => call('describeDataset', dataset),
    checkCells: (check: CellsCheck) => call('checkCells', check),
    async close() {
      const w = thread;
      if (!w) return;
      await call('close', null);
      thread = null;
      await w.terminate();
    },
  };
}

function reasonOf(signal: AbortSignal): string {
  const r = signal.reason as unknown;
  return r instanceof Error ? r.message : String(r ?? 'aborted');
}

function errorData(e: unknown): ErrorData {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  return { name: e.name, message: e.message, stack: e.stack, ...(e instanceof EngineInputError && e.subject !== undefined ? { subject: e.subject } : {}) };
}

function revive(e: ErrorData): Error {
  const err = e.name === 'EngineInputError' ? new EngineInputError(e.message, e.subject) : Object.assign(new Error(e.message), { name: e.name });
  if (e.stack) err.stack = e.stack;
  return err;
}

/** The worker thread's side (started by thread-boot.mjs): one engine, answering the calls as they come. */
export async function serveEngine(): Promise<void> {
  const port = parentPort!;
  const { options, engineModule } = workerData as ThreadData;
  const { createEngine } = (await import(engineModule ?? new URL('./index.ts', import.meta.url).href)) as { createEngine(o: EngineOptions): Engine | Promise<Engine> };
  const engine = await createEngine({ ...options, onModelLoad: (seconds, modelDir) => port.postMessage({ kind: 'modelLoad', seconds, modelDir } satisfies FromEngine) });
  const aborts = new Map<number, AbortController>();
  const answer = async (m: Extract<ToEngine, { kind: 'call' }>) => {
    const controller = new AbortController();
    aborts.set(m.id, controller);
    const onProgress = (done: number, total: number) => port.postMessage({ kind: 'progress', id: m.id, done, total } satisfies FromEngine);
    try {
      const value = await perform(engine, m, { signal: controller.signal, reusePrefix: m.reusePrefix, ...(m.progress ? { onProgress } : {}) });
      port.postMessage({ kind: 'result', id: m.id, value } satisfies FromEngine);
    } catch (e) {
      port.postMessage({ kind: 'error', id: m.id, error: errorData(e) } satisfies FromEngine);
    } finally {
      aborts.delete(m.id);
    }
  };
  port.on('message', (m: ToEngine) => {
    if (m.kind === 'abort') aborts.get(m.id)?.abort(new Error(m.reason));
    else void answer(m);
  });
}

function perform(engine: Engine, m: Extract<ToEngine, { kind: 'call' }>, options: EvaluateOptions): Promise<unknown> {
  switch (m.method) {
    case 'evaluate':
      return engine.evaluate(m.arg as CellRequest, options);
    case 'describeModel':
      return engine.describeModel(m.arg as ModelSpec);
    case 'describeDataset':
      return engine.describeDataset(m.arg as DatasetSpec);
    case 'checkCells':
      return engine.checkCells(m.arg as CellsCheck);
    case 'close':
      return engine.close();
  }
}
