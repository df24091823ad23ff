/** Dataset folders: formats, layouts, labels, fingerprints, and every bad input's error. */
import { cpSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { loadDataset } from '../../engine/data/index.ts';
import { discoverSplits } from '../../engine/data/files.ts';
import { EngineInputError } from '../../engine/types.ts';
import type { CustomTask } from '../../engine/types.ts';

const FIX = resolve(import.meta.dirname, '../fixtures/datasets');
const tmp = mkdtempSync(join(tmpdir(), 'engine-datasets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
function folder(files: Record<string, string | Uint8Array>): string {
  const dir = join(tmp, `d${n++}`);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const rteRows = (n: number) => Array.from({ length: n }, (_, i) => ({ premise: `p ${i}`, hypothesis: `h ${i}`, label: i % 2 }));

async function inputError(p: Promise<unknown>): Promise<EngineInputError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EngineInputError);
    return e as EngineInputError;
  }
  throw new Error('expected an EngineInputError');
}

const CUSTOM: CustomTask = { template: 'Review: {review}\nVerdict: {answer}\n', answers: { good: 'Yes', bad: 'No' }, labelField: 'verdict' };

describe('fixture datasets (test/fixtures/datasets)', () => {
  it('sst2: Parquet in the hub layout, int64 labels, unlabelled test split', async () => {
    const found = await discoverSplits(join(FIX, 'sst2'));
    expect(found.train!.files[0]).toMatch(/data\/train-00000-of-00001\.parquet$/);
    const ds = await loadDataset(join(FIX, 'sst2'), 'sst2');
    expect(ds.splits.train!.rows).toHaveLength(60);
    expect(ds.splits.validation!.rows).toHaveLength(20);
    expect(ds.splits.test!.labels).toBeNull();
    expect(typeof ds.splits.train!.rows[0].label).toBe('number');
    expect(ds.splits.train!.labels!.filter((l) => l === 1)).toHaveLength(30);
    expect(ds.info.classes).toEqual(['neg', 'pos']);
    expect(ds.info.kind).toBe('classification');
  });

  it('rte: JSON Lines, string labels mapped through the task', async () => {
    const ds = await loadDataset(join(FIX, 'rte'), 'rte');
    expect(ds.splits.train!.rows[0].label).toBe('entailment');
    expect(ds.splits.train!.labels!.slice(0, 4)).toEqual([0, 1, 0, 1]);
    expect(ds.splits.validation!.labels!.slice(0, 4)).toEqual([0, 1, 0, 1]);
    expect(ds.splits.test!.labels).toBeNull();
  });

  it('copa: CSV (labels as text)', async () => {
    const ds = await loadDataset(join(FIX, 'copa'), 'copa');
    expect(ds.splits.train!.rows[0].label).toBe('0');
    expect(ds.splits.train!.labels!.slice(0, 4)).toEqual([0, 1, 0, 1]);
    expect(ds.info).toMatchObject({ kind: 'multiple-choice', classes: ['choice1', 'choice2'] });
  });

  it('custom: a user-defined task with its own label field', async () => {
    const ds = await loadDataset(join(FIX, 'custom'), CUSTOM);
    expect(ds.info.classes).toEqual(['Yes', 'No']);
    expect(ds.splits.train!.labels!.slice(0, 2)).toEqual([0, 1]);
    expect(ds.splits.validation).toBeUndefined();
  });
});

describe('layouts and formats', () => {
  it('reads a JSON array, top-level Parquet shards in order, and prefers the top level to data/', async () => {
    const a = folder({ 'train.json': JSON.stringify(rteRows(4)) });
    expect((await loadDataset(a, 'rte')).splits.train!.rows).toHaveLength(4);
    const shard = (rows: ReturnType<typeof rteRows>) =>
      new Uint8Array(
        parquetWriteBuffer({
          columnData: [
            { name: 'premise', data: rows.map((r) => r.premise), type: 'STRING' },
            { name: 'hypothesis', data: rows.map((r) => r.hypothesis), type: 'STRING' },
            { name: 'label', data: rows.map((r) => BigInt(r.label)), type: 'INT64' },
          ],
        }),
      );
    const rows = rteRows(6);
    const b = folder({ 'train-00001-of-00002.parquet': shard(rows.slice(3)), 'train-00000-of-00002.parquet': shard(rows.slice(0, 3)), 'data/validation.jsonl': jsonl(rteRows(2)) });
    const ds = await loadDataset(b, 'rte');
    expect(ds.splits.train!.rows.map((r) => r.premise)).toEqual(rows.map((r) => r.premise));
    expect(ds.splits.validation!.rows).toHaveLength(2);
  });

  it('fingerprint: content and task, not the folder path', async () => {
    const one = folder({ 'train.jsonl': jsonl(rteRows(6)) });
    const two = join(tmp, 'copy-of-one');
    cpSync(one, two, { recursive: true });
    const f1 = (await loadDataset(one, 'rte')).fingerprint;
    expect((await loadDataset(two, 'rte')).fingerprint).toBe(f1);
    expect((await loadDataset(one, 'cb')).fingerprint).not.toBe(f1);
    writeFileSync(join(two, 'train.jsonl'), jsonl(rteRows(7)));
    expect((await loadDataset(two, 'rte')).fingerprint).not.toBe(f1);
    const c1 = await loadDataset(join(FIX, 'custom'), CUSTOM);
    const c2 = await loadDataset(join(FIX, 'custom'), { ...CUSTOM, template: 'Review: {review}\nVerdict: {answer}\n\n' });
    expect(c2.fingerprint).not.toBe(c1.fingerprint);
  });
});

describe('bad input -> EngineInputError naming the file and the field', () => {
  it('missing folder', async () => {
    const e = await inputError(loadDataset(join(tmp, 'nope'), 'rte'));
    expect(e.message).toContain(join(tmp, 'nope'));
  });

  it('no train split', async () => {
    const dir = folder({ 'test.jsonl': jsonl(rteRows(2)) });
    const e = await inputError(loadDataset(dir, 'rte'));
    expect(e.message).toMatch(/no train split/);
    expect(e.message).toContain(dir);
  });

  it('a missing field', async () => {
    const dir = folder({ 'train.jsonl': jsonl(rteRows(4).map(({ hypothesis: _h, ...r }) => r)) });
    const e = await inputError(loadDataset(dir, 'rte'));
    expect(e.message).toContain(join(dir, 'train.jsonl'));
    expect(e.message).toContain('missing field "hypothesis"');
    expect(e.subject).toBe(join(dir, 'train.jsonl'));
  });

  it('a field missing in one row names the row', async () => {
    const rows: object[] = rteRows(4);
    rows[2] = { premise: null, hypothesis: 'h', label: 0 };
    const dir = folder({ 'validation.jsonl': jsonl(rows), 'train.jsonl': jsonl(rteRows(4)) });
    const e = await inputError(loadDataset(dir, 'rte'));
    expect(e.message).toMatch(/validation\.jsonl: row 2: missing field "premise"/);
  });

  it('a missing label field', async () => {
    const dir = folder({ 'train.csv': 'premise,hypothesis\na,b\nc,d\n' });
    const e = await inputError(loadDataset(dir, 'rte'));
    expect(e.message).toMatch(/train\.csv: missing field "label"/);
  });

  it('a missing custom field', async () => {
    const dir = folder({ 'train.jsonl': jsonl([{ text: 'x', verdict: 'good' }]) });
    const e = await inputError(loadDataset(dir, CUSTOM));
    expect(e.message).toMatch(/train\.jsonl: missing field "review"/);
  });

  it('an unknown label', async () => {
    const rows: object[] = rteRows(4);
    rows[3] = { premise: 'p', hypothesis: 'h', label: 'maybe' };
    const dir = folder({ 'train.jsonl': jsonl(rows) });
    const e = await inputError(loadDataset(dir, 'rte'));
    expect(e.message).toMatch(/train\.jsonl: row 3: field "label" has a value that is not one of its labels; task rte knows "0", "1"/);
    expect(e.message).not.toContain('maybe'); // the file's value is not quoted
    const dir2 = folder({ 'train.jsonl': jsonl([...rteRows(2), { premise: 'p', hypothesis: 'h', label: 2 }]) });
    expect((await inputError(loadDataset(dir2, 'rte'))).message).toMatch(/row 2: field "label" has a value that is not one of its labels/);
  });

  it('an unlabelled train row', async () => {
    const dir = folder({ 'train.jsonl': jsonl([...rteRows(2), { premise: 'p', hypothesis: 'h', label: -1 }]) });
    expect((await inputError(loadDataset(dir, 'rte'))).message).toMatch(/train\.jsonl: row 2: field "label" is missing or unlabelled/);
  });

  it('an unknown custom label', async () => {
    const dir = folder({ 'train.jsonl': jsonl([{ review: 'x', verdict: 'good' }, { review: 'y', verdict: 'meh' }]) });
    const message = (await inputError(loadDataset(dir, CUSTOM))).message;
    expect(message).toMatch(/row 1: field "verdict" has a value that is not one of its labels; task custom knows "good", "bad"/);
    expect(message).not.toContain('meh');
  });

  it('unreadable files', async () => {
    const bad = folder({ 'train.jsonl': '{"premise": "a", "hypothesis": "b", "label": 0}\n{not json\n' });
    expect((await inputError(loadDataset(bad, 'rte'))).message).toMatch(/train\.jsonl: line 2 is not valid JSON/);
    const csv = folder({ 'train.csv': 'premise,hypothesis,label\n"a,b,0\n' });
    expect((await inputError(loadDataset(csv, 'rte'))).message).toMatch(/train\.csv: not valid CSV at line 2 \(CSV_QUOTE_NOT_CLOSED\)/);
    const pq = folder({ 'train.parquet': 'not parquet at all' });
    expect((await inputError(loadDataset(pq, 'rte'))).message).toMatch(/train\.parquet: cannot read as Parquet/);
    const two = folder({ 'train.csv': 'premise,hypothesis,label\na,b,0\n', 'train.jsonl': jsonl(rteRows(2)) });
    expect((await inputError(loadDataset(two, 'rte'))).message).toMatch(/several formats/);
  });
});
