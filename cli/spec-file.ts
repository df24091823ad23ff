/** Reading a sweep spec file (JSON or YAML) and checking it with the shared schema. */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { checkSpec, type SpecCheck } from '../sweepspec/schema.ts';
import { DEFAULT_MAX_CELLS, gridLimitProblem, gridSizeBound } from '../sweepspec/grid.ts';
import { problemsMessage } from '../sweepspec/inputs.ts';

/** The spec as the user wrote it (what the workflow receives), or a readable error. */
export async function readSpecFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot read the spec file (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a file' : (code ?? (err as Error).message)})`);
  }
  const isYaml = /\.ya?ml$/i.test(file);
  try {
    return isYaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid ${isYaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

export function formatProblems(file: string, problems: string[]): string {
  return `${file}: ${problemsMessage(problems)}\n`;
}

/** The cell limit the workers enforce (ICL_SWEEP_MAX_CELLS); a value a worker would refuse (not an integer >= 1) counts as the default here. */
function maxCellsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.ICL_SWEEP_MAX_CELLS);
  return Number.isInteger(n) && n >= 1 ? n : DEFAULT_MAX_CELLS;
}

/** The spec checked by the schema, and its grid against the cell limit as far as the spec tells. */
export async function loadAndCheck(file: string, maxCells = maxCellsFromEnv()): Promise<{ input: unknown; check: SpecCheck }> {
  const input = await readSpecFile(file);
  const check = checkSpec(input);
  if (!check.ok) return { input, check };
  const size = gridSizeBound(check.spec);
  // With "all" layers only a lower bound is known here; prepare checks the exact size against the workers' limit.
  const tooBig = gridLimitProblem(size.cells, maxCells, size.bound === 'upper' ? 'up to' : 'at least');
  return { input, check: tooBig ? { ok: false, problems: [`(grid): ${tooBig}`] } : check };
}
