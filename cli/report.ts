/**
 * `report <sweep> [options]`: the paper-shaped table of a sweep's selections (test accuracy of the
 * unpruned model -> the selected cell, Wilson intervals, exact McNemar p-value, validation-to-test
 * gap) and its accuracy surfaces (printed as text tables, written as SVG files).
 *
 * Entry point for cli/main.ts: `runReport(args)` with the arguments after "report"; resolves to the
 * exit code (0 ok, 1 error such as an unknown sweep or an unreachable database, 2 bad usage).
 * Reads only (DATABASE_URL, or the embedded PGlite database when unset); never migrates or writes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cellResults, selectionDrawRows, selectionResults, sweepByName, type Db, type SelectionDrawRow } from '../db/queries.ts';
import { pointsCsv, pointsOverDraws, renderDrawSpread } from '../analysis/draw-points.ts';
import { openForReading } from '../db/client.ts';
import { loadPredictions } from '../analysis/queries.ts';
import { buildSelectionReports, renderSelectionTable, surfaceJson, type Report, type SurfaceFiles } from '../analysis/report.ts';
import { renderAccuracyLinesSvg, surfaceCsv } from '../analysis/lines.ts';
import { renderSurfaceSvg, renderSurfaceText, surfaceFileName, surfacesFromRows, type Surface } from '../analysis/surface.ts';

export const REPORT_USAGE = `Usage: report <sweep> [options]

Prints the sweep's selections as a table shaped like the paper's (task, model, the selection rule,
module, layer, ratio selected, validation gain over the unpruned model with its interval and p-value,
test accuracy before -> after, the interval of each and of the change, the paired test's p-value,
validation-to-test gap) and its accuracy surfaces (layer x ratio) as text tables, and writes each
surface of every (model, dataset, module, split) as an SVG heatmap, an SVG of accuracy against the
clipping rate (one line per layer, the unpruned accuracy dashed) and a CSV file. With demonstration
draws (spec demoSeeds) the surfaces are means over them (± their standard deviation), the table says
how far accuracy moves across draws, and draws.csv gives every grid point's mean, spread and interval.

Options:
  --json               print one JSON object instead of text (selections, statistics, surfaces)
  --out <dir>          folder for the files (default ./reports/<sweep>/)
  --no-svg             do not write SVG files (heatmaps and accuracy-vs-ratio lines)
  --no-csv             do not write a CSV file per surface
  --no-surfaces        do not print the surfaces as text tables
  --delta              also print/write the surfaces as change against the unpruned model
  --confidence <c>     confidence level of the intervals (default 0.95)
  --bootstrap <n>      add a paired bootstrap interval of the accuracy change, n resamples
  --seed <s>           seed of the bootstrap (default 0)
  -h, --help           this text

Database: DATABASE_URL (postgres://...), or the embedded PGlite database when unset.`;

export interface ReportIo {
  out(text: string): void;
  err(text: string): void;
  /** An open database to use (left open); default: createDb() from the environment, closed at the end. */
  db?: Db;
}

const defaultIo: ReportIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

interface ParsedArgs {
  sweep: string;
  json: boolean;
  out: string | null;
  svg: boolean;
  csv: boolean;
  textSurfaces: boolean;
  delta: boolean;
  confidence: number;
  bootstrap: number;
  seed: number;
}

function parse(args: string[]): ParsedArgs | { help: true } | { error: string } {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        out: { type: 'string' },
        'no-svg': { type: 'boolean' },
        'no-csv': { type: 'boolean' },
        'no-surfaces': { type: 'boolean' },
        delta: { type: 'boolean' },
        confidence: { type: 'string' },
        bootstrap: { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return { error: (err as Error).message };
  }
  if (values.help) return { help: true };
  if (positionals.length !== 1) return { error: positionals.length === 0 ? 'missing <sweep>' : `one sweep name expected, got ${positionals.length}` };
  const confidence = values.confidence === undefined ? 0.95 : Number(values.confidence);
  if (!(confidence > 0 && confidence < 1)) return { error: `--confidence must be a number between 0 and 1, got ${String(values.confidence)}` };
  const bootstrap = values.bootstrap === undefined ? 0 : Number(values.bootstrap);
  if (!Number.isInteger(bootstrap) || bootstrap < 0 || bootstrap > 1_000_000) return { error: `--bootstrap must be an integer between 0 and 1000000, got ${String(values.bootstrap)}` };
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) return { error: `--seed must be a non-negative integer, got ${String(values.seed)}` };
  return {
    sweep: positionals[0],
    json: values.json === true,
    out: typeof values.out === 'string' ? values.out : null,
    svg: values['no-svg'] !== true,
    csv: values['no-csv'] !== true,
    textSurfaces: values['no-surfaces'] !== true,
    delta: values.delta === true,
    confidence,
    bootstrap,
    seed,
  };
}

/** A sweep name as one safe folder name. */
export function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_');
}

/** Order of models and datasets as the sweep's spec lists them (rows of other names keep their order, after). */
function specOrder(spec: unknown): { model(name: string): number; dataset(name: string): number } {
  const names = (list: unknown) =>
    Array.isArray(list) ? list.map((x) => (x && typeof x === 'object' ? (x as { name?: unknown }).name : undefined)).filter((x): x is string => typeof x === 'string') : [];
  const s = (spec ?? {}) as { models?: unknown; datasets?: unknown };
  const models = names(s.models);
  const datasets = names(s.datasets);
  const rank = (list: string[]) => (name: string) => {
    const i = list.indexOf(name);
    return i === -1 ? list.length : i;
  };
  return { model: rank(models), dataset: rank(datasets) };
}

