/** Plain-text tables of a sweep's results (the cell_results view). */
import type { CellResultRow } from '../db/queries.ts';

export function renderTable(headers: string[], rows: (string | number)[][], alignRight: boolean[] = []): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((v, c) => (alignRight[c] ? v.padStart(widths[c]) : v.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n') + '\n';
}

const pct = (x: number | null | undefined) => (typeof x === 'number' ? (x * 100).toFixed(1) : '-');

/** The accuracy table: one row per cell of the sweep. */
export function renderResults(rows: CellResultRow[], opts: { limit?: number } = {}): string {
  const limit = opts.limit ?? Infinity;
  const shown = rows.slice(0, limit);
  const body = shown.map((r) => [
    r.model,
    r.dataset,
    r.split,
    r.module,
    r.layer,
    r.ratio,
    pct(r.accuracy),
    pct(r.f1Macro),
    r.n ?? '-',
    r.status + (r.reused ? ' (reused)' : ''),
    r.error ? r.error.split('\n')[0].replace(/^EngineInputError: /, '').slice(0, 160) : '',
  ]);
  let out = renderTable(['model', 'dataset', 'split', 'module', 'layer', 'ratio', 'acc %', 'F1 %', 'n', 'status', 'error'], body, [
    false, false, false, false, true, true, true, true, true, false, false,
  ]);
  if (rows.length > shown.length) out += `... ${rows.length - shown.length} more rows (--limit, or the sql command)\n`;
  return out;
}
