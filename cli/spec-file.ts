/** Reading a sweep spec file (JSON or YAML) and checking it with the shared schema. */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { checkSpec, type SpecCheck } from '../sweepspec/schema.ts';

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
  return `${file}: invalid sweep spec (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}\n`;
}

export async function loadAndCheck(file: string): Promise<{ input: unknown; check: SpecCheck }> {
  const input = await readSpecFile(file);
  return { input, check: checkSpec(input) };
}
