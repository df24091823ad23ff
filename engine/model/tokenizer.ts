/** The export's tokenizer (tokenizer.json + tokenizer_config.json) and the BOS token it puts first, if any. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { parseJson } from '../json.ts';
import { EngineInputError } from '../types.ts';

/** A JSON file of the model folder; a parse error says where, never what the file holds. */
export function readJson(path: string): Record<string, any> {
  if (!existsSync(path)) throw new EngineInputError(`file not found: ${path}`, path);
  const value = parseJson(readFileSync(path, 'utf8'), path, path);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new EngineInputError(`${path} is not a JSON object`, path);
  return value as Record<string, any>;
}

export interface ModelTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  bosId: number | null;
}

export function loadTokenizer(dir: string): ModelTokenizer {
  const tj = readJson(join(dir, 'tokenizer.json'));
  const tcPath = join(dir, 'tokenizer_config.json');
  const tc = existsSync(tcPath) ? readJson(tcPath) : {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tj, tc);
  } catch {
    // The library's message may quote the file's contents: name only the file.
    throw new EngineInputError(`cannot build a tokenizer from ${join(dir, 'tokenizer.json')} (not a Hugging Face tokenizer.json this library reads)`, join(dir, 'tokenizer.json'));
  }
  const plain = tok.encode('a', { add_special_tokens: false }).ids;
  const special = tok.encode('a', { add_special_tokens: true }).ids;
  let bosId: number | null = null;
  if (special.length > plain.length && special.slice(1, 1 + plain.length).join() === plain.join()) {
    bosId = special[0]; // the post-processor puts a token first
  } else if (tc.add_bos_token === true && tc.bos_token) {
    const t = typeof tc.bos_token === 'string' ? tc.bos_token : tc.bos_token.content;
    bosId = tok.token_to_id(t) ?? null;
  }
  return {
    encode: (text: string) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids: number[]) => tok.decode(ids, { skip_special_tokens: false }),
    bosId,
  };
}
