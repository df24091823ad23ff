/** Datasets held in memory, for sampling tests. */
import type { ReadDataset, Row, SplitName } from '../../engine/data/files.ts';

export function virtualRead(splits: Partial<Record<SplitName, Row[]>>): ReadDataset {
  const out: ReadDataset['splits'] = {};
  for (const [name, rows] of Object.entries(splits) as [SplitName, Row[]][]) {
    out[name] = { split: name, files: [`/virtual/${name}.jsonl`], source: `/virtual/${name}.jsonl`, rows, counts: [rows.length] };
  }
  return { dir: '/virtual', splits: out, filesHash: 'virtual', signature: '', bytes: 0 };
}
