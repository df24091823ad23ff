/**
 * Outages cost time, never cells: database work in an activity waits out an unreachable database
 * (server down, restarting, refusing connections) for the worker's outage tolerance, heartbeating
 * meanwhile, instead of failing an attempt. Only what is not reached in that time fails the attempt,
 * as the retryable DatabaseUnavailable. Any other database error (a wrong query, a constraint) is
 * thrown at once.
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';

/** Connection-level error codes of Node's sockets. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EPIPE']);
/** Postgres SQLSTATEs of a server shutting down, starting up or out of connections; class 08 (connection exceptions) is matched by prefix. */
const SERVER_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** What node-postgres says when a connection drops or cannot be had in time. */
const DRIVER_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/i;

/** True when `err` (or an error it wraps) says the database cannot be reached right now. */
export function isOutage(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (SOCKET_CODES.has(code) || SERVER_STATES.has(code) || code.startsWith('08')) return true;
    if (typeof e.message === 'string' && DRIVER_MESSAGES.test(e.message)) return true;
  }
  return false;
}

export interface OutageOptions {
  /** Longest total wait, in milliseconds. */
  toleranceMs: number;
  /** Called before each wait (an activity heartbeats here). */
  onWait?: (waitedMs: number, err: unknown) => void;
  /** Stops the waiting (the activity was cancelled). */
  signal?: AbortSignal;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new CancelledFailure('cancelled while waiting for the database'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(new CancelledFailure('cancelled while waiting for the database'));
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** Runs `fn`, retrying it (500 ms, doubling to 15 s) while the database is unreachable, for at most toleranceMs. */
export async function retryOnOutage<T>(what: string, fn: () => Promise<T>, opts: OutageOptions): Promise<T> {
  const started = Date.now();
  for (let delay = 500; ; delay = Math.min(2 * delay, 15_000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isOutage(err)) throw err;
      const waited = Date.now() - started;
      if (waited + delay > opts.toleranceMs) {
        throw ApplicationFailure.retryable(
          `${what}: the database stayed unreachable for ${Math.round(waited / 1000)} s (outage tolerance ${Math.round(opts.toleranceMs / 1000)} s): ${(err as Error).message}`,
          'DatabaseUnavailable',
        );
      }
      opts.onWait?.(waited, err);
      await pause(delay, opts.signal);
    }
  }
}

/**
 * retryOnOutage inside an activity: heartbeats while waiting (with `details`, so a cell's progress
 * survives), stops on cancellation, and gives up before the attempt's own start-to-close deadline.
 */
export function activityOutage(toleranceMs: number, details: () => unknown = () => undefined) {
  return <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const ctx = Context.current();
    const { startToCloseTimeoutMs, currentAttemptScheduledTimestampMs } = ctx.info;
    const left = currentAttemptScheduledTimestampMs + startToCloseTimeoutMs - Date.now() - 10_000;
    return retryOnOutage(what, fn, {
      toleranceMs: Math.max(0, Math.min(toleranceMs, left)),
      onWait: () => ctx.heartbeat(details()),
      signal: ctx.cancellationSignal,
    });
  };
}
