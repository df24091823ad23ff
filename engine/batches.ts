/**
 * How a cell's queries are cut into model calls: ordered by length, then cut where it costs least. A call
 * runs every row to the longest row's length (padding) and costs a fixed time besides (the weights are
 * streamed once per run), so cuts trade padded positions against runs: the partition minimizes padded
 * positions plus `runCost` positions per run, with at most `maxRows` rows per call.
 */

/** Indices 0..n-1 ordered by length (stable), cut into batches of at most `maxRows`. */
export function batchesByLength(lengths: readonly number[], maxRows: number, runCost = 2 * maxRows): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const n = order.length;
  // cost[j]: the cheapest cut of the first j rows; from[j]: where its last batch starts
  const cost = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  cost[0] = 0;
  for (let j = 1; j <= n; j++) {
    const longest = lengths[order[j - 1]];
    for (let i = Math.max(0, j - maxRows); i < j; i++) {
      const c = cost[i] + runCost + (j - i) * longest;
      if (c < cost[j]) {
        cost[j] = c;
        from[j] = i;
      }
    }
  }
  const out: number[][] = [];
  for (let j = n; j > 0; j = from[j]) out.unshift(order.slice(from[j], j));
  return out;
}
