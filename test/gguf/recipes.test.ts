/** Dataset recipes: deterministic, disjoint, class-balanced splits with the stated sizes; single-token verbalizers. */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emailSnippet, prepareRecipe, RECIPE_NAMES, RECIPES, resolveRecipe, SENTIMENT_TASK_PROTOCOL, SPAM_TASK, splitRows } from '../../engine/data/recipes/index.ts';
import { customTaskSchema } from '../../sweepspec/schema.ts';
import { EngineInputError } from '../../engine/types.ts';

let a: string;
let b: string;
beforeAll(async () => {
  a = await mkdtemp(join(tmpdir(), 'recipes-a-'));
  b = await mkdtemp(join(tmpdir(), 'recipes-b-'));
});
afterAll(async () => {
  await rm(a, { recursive: true, force: true });
  await rm(b, { recursive: true, force: true });
});

const read = (dir: string, split: string) =>
  readFileSync(join(dir, `${split}.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const EXPECTED: Record<string, { train: number; validation: number; test: number }> = {
  'sentiment-uci/imdb': { train: 240, validation: 100, test: 150 },
  'sentiment-uci/amazon': { train: 240, validation: 100, test: 150 },
  'sentiment-uci/yelp': { train: 240, validation: 100, test: 150 },
  'spam-assassin': { train: 500, validation: 150, test: 150 },
};

describe('dataset recipes', () => {
  it('knows exactly the four recipes', () => {
    expect(RECIPE_NAMES.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const name of Object.keys(EXPECTED)) {
    it(`${name}: deterministic, disjoint, balanced, sized as stated`, async () => {
      const r1 = await resolveRecipe(name, a);
      const r2 = await prepareRecipe(name, { cacheDir: b });
      expect(customTaskSchema.parse(r1.task)).toEqual(r1.task);
      const field = RECIPES[name]!.field;
      expect(r1.task.template).toContain(`{${field}}`);
      const seen = new Map<string, string>();
      for (const split of ['train', 'validation', 'test'] as const) {
        // byte-identical files from two independent preparations
        expect(readFileSync(join(r1.path, `${split}.jsonl`), 'utf8')).toBe(readFileSync(join(r2.path, `${split}.jsonl`), 'utf8'));
        const rows = read(r1.path, split);
        const per = EXPECTED[name]![split];
        expect(rows.length).toBe(2 * per);
        expect(rows.filter((r) => r.label === 0).length).toBe(per);
        expect(rows.filter((r) => r.label === 1).length).toBe(per);
        for (const r of rows) {
          expect(typeof r[field]).toBe('string');
          expect((r[field] as string).length).toBeGreaterThan(0);
          const key = (r[field] as string).toLowerCase().replace(/\s+/g, ' ').trim();
          expect(seen.get(key), `"${key.slice(0, 60)}" in ${seen.get(key)} and ${split}`).toBeUndefined();
          seen.set(key, split);
        }
      }
      // reuse: a second call returns the same folder without rewriting
      const again = await resolveRecipe(name, a);
      expect(again.path).toBe(r1.path);
    });
  }

  it('verbalizers are single tokens (after a space) for SmolLM2-135M; the protocol variant and spam also for the tiny fixtures', () => {
    // SmolLM2's ids from transformers' tokenizer (test/fixtures/gguf/smollm2-reference.json)
    const smol = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'gguf', 'smollm2-reference.json'), 'utf8')) as {
      tokens: { text: string; ids: number[] }[];
    };
    for (const def of Object.values(RECIPES)) {
      for (const word of Object.values(def.task.answers)) {
        const known = smol.tokens.find((t) => t.text === ` ${word}`);
        expect(known, `" ${word}" missing from smollm2-reference.json tokens`).toBeDefined();
        expect(known!.ids.length).toBe(1);
      }
    }
    const dir = join(import.meta.dirname, '..', 'fixtures', 'models', 'llama');
    const tok = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
    for (const task of [SENTIMENT_TASK_PROTOCOL, SPAM_TASK]) {
      for (const word of Object.values(task.answers)) expect(tok.encode(` ${word}`, { add_special_tokens: false }).ids.length, `fixture: " ${word}"`).toBe(1);
    }
  });

  it('splitRows: drops duplicates and texts with conflicting labels; errors when a class is short', () => {
    const rows = [
      ...Array.from({ length: 6 }, (_, i) => ({ text: `good ${i}`, label: 1 })),
      ...Array.from({ length: 6 }, (_, i) => ({ text: `bad ${i}`, label: 0 })),
      { text: 'GOOD  0', label: 1 },
      { text: 'mixed', label: 0 },
      { text: 'mixed', label: 1 },
    ];
    const s = splitRows('t', rows, { train: 2, validation: 2, test: 2 }, 2);
    const all = [...s.train, ...s.validation, ...s.test].map((r) => r.text);
    expect(new Set(all.map((t) => t.toLowerCase().replace(/\s+/g, ' '))).size).toBe(12);
    expect(all).not.toContain('mixed');
    expect(() => splitRows('t', rows, { train: 3, validation: 2, test: 2 }, 2)).toThrow(/class 0 has 6 distinct rows, fewer than the 7/);
  });

  it('emailSnippet: subject + decoded plain-text body, bounded', () => {
    const raw =
      'From: a@b\nSubject: Hello\n there\nContent-Type: multipart/alternative; boundary="XX"\n\n--XX\nContent-Type: text/html\n\n<p>html</p>\n--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n' +
      Buffer.from('Plain body text '.repeat(60)).toString('base64') +
      '\n--XX--\n';
    const s = emailSnippet(raw);
    expect(s.startsWith('Subject: Hello there. Plain body text')).toBe(true);
    expect(s.length).toBeLessThanOrEqual(404);
  });

  it('an unknown recipe lists the known ones', async () => {
    const err = await resolveRecipe('sentiment-uci/nope', a).catch((e) => e);
    expect(err).toBeInstanceOf(EngineInputError);
    expect(err.message).toMatch(/unknown dataset recipe "sentiment-uci\/nope"/);
    for (const n of RECIPE_NAMES) expect(err.message).toContain(n);
  });
});