function bySpec<T extends { model: string; dataset: string }>(rows: T[], order: ReturnType<typeof specOrder>): T[] {
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => order.model(a.r.model) - order.model(b.r.model) || order.dataset(a.r.dataset) - order.dataset(b.r.dataset) || a.i - b.i)
    .map((x) => x.r);
}

/** Run `report` with the arguments after the command name; resolves to the exit code. */
export async function runReport(args: string[], io: ReportIo = defaultIo): Promise<number> {
  const parsed = parse(args);
  if ('help' in parsed) {
    io.out(REPORT_USAGE + '\n');
    return 0;
  }
  if ('error' in parsed) {
    io.err(`report: ${parsed.error}\n\n${REPORT_USAGE}\n`);
    return 2;
  }
  let db: Db;
  try {
    db = io.db ?? (await openForReading());
  } catch (err) {
    io.err(`report: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const sweep = await sweepByName(db, parsed.sweep);
    if (!sweep) {
      io.err(`report: no sweep named "${parsed.sweep}" in the database (${db.location}).\n`);
      return 1;
    }
    const order = specOrder(sweep.spec);
    const selectionRows = bySpec(await selectionResults(db, parsed.sweep), order);
    const draws = new Map<string, SelectionDrawRow[]>();
    for (const d of await selectionDrawRows(db, parsed.sweep)) {
      const key = JSON.stringify([d.model, d.dataset]);
      draws.set(key, [...(draws.get(key) ?? []), d]);
    }
    const predictions = await loadPredictions(db, [
      ...selectionRows.flatMap((s) => [s.baselineCellKey, s.selectedCellKey]),
      ...[...draws.values()].flat().flatMap((d) => [d.baselineCellKey, d.selectedCellKey]),
    ]);
    const selections = buildSelectionReports(
      selectionRows,
      predictions,
      { confidence: parsed.confidence, bootstrap: parsed.bootstrap, seed: parsed.seed },
      draws,
    );
    // A grid point evaluated under several demonstration draws is one surface cell: their mean and spread.
    const points = pointsOverDraws(bySpec(await cellResults(db, parsed.sweep), order), parsed.confidence);
    const surfaces: Surface[] = surfacesFromRows(points, { sweep: parsed.sweep });
    const deltas: Surface[] = parsed.delta ? surfacesFromRows(points, { sweep: parsed.sweep, kind: 'delta' }) : [];

    // Per surface: the heatmap (SVG), accuracy vs ratio lines (SVG, accuracy surfaces) and the CSV.
    const dir = parsed.out ?? path.join('reports', safeName(parsed.sweep));
    const files = new Map<Surface, SurfaceFiles>();
    if ((parsed.svg || parsed.csv) && surfaces.length > 0) {
      await mkdir(dir, { recursive: true });
      const used = new Set<string>();
      for (const s of [...surfaces, ...deltas]) {
        const base = surfaceFileName(s.meta, s.kind).replace(/\.svg$/, '');
        let stem = base;
        for (let k = 2; used.has(stem); k++) stem = `${base}-${k}`;
        used.add(stem);
        const written: SurfaceFiles = { svg: null, lines: null, csv: null };
        const write = async (suffix: string, text: string) => {
          const file = path.join(dir, `${stem}${suffix}`);
          await writeFile(file, text);
          return file;
        };
        if (parsed.svg) written.svg = await write('.svg', renderSurfaceSvg(s));
        if (parsed.svg && s.kind === 'accuracy') written.lines = await write('__lines.svg', renderAccuracyLinesSvg(s));
        if (parsed.csv) written.csv = await write('.csv', surfaceCsv(s));
        files.set(s, written);
      }
    }
    // With demonstration draws: every grid point's mean, spread and interval over them.
    let pointsFile: string | null = null;
    if (parsed.csv && points.some((p) => p.draws > 1)) {
      await mkdir(dir, { recursive: true });
      pointsFile = path.join(dir, 'draws.csv');
      await writeFile(pointsFile, pointsCsv(points));
    }

    const report: Report & { deltaSurfaces?: Report['surfaces'] } = {
      sweep: parsed.sweep,
      confidence: parsed.confidence,
      selections,
      surfaces: surfaces.map((s) => surfaceJson(s, files.get(s))),
      points,
      ...(parsed.delta ? { deltaSurfaces: deltas.map((s) => surfaceJson(s, files.get(s))) } : {}),
    };
    if (parsed.json) {
      io.out(JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
      return 0;
    }
    const parts: string[] = [`Sweep ${parsed.sweep}: selections (the paper's Algorithm 1)\n\n` + renderSelectionTable(selections, { confidence: parsed.confidence })];
    const spread = renderDrawSpread(points, parsed.confidence);
    if (spread) parts.push(spread);
    if (parsed.textSurfaces) {
      if (surfaces.length === 0) parts.push('No cells linked to this sweep yet.\n');
      for (const s of [...surfaces, ...deltas]) parts.push(renderSurfaceText(s));
    }
    const written = [...files.values()].flatMap((f) => [f.svg, f.lines, f.csv]).filter((f): f is string => f !== null);
    if (written.length > 0) parts.push(`Surfaces written (${written.length} files: heatmaps, accuracy-vs-ratio lines, CSV):\n` + written.map((f) => `  ${f}`).join('\n') + '\n');
    if (pointsFile) parts.push(`Grid points over their demonstration draws (mean, sd, range, ${Math.round(parsed.confidence * 1000) / 10}% interval): ${pointsFile}\n`);
    io.out(parts.join('\n'));
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
    const code = e.code ?? e.cause?.code;
    const hint = code === '42P01' ? ' (the database has no icl-sweep tables: run the migrations, or point DATABASE_URL at the sweep database)' : '';
    io.err(`report: ${e.cause?.message ?? e.message}${hint}\n`);
    return 1;
  } finally {
    if (!io.db) await db.close().catch(() => {});
  }
}
