export { importGguf, readGgufHeader, SUPPORTED_ARCHITECTURES } from './import.ts';
export type { ImportOptions, ImportProgress, ImportResult } from './import.ts';
export { SUPPORTED_TYPES, dequantize, GGML_TYPE, ggmlTypeName } from './dequant.ts';
export { buildTokenizer } from './tokenizer.ts';
export { prepareSmolLM2, SMOLLM2_PACKAGE } from './smollm2.ts';
