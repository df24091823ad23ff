/**
 * How the sequences of one call become runs. A run streams every weight once whatever its size, so a few
 * large runs beat many small ones; within bounds on the prefix's key/values broadcast to the rows and on
 * the logits. Where the attention mask is fed, sequences sit side by side in rows of about `packWidth(P)`
 * positions (first fit, longest first): the prefix's key/values are copied once per row rather than once
 * per sequence, and rows are full rather than padded. Otherwise each sequence is a row, and rows ordered by
 * length are cut where the padding saved is worth a run (RUN_COST positions).
 */

/** A run: the sequences it holds (indices into the call's) and, per row, which of them sit in it. */
export interface Run {
  seqs: number[];
  /** Per row, indices into `seqs`. */
  pack: number[][];
}

export interface PlanInput {
  /** Each sequence's length, and how many of its positions need logits. */
  lengths: number[];
  logitPositions: number[];
  /** Sequences may share rows (the attention mask is fed, and there is a past whose copies it saves: without
   *  one, sharing rows would only lengthen every sequence's attention). */
  packed: boolean;
  /** Length of the past the rows run on. */
  past: number;
  /** Bytes of the past's key/values per position and row (0: no past), and of one position's logits. */
  kvBytesPerPosition: number;
  logitsBytesPerPosition: number;
  /** Logits come back for the positions asked for only; else for every position of every row. */
  selectable: boolean;
  maxRows: number;
  maxKvBytes: number;
  maxLogitsBytes: number;
}

/** What a run costs besides its positions, in positions (the weights streamed once per run). */
export const RUN_COST = 32;

/** Row width for packed sequences on a past of P: per-row copies of the past against attention over the row. */
export function packWidth(P: number): number {
  return 16 * Math.ceil(Math.max(64, 8 * Math.sqrt(P)) / 16);
}

export function planRuns(input: PlanInput): Run[] {
  return input.packed ? packedRuns(input) : cutRuns(input);
}

/** Whether rows of `width` holding sequences `seqs` fit one run. */
function fits(input: PlanInput, rows: number, width: number, seqs: number[]): boolean {
  if (rows <= 1) return true;
  const logits = input.selectable ? seqs.reduce((a, q) => a + input.logitPositions[q], 0) : rows * width;
  return rows <= input.maxRows && rows * input.kvBytesPerPosition * (input.past + width) <= input.maxKvBytes && logits * input.logitsBytesPerPosition <= input.maxLogitsBytes;
}

/** One sequence per row; ordered by length and cut minimizing padded positions + RUN_COST per run. */
function cutRuns(input: PlanInput): Run[] {
  const { lengths } = input;
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const n = order.length;
  const cost = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  cost[0] = 0;
  for (let j = 1; j <= n; j++) {
    const width = lengths[order[j - 1]];
    for (let i = j - 1; i >= 0 && fits(input, j - i, width, order.slice(i, j)); i--) {
      const c = cost[i] + RUN_COST + (j - i) * width;
      if (c < cost[j]) {
        cost[j] = c;
        from[j] = i;
      }
    }
  }
  const runs: Run[] = [];
  for (let j = n; j > 0; j = from[j]) {
    const seqs = order.slice(from[j], j);
    runs.unshift({ seqs, pack: seqs.map((_, k) => [k]) });
  }
  return runs;
}

/** Sequences first fit, longest first, into rows of packWidth; rows taken in order into runs that fit. */
function packedRuns(input: PlanInput): Run[] {
  const { lengths } = input;
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const width = Math.max(packWidth(input.past), ...lengths);
  const rows: { seqs: number[]; fill: number }[] = [];
  for (const q of order) {
    const row = rows.find((r) => r.fill + lengths[q] <= width);
    if (row) {
      row.seqs.push(q);
      row.fill += lengths[q];
    } else rows.push({ seqs: [q], fill: lengths[q] });
  }
  const runs: Run[] = [];
  let current: { seqs: number[]; fill: number }[] = [];
  const flush = () => {
    const seqs = current.flatMap((r) => r.seqs);
    let k = 0;
    runs.push({ seqs, pack: current.map((r) => r.seqs.map(() => k++)) });
    current = [];
  };
  for (const row of rows) {
    const next = [...current, row];
    if (current.length > 0 && !fits(input, next.length, Math.max(...next.map((r) => r.fill)), next.flatMap((r) => r.seqs))) flush();
    current.push(row);
  }
  if (current.length > 0) flush();
  return runs;
}
