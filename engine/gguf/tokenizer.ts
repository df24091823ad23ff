/**
 * tokenizer.json + tokenizer_config.json (Hugging Face "tokenizers" format) from a GGUF file's
 * tokenizer.ggml.* metadata. Only byte-level BPE ("gpt2" tokenizer model) is supported; the
 * pre-tokenizer follows llama.cpp's table for tokenizer.ggml.pre (llama-vocab.cpp).
 */
import { EngineInputError } from '../types.ts';

type Meta = Record<string, unknown>;

const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });

/** Pre-tokenizer for a tokenizer.ggml.pre value (llama.cpp's names). */
export function preTokenizerFor(pre: string | undefined): object {
  switch (pre) {
    case undefined:
    case 'default':
    case 'gpt-2':
    case 'gpt2':
    case 'jais':
    case 'olmo':
    case 'poro-chat':
      return byteLevel(true);
    // llama.cpp: "\p{N}" then the GPT-2 regex: every digit on its own (HF: Digits(individual_digits) + ByteLevel).
    case 'smollm':
    case 'starcoder':
    case 'refact':
    case 'command-r':
    case 'codeshell':
    case 'exaone':
    case 'minerva-7b':
      return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] };
    case 'llama3':
    case 'llama-bpe':
    case 'llama-v3':
    case 'dbrx':
    case 'smaug-bpe':
      return { type: 'Sequence', pretokenizers: [split(LLAMA3_REGEX), byteLevel(false)] };
    case 'qwen2':
    case 'deepseek-r1-qwen':
      return { type: 'Sequence', pretokenizers: [split(QWEN2_REGEX), byteLevel(false)] };
    default:
      throw new EngineInputError(`GGUF tokenizer.ggml.pre "${pre}" is not supported by the importer`, 'tokenizer.ggml.pre');
  }
}

export interface BuiltTokenizer {
  tokenizerJson: object;
  tokenizerConfig: object;
  bosId: number | null;
  eosId: number | null;
  addBos: boolean;
}

export function buildTokenizer(meta: Meta): BuiltTokenizer {
  const model = meta['tokenizer.ggml.model'];
  if (model !== 'gpt2') {
    throw new EngineInputError(
      `GGUF tokenizer model "${String(model)}" is not supported (only byte-level BPE, tokenizer.ggml.model = "gpt2")`,
      'tokenizer.ggml.model',
    );
  }
  const tokens = meta['tokenizer.ggml.tokens'] as string[] | undefined;
  const merges = meta['tokenizer.ggml.merges'] as string[] | undefined;
  if (!Array.isArray(tokens) || !Array.isArray(merges)) throw new EngineInputError('GGUF file lacks tokenizer.ggml.tokens or tokenizer.ggml.merges', 'tokenizer.ggml.tokens');
  const types = (meta['tokenizer.ggml.token_type'] as number[] | undefined) ?? [];
  const num = (k: string) => (meta[k] === undefined ? null : Number(meta[k]));
  const bosId = num('tokenizer.ggml.bos_token_id');
  const eosId = num('tokenizer.ggml.eos_token_id');
  const unkId = num('tokenizer.ggml.unknown_token_id');
  const padId = num('tokenizer.ggml.padding_token_id');
  const addBos = meta['tokenizer.ggml.add_bos_token'] === true;
  const addEos = meta['tokenizer.ggml.add_eos_token'] === true;

  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  // token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
  const added: object[] = [];
  tokens.forEach((t, i) => {
    const type = types[i];
    if (type === 3 || type === 4) {
      added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: type === 4, special: type === 3 });
    }
  });
  const tok = (id: number | null) => (id === null || id < 0 || id >= tokens.length ? null : tokens[id]!);
  const postProcessor =
    addBos && bosId !== null
      ? {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: tok(bosId), type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [
            { SpecialToken: { id: tok(bosId), type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: tok(bosId), type_id: 1 } },
            { Sequence: { id: 'B', type_id: 1 } },
          ],
          special_tokens: { [tok(bosId)!]: { id: tok(bosId), ids: [bosId], tokens: [tok(bosId)] } },
        }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true };

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    // Qwen2's tokenizer normalizes to NFC (transformers' Qwen2Converter does the same)
    normalizer: ['qwen2', 'deepseek-r1-qwen'].includes(String(meta['tokenizer.ggml.pre'])) ? { type: 'NFC' } : null,
    pre_tokenizer: preTokenizerFor(meta['tokenizer.ggml.pre'] as string | undefined),
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => {
        const i = m.indexOf(' ');
        return [m.slice(0, i), m.slice(i + 1)];
      }),
    },
  };
  const addedDecoder: Record<string, object> = {};
  for (const a of added as { id: number; content: string; special: boolean; normalized: boolean }[]) {
    addedDecoder[String(a.id)] = { content: a.content, lstrip: false, normalized: a.normalized, rstrip: false, single_word: false, special: a.special };
  }
  const tokenizerConfig = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    add_prefix_space: false,
    added_tokens_decoder: addedDecoder,
    bos_token: tok(bosId),
    eos_token: tok(eosId),
    unk_token: tok(unkId),
    pad_token: tok(padId),
    clean_up_tokenization_spaces: false,
    model_max_length: 1e30,
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...(typeof meta['tokenizer.chat_template'] === 'string' ? { chat_template: meta['tokenizer.chat_template'] } : {}),
  };
  return { tokenizerJson, tokenizerConfig, bosId: addBos ? bosId : null, eosId, addBos };
}
