/**
 * The evaluation gate of a worker: at most `slots` cell evaluations at once, first come first served.
 * The worker takes more cells from the queue than it evaluates (ICL_SWEEP_PREFETCH), so the next
 * cell's dispatch and lookup happen while the current one computes, and it waits here, ready. Closing
 * the gate (the worker is stopping) turns away every cell still waiting, so it goes back to the queue
 * at once instead of waiting out the shutdown grace time; slots already held stay held until released.
 */

/** A cell turned away because the gate closed (its worker is stopping). */
export class GateClosedError extends Error {
  override name = 'GateClosedError';
  constructor() {
    super('the worker is stopping: no more cells start here');
  }
}

export interface EvaluationGate {
  /**
   * Waits for a slot and resolves to its release (idempotent). Rejects with the signal's reason when
   * `signal` aborts while waiting, and with GateClosedError when the gate is or becomes closed.
   */
  enter(signal: AbortSignal): Promise<() => void>;
  /** Turns away every waiting cell and every later one. */
  close(): void;
}

interface Waiter {
  admit(release: () => void): void;
  turnAway(err: unknown): void;
}

export function evaluationGate(slots: number): EvaluationGate {
  if (!Number.isInteger(slots) || slots < 1) throw new Error(`evaluationGate: slots must be an integer >= 1, got ${slots}`);
  let free = slots;
  let closed = false;
  const waiters: Waiter[] = [];

  const releaser = (): (() => void) => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      free++;
      admitNext();
    };
  };
  const admitNext = () => {
    while (!closed && free > 0 && waiters.length > 0) {
      free--;
      waiters.shift()!.admit(releaser());
    }
  };

  return {
    enter(signal) {
      if (closed) return Promise.reject(new GateClosedError());
      if (signal.aborted) return Promise.reject(signal.reason);
      if (free > 0 && waiters.length === 0) {
        free--;
        return Promise.resolve(releaser());
      }
      return new Promise((resolve, reject) => {
        const leave = () => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(signal.reason);
        };
        const waiter: Waiter = {
          admit: (release) => {
            signal.removeEventListener('abort', leave);
            resolve(release);
          },
          turnAway: (err) => {
            signal.removeEventListener('abort', leave);
            reject(err);
          },
        };
        signal.addEventListener('abort', leave, { once: true });
        waiters.push(waiter);
      });
    },
    close() {
      closed = true;
      for (const w of waiters.splice(0)) w.turnAway(new GateClosedError());
    },
  };
}
