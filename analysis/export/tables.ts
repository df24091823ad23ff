/**
 * A sweep's tables for pandas: `cell_results` (the view's columns, under its SQL names) and
 * `examples` (one row per example of every cell of the sweep, with the cell's coordinates), as
 * CSV (RFC 4180, a header row, empty for null, scores as a JSON array as Python writes it) or Parquet (typed columns,
 * scores as a list of doubles). Pure: the caller reads the rows and writes the bytes.
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import { csvField } from '../csv.ts';

export type ColumnType = 'text' | 'int' | 'int64' | 'double' | 'bool' | 'doubles';

export interface Column {
  /** The SQL name (the CSV header, the Parquet column). */
  name: string;
  type: ColumnType;
  /** Where the value is in a row object. */
  key: string;
}

export type TableRow = Record<string, unknown>;

/** The examples table: coordinates of the cell as the sweep sees them, then the stored outcome. */
export const EXAMPLE_COLUMNS: Column[] = [
  { name: 'model', type: 'text', key: 'model' },
  { name: 'dataset', type: 'text', key: 'dataset' },
  { name: 'task', type: 'text', key: 'task' },
  { name: 'module', type: 'text', key: 'module' },
  { name: 'layer', type: 'int', key: 'layer' },
  { name: 'ratio', type: 'double', key: 'ratio' },
  { name: 'split', type: 'text', key: 'split' },
  { name: 'cell_key', type: 'text', key: 'cellKey' },
  { name: 'idx', type: 'int', key: 'idx' },
  { name: 'label', type: 'int', key: 'label' },
  { name: 'prediction', type: 'int', key: 'prediction' },
  { name: 'correct', type: 'bool', key: 'correct' },
  { name: 'scores', type: 'doubles', key: 'scores' },
];

/** The header line (when `header`) and one line per row. */
export function csvLines(columns: readonly Column[], rows: readonly TableRow[], header: boolean): string {
  const lines = rows.map((r) => columns.map((c) => csvField(r[c.key])).join(','));
  if (header) lines.unshift(columns.map((c) => c.name).join(','));
  return lines.length ? `${lines.join('\n')}\n` : '';
}

const PARQUET_TYPES = { text: 'BYTE_ARRAY', int: 'INT32', int64: 'INT64', double: 'DOUBLE', bool: 'BOOLEAN' } as const;

/** A Parquet file of the rows: every column optional (null where the view has null); scores as LIST<DOUBLE>. */
export function parquetTable(columns: readonly Column[], rows: readonly TableRow[]): ArrayBuffer {
  const schema: Record<string, unknown>[] = [{ name: 'root', num_children: columns.length }];
  for (const c of columns) {
    if (c.type === 'doubles') {
      schema.push(
        { name: c.name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'DOUBLE', repetition_type: 'REQUIRED' },
      );
    } else {
      schema.push({ name: c.name, type: PARQUET_TYPES[c.type], repetition_type: 'OPTIONAL', ...(c.type === 'text' ? { converted_type: 'UTF8' } : {}) });
    }
  }
  const columnData = columns.map((c) => ({
    name: c.name,
    data: rows.map((r) => {
      const v = r[c.key];
      if (v === undefined || v === null) return null;
      if (c.type === 'int64') return BigInt(v as number);
      return c.type === 'text' && typeof v !== 'string' ? String(v) : v;
    }),
  }));
  return parquetWriteBuffer({ columnData, schema: schema as never });
}
