/** CSV as pandas reads it (RFC 4180): the one field escape the report's and the export's CSV files share. Pure. */

/** One field: empty for null; arrays as JSON with non-finite numbers as Python's json module writes them (-Infinity, NaN); dates in ISO 8601; quoted when it holds a quote, comma or line break. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (Array.isArray(value)) text = `[${value.map((v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v))).join(',')}]`;
  else if (value instanceof Date) text = value.toISOString();
  else text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
