/**
 * Bounded input: one example and one dataset have size limits, checked while reading (a 50 MB JSON
 * line is refused after reading the limit of it, before any tokenizing); the dataset cache is
 * bounded in bytes; errors name file, row and limit and never quote the file's bytes.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DatasetCache, DEFAULT_LIMITS, loadDataset } from '../../engine/data/index.ts';
import { EngineInputError } from '../../engine/types.ts';

const tmp = mkdtempSync(join(tmpdir(), 'engine-limits-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function folder(files: Record<string, string | Uint8Array>): string {
  const dir = join(tmp, `d${n++}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

const row = (i: number, sentence = `sentence ${i}`) => JSON.stringify({ sentence, label: i % 2 });
const jsonl = (count: number) => Array.from({ length: count }, (_, i) => row(i)).join('\n') + '\n';

async function inputError(p: Promise<unknown>): Promise<EngineInputError> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(EngineInputError);
  return err as EngineInputError;
}

describe('one example', () => {
  it('a 50 MB JSON line is refused while reading, naming file, row, line and limit', async () => {
    const huge = row(2, 'x'.repeat(50 * 2 ** 20));
    const dir = folder({ 'train.jsonl': `${row(0)}\n${row(1)}\n${huge}\n${row(3)}\n` });
    const t0 = performance.now();
    const e = await inputError(loadDataset(dir, 'sst2'));
    const ms = performance.now() - t0;
    expect(e.message).toBe(`${join(dir, 'train.jsonl')}: row 2 (line 3) is larger than the limit of 1 MiB per example (ICL_SWEEP_MAX_EXAMPLE_KB)`);
    expect(e.message).not.toContain('xxxx');
    // Reading stops at the limit: far less than parsing 50 MB would take (the figure is in bench:input).
    expect(ms).toBeLessThan(5_000);
  });

  it('a line without a final newline, a CSV record, a Parquet row and a JSON-array row over the limit', async () => {
    const limits = { exampleBytes: 1000, datasetBytes: DEFAULT_LIMITS.datasetBytes };
    const long = 'y'.repeat(2000);
    const last = folder({ 'train.jsonl': `${row(0)}\n${row(1, long)}` });
    expect((await inputError(loadDataset(last, 'sst2', limits))).message).toMatch(/train\.jsonl: row 1 \(line 2\) is larger than the limit of 1000 B per example/);
    const csv = folder({ 'train.csv': `sentence,label\na,0\n${long},1\n` });
    expect((await inputError(loadDataset(csv, 'sst2', limits))).message).toMatch(/train\.csv: the record at line 3 is larger than the limit of 1000 B per example/);
    const pq = folder({
      'train.parquet': new Uint8Array(
        parquetWriteBuffer({ columnData: [{ name: 'sentence', data: ['a', long, 'b'] }, { name: 'label', data: [0, 1, 0], type: 'INT32' }] }),
      ),
    });
    expect((await inputError(loadDataset(pq, 'sst2', limits))).message).toMatch(/train\.parquet: row 1 is larger than the limit of 1000 B per example/);
    const array = folder({ 'train.json': JSON.stringify([{ sentence: 'a', label: 0 }, { sentence: long, label: 1 }]) });
    expect((await inputError(loadDataset(array, 'sst2', limits))).message).toMatch(/train\.json: row 1 is larger than the limit/);
    // At the limit is fine.
    const fits = folder({ 'train.jsonl': `${row(0)}\n${row(1, 'z'.repeat(900))}\n` });
    expect((await loadDataset(fits, 'sst2', limits)).splits.train!.rows).toHaveLength(2);
  });
});

describe('one dataset', () => {
  it('is refused by the size of its files before any row is parsed', async () => {
    const limits = { exampleBytes: DEFAULT_LIMITS.exampleBytes, datasetBytes: 2048 };
    // Not JSON at all: a parse would fail with another message; the size check comes first.
    const dir = folder({ 'train.jsonl': 'not json\n'.repeat(300), 'test.jsonl': jsonl(4) });
    const e = await inputError(loadDataset(dir, 'sst2', limits));
    expect(e.message).toMatch(/^dataset .*: its split files hold 2\.\d KiB, over the limit of 2 KiB per dataset \(ICL_SWEEP_MAX_DATASET_MB\)$/);
  });

  it('a Parquet file is measured uncompressed', async () => {
    const data = Array.from({ length: 400 }, (_, i) => `${i} ` + 'the same words again and again '.repeat(20));
    const bytes = new Uint8Array(
      parquetWriteBuffer({ columnData: [{ name: 'sentence', data }, { name: 'label', data: data.map((_, i) => i % 2), type: 'INT32' }] }),
    );
    expect(bytes.length).toBeLessThan(64 * 1024); // compresses well
    const dir = folder({ 'train.parquet': bytes });
    const e = await inputError(loadDataset(dir, 'sst2', { exampleBytes: DEFAULT_LIMITS.exampleBytes, datasetBytes: 128 * 1024 }));
    expect(e.message).toMatch(/train\.parquet: holds \d+(\.\d)? KiB uncompressed, over the limit of 128 KiB per dataset/);
  });
});

describe('the dataset cache', () => {
  it('is bounded in bytes, least recently used out first', async () => {
    const dirs = [0, 1, 2].map(() => folder({ 'train.jsonl': jsonl(200) }));
    const one = (await loadDataset(dirs[0], 'sst2')).splits.train!.rows.reduce((s, r) => s + String(r.sentence).length + 8, 0);
    const cache = new DatasetCache(join(tmp, 'cache'), { maxBytes: Math.floor(one * 2.5) });
    const spec = (i: number) => ({ name: `d${i}`, task: 'sst2' as const, path: dirs[i] });
    const first = await cache.get(spec(0));
    expect(await cache.get(spec(0))).toBe(first); // kept
    await cache.get(spec(1));
    expect(cache.bytes).toBe(2 * one);
    await cache.get(spec(2)); // over the bound: the least recently used (0) goes
    expect(cache.bytes).toBe(2 * one);
    expect(await cache.get(spec(0))).not.toBe(first); // read again
    const tiny = new DatasetCache(join(tmp, 'cache'), { maxBytes: one - 1 });
    const a = await tiny.get(spec(1));
    expect(tiny.bytes).toBe(0); // larger than the bound: used, not kept
    expect(await tiny.get(spec(1))).not.toBe(a);
  });
});

describe('messages never quote the file', () => {
  it('JSON, CSV and Parquet parse errors name file and place only', async () => {
    const secret = 'hunter2-password';
    const cases: [Record<string, string>, RegExp][] = [
      [{ 'train.jsonl': `${row(0)}\n{"sentence": "${secret}", label}\n` }, /train\.jsonl: line 2 is not valid JSON \(at character \d+\)$/],
      [{ 'train.jsonl': `${secret}\n` }, /train\.jsonl: line 1 is not valid JSON$/],
      [{ 'train.json': `[{"sentence": "${secret}"` }, /train\.json is not valid JSON \(at character \d+\)$/],
      [{ 'train.json': `[{"sentence": "${secret}", "label": 1}` }, /train\.json is not valid JSON/],
      [{ 'train.csv': `sentence,label\n"${secret},1\n` }, /train\.csv: not valid CSV at line 2 \(CSV_QUOTE_NOT_CLOSED\)$/],
      [{ 'train.csv': `sentence,label\n${secret},1,2\n` }, /train\.csv: not valid CSV at line 2 \(CSV_RECORD_INCONSISTENT_COLUMNS\)$/],
      [{ 'train.parquet': `PAR1${secret}PAR1` }, /train\.parquet: cannot read as Parquet/],
      [{ 'train.jsonl': `${row(0)}\n${JSON.stringify({ sentence: 'a', label: secret })}\n` }, /row 1: field "label" has a value that is not one of its labels/],
    ];
    for (const [files, expected] of cases) {
      const e = await inputError(loadDataset(folder(files), 'sst2'));
      expect(e.message).toMatch(expected);
      expect(e.message).not.toContain('hunter2');
    }
  });
});
