/** A small helper to build an ONNX graph with onnx-proto (protobufjs messages). */
import onnxProto from 'onnx-proto';
import type { onnx as O } from 'onnx-proto';

export const { onnx } = onnxProto;
export const DT = onnx.TensorProto.DataType;

type Attr = number | number[] | string | { t: O.ITensorProto };

export class GraphBuilder {
  readonly nodes: O.INodeProto[] = [];
  readonly initializers: O.ITensorProto[] = [];
  private counter = 0;
  private constCache = new Map<string, string>();

  /** Adds a node; returns its output names (one per `outputs` count, named `${name}_output_${i}` like torch.onnx). */
  node(op: string, inputs: string[], name: string, attrs: Record<string, Attr> = {}, outputs = 1, outputNames?: string[]): string[] {
    const outs = outputNames ?? Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`);
    const attribute: O.IAttributeProto[] = Object.entries(attrs).map(([k, v]) => {
      if (typeof v === 'number') return Number.isInteger(v) && !(k === 'value_float' || k === 'epsilon' || k === 'alpha')
        ? { name: k, type: onnx.AttributeProto.AttributeType.INT, i: v }
        : { name: k, type: onnx.AttributeProto.AttributeType.FLOAT, f: v };
      if (typeof v === 'string') return { name: k, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(v) };
      if (Array.isArray(v)) return { name: k, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
      return { name: k, type: onnx.AttributeProto.AttributeType.TENSOR, t: v.t };
    });
    this.nodes.push({ opType: op, input: inputs, output: outs, name, attribute });
    return outs;
  }

  /** One-output node. */
  op(op: string, inputs: string[], name: string, attrs: Record<string, Attr> = {}): string {
    return this.node(op, inputs, name, attrs)[0]!;
  }

  /** A small constant (Constant node), shared by value. */
  constInt64(values: number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = `/Constant_${this.counter++}`;
    const t: O.ITensorProto = { dataType: DT.INT64, dims: scalar ? [] : [values.length], int64Data: values };
    const out = this.node('Constant', [], name, { value: { t } })[0]!;
    this.constCache.set(key, out);
    return out;
  }

  constFloat(values: number[] | Float32Array, dims: number[]): string {
    const key = `f32:${dims.join('x')}:${Array.from(values).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = `/Constant_${this.counter++}`;
    const t: O.ITensorProto = { dataType: DT.FLOAT, dims, floatData: Array.from(values) };
    const out = this.node('Constant', [], name, { value: { t } })[0]!;
    this.constCache.set(key, out);
    return out;
  }
}

export function valueInfo(name: string, elemType: number, dims: (number | string)[]): O.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}
