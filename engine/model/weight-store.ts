/**
 * The weights as the export stores them. ONNX Runtime reads every initializer itself (from model.onnx, or
 * from the external data files beside it); the engine reads only the matrices a cell edits, with
 * positioned reads of their byte range, and keeps no copy of them (the decomposition cache holds what is
 * worth keeping).
 */
import { realpathSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import { EngineInputError } from '../types.ts';
import {
  DT_BFLOAT16, DT_FLOAT, DT_FLOAT16, elementCount, externalInfo, graphOf, isExternal, type ModelProto, setExternal, type TensorProto, toFloat32,
} from './onnx.ts';

/** Where one tensor's values are: inline in the ONNX file, or a byte range of an external data file. */
interface Stored {
  name: string;
  dataType: number;
  count: number;
  inline: { bytes: Uint8Array | null; typed: ArrayLike<number> } | null;
  file: string | null;
  offset: number;
  length: number;
}

const READ_CHUNK = 64 << 20;

async function readRange(file: string, offset: number, length: number, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const fh = await open(file, 'r');
  try {
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(out, got, Math.min(length - got, READ_CHUNK), offset + got);
      if (bytesRead <= 0) throw new EngineInputError(`external data file ${file} is truncated (tensor ${what})`, file);
      got += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return out;
}

/**
 * Where an external tensor's bytes are, checked: the location is relative and stays inside the ONNX file's
 * folder (ONNX Runtime refuses anything else), the file exists and holds the range.
 */
function locate(t: TensorProto, onnxDir: string, onnxPath: string): { file: string; offset: number; length: number } {
  const { location, offset, length } = externalInfo(t);
  const file = resolve(onnxDir, location);
  const inside = relative(onnxDir, file);
  // The location is not quoted: messages never repeat the bytes of a user's file.
  if (!location || isAbsolute(location) || inside.startsWith('..') || isAbsolute(inside)) {
    throw new EngineInputError(`${onnxPath}: tensor ${t.name}: its external data location is outside the model folder ${onnxDir}`, onnxPath);
  }
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new EngineInputError(`external data file not found for tensor ${t.name}: ${file}`, file);
  }
  const bytes = length ?? size - offset;
  if (offset < 0 || bytes < 0 || offset + bytes > size) {
    throw new EngineInputError(`external data file ${file} is truncated: tensor ${t.name} needs bytes ${offset}..${offset + bytes}, the file has ${size}`, file);
  }
  return { file, offset, length: bytes };
}

function stored(t: TensorProto, onnxDir: string, onnxPath: string): Stored {
  const base = { name: t.name, dataType: t.dataType, count: elementCount(t) };
  if (isExternal(t)) return { ...base, inline: null, ...locate(t, onnxDir, onnxPath) };
  const bytes = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const typed = t.dataType === DT_FLOAT ? t.floatData : t.int32Data;
  return { ...base, inline: { bytes, typed }, file: null, offset: 0, length: bytes?.length ?? 0 };
}

/** A stored tensor's values as a fresh float32 array (16-bit values widened exactly). */
async function values(s: Stored): Promise<Float32Array> {
  const bytes = s.inline ? s.inline.bytes : await readRange(s.file!, s.offset, s.length, s.name);
  return toFloat32(bytes, s.inline?.typed ?? [], s.dataType, s.count, s.name);
}

export class WeightStore {
  private constructor(private readonly tensors: Map<string, Stored>) {}

  /**
   * The store of the named initializers; every external reference of the model is checked, so a missing or
   * short data file is an input error at load time rather than ONNX Runtime's message later.
   */
  static open(model: ModelProto, names: Set<string>, onnxDir: string, onnxPath: string): WeightStore {
    const tensors = new Map<string, Stored>();
    for (const t of graphOf(model).initializer as TensorProto[]) {
      const s = isExternal(t) || names.has(t.name) ? stored(t, onnxDir, onnxPath) : null;
      if (s && names.has(t.name)) tensors.set(t.name, s);
    }
    return new WeightStore(tensors);
  }

  /** The stored element type of a tensor (ONNX data type number). */
  dataType(name: string): number {
    return this.get(name).dataType;
  }

  /** A stored matrix as a fresh float32 array (16-bit values widened exactly). */
  async matrix(name: string): Promise<Float32Array> {
    return values(this.get(name));
  }

  private get(name: string): Stored {
    const s = this.tensors.get(name);
    if (!s) throw new Error(`internal: ${name} is not in the weight store`);
    return s;
  }
}

/**
 * The folder ONNX Runtime is to read the graph's external data from, with the graph's locations (in memory)
 * renamed to match. Usually the ONNX file's own folder, unchanged. A data file reached through a link (the
 * Hugging Face cache links each snapshot file to a blob named by its hash) is named by its real path
 * instead: ONNX Runtime follows links and refuses data whose real location lies outside the folder it is
 * given, so the folder becomes the real files' folder and each location the real file's name. Locations in
 * `inMemory` (files handed to the runtime from memory) are left alone.
 */
export function realExternalFolder(model: ModelProto, onnxDir: string, onnxPath: string, inMemory: ReadonlySet<string> = new Set()): string {
  const tensors = (graphOf(model).initializer as TensorProto[]).filter((t) => isExternal(t) && !inMemory.has(externalInfo(t).location));
  const real = new Map<string, string>();
  for (const t of tensors) {
    const { location } = externalInfo(t);
    if (!real.has(location)) real.set(location, realpathSync(resolve(onnxDir, location)));
  }
  const realDir = realpathSync(onnxDir);
  if ([...real].every(([location, path]) => path === resolve(realDir, location))) return onnxDir;
  const folders = new Set([...real.values()].map((path) => dirname(path)));
  if (folders.size !== 1) {
    throw new EngineInputError(`${onnxPath}: its external data files lie in different folders once links are followed; ONNX Runtime reads them from one folder`, onnxPath);
  }
  for (const t of tensors) {
    const { location, offset, length } = externalInfo(t);
    setExternal(t, basename(real.get(location)!), offset, length ?? statSync(real.get(location)!).size - offset);
  }
  return [...folders][0];
}

/** The file name the widened weights of a 16-bit model go by (ONNX Runtime reads it from memory, never from disk). */
export const WIDENED_FILE = 'icl-sweep-float32-weights.bin';

/** The in-memory float32 data file of a widened model: its name, and its bytes read when first asked for. */
export interface WidenedFile {
  path: string;
  bytes: number;
  fill(): Promise<Uint8Array>;
}

/**
 * Every 16-bit initializer as float32, for execution providers without 16-bit kernels: small inline ones are
 * widened in place now; the rest are pointed at one in-memory data file (sessionOptions.externalData), whose
 * bytes are read and widened by fill(), when a session first needs them. The graph itself stays small
 * whatever the model's size.
 */
export function widenInitializers(model: ModelProto, onnxDir: string, onnxPath: string): WidenedFile | null {
  const parts: { source: Stored; at: number }[] = [];
  let bytes = 0;
  for (const t of graphOf(model).initializer as TensorProto[]) {
    if (t.dataType !== DT_FLOAT16 && t.dataType !== DT_BFLOAT16) continue;
    const source = stored(t, onnxDir, onnxPath);
    t.dataType = DT_FLOAT;
    t.int32Data = [];
    if (source.inline) {
      t.rawData = new Uint8Array(toFloat32(source.inline.bytes, source.inline.typed, source.dataType, source.count, t.name).buffer);
      continue;
    }
    parts.push({ source, at: bytes });
    setExternal(t, WIDENED_FILE, bytes, source.count * 4);
    bytes += source.count * 4;
  }
  if (parts.length === 0) return null;
  return {
    path: WIDENED_FILE,
    bytes,
    async fill() {
      const data = new Uint8Array(bytes);
      for (const { source, at } of parts) data.set(new Uint8Array((await values(source)).buffer), at);
      return data;
    },
  };
}
