/** Rendering of demonstrations, queries and multiple-choice candidates from a resolved task. */
import type { ResolvedTask } from './definitions.ts';

export type Row = Record<string, unknown>;

/** A cell value as text (the loaders have already checked that required fields are present). */
export function fieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  return String(value);
}

/** Substitutes every `{name}` in one pass: values are never re-scanned for placeholders. */
export function fill(template: string, values: (name: string) => string): string {
  return template.replace(/\{([^{}]+)\}/g, (_, name: string) => values(name));
}

/** Python's str.strip() on the whitespace that matters here (spaces, tabs, newlines, CR, FF, VT). */
export function pyStrip(s: string): string {
  return s.replace(/^[\s]+|[\s]+$/g, '');
}

function rowValue(row: Row, name: string): string {
  return fieldText(row[name]);
}

/** One demonstration line for a row whose class is `label`. */
export function renderDemo(task: ResolvedTask, row: Row, label: number): string {
  const answer = task.kind === 'multiple-choice' ? rowValue(row, task.choices!.fields[label]) : task.demoAnswers![label];
  return fill(task.demo, (name) => (name === 'answer' ? answer : rowValue(row, name)));
}

/** The demonstration block: demonstrations concatenated in order. */
export function renderDemos(task: ResolvedTask, demos: { row: Row; label: number }[]): string {
  return demos.map((d) => renderDemo(task, d.row, d.label)).join('');
}

/** Classification: the text after the demonstrations whose next token is scored. */
export function renderQuery(task: ResolvedTask, row: Row): string {
  const q = task.query!;
  const body = fill(q.body, (name) => rowValue(row, name));
  return (q.strip ? pyStrip(body) : body) + q.suffix;
}

/** Multiple choice: the shared context and one continuation per choice. */
export function renderChoices(task: ResolvedTask, row: Row): { context: string; continuations: string[] } {
  const c = task.choices!;
  const context = fill(c.context, (name) => rowValue(row, name));
  const continuations = c.fields.map((f) => fill(c.continuation, (name) => (name === 'choice' ? rowValue(row, f) : rowValue(row, name))));
  return { context, continuations };
}
