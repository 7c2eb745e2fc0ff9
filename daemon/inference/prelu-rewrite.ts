/**
 * ONNX Runtime's CPU kernel for PRelu is a generic broadcasting loop, and its NCHWc layout
 * transformer cannot keep a PRelu in the blocked layout, so each one costs a reorder out and
 * back in as well. In MiniFASNet (33 PRelu after 33 convolutions) that made PRelu 56 % of the
 * run on one thread, 2.7 of 4.9 ms, where OpenCV's DNN module fuses it into the convolution.
 *
 * The rewrite replaces every PRelu(x, slope) of the default domain with
 *
 *     Relu(x) + Mul(Min(x, 0), slope)
 *
 * which ONNX Runtime runs as fused, layout-preserving element-wise kernels. It is exact in
 * float arithmetic: for x > 0 it is x + slope * 0 = x, for x <= 0 it is 0 + slope * x.
 * Measured on MiniFASNetV2, one thread: 4.9 -> 2.4 ms, identical outputs
 * (bench/performance.md, change 9; test/unit/prelu-rewrite.test.ts).
 *
 * The model is edited at the byte level: only the graph's PRelu nodes are decoded and
 * replaced, and one scalar initializer is appended; every other byte (weights, metadata,
 * fields newer than the protobuf schema used here) is copied as it is. It runs in memory on
 * the model file the manifest check has just verified, read again by path in the worker as
 * ONNX Runtime itself reads it; the file on disk is never changed.
 */
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs/minimal.js';

const { onnx } = onnxProto;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
const { Reader, Writer } = protobuf;

/** ModelProto.graph, ModelProto.opset_import, GraphProto.node, GraphProto.initializer. */
const MODEL_GRAPH = 7;
const MODEL_OPSET = 8;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const WIRE_LEN = 2;
/** Min broadcasts its inputs from opset 8 on. */
const MIN_OPSET = 8;

interface Field {
  field: number;
  wire: number;
  /** The whole field as it was encoded (tag included). */
  raw: Uint8Array;
  /** A length-delimited field's payload. */
  body: Uint8Array | null;
}

function fields(bytes: Uint8Array): Field[] {
  const r = Reader.create(bytes);
  const out: Field[] = [];
  while (r.pos < r.len) {
    const start = r.pos;
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    let body: Uint8Array | null = null;
    if (wire === WIRE_LEN) body = r.bytes();
    else r.skipType(wire);
    out.push({ field, wire, raw: bytes.subarray(start, r.pos), body });
  }
  return out;
}

function lengthDelimited(field: number, body: Uint8Array): Uint8Array {
  return Writer.create()
    .uint32((field << 3) | WIRE_LEN)
    .bytes(body)
    .finish();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The default-domain opset a model imports (0 when none is declared). */
function defaultOpset(model: Field[]): number {
  for (const f of model) {
    if (f.field !== MODEL_OPSET || !f.body) continue;
    const op = onnx.OperatorSetIdProto.decode(f.body);
    if (!op.domain || op.domain === 'ai.onnx') return Number(op.version);
  }
  return 0;
}

export interface RewriteResult {
  bytes: Uint8Array;
  /** PRelu nodes replaced. */
  rewritten: number;
}

/**
 * The model with its PRelu nodes replaced, or null when there is nothing to rewrite (no
 * PRelu, an opset older than 8, or bytes that are not an ONNX model: ONNX Runtime then loads
 * the file as it is and reports its own error).
 */
export function rewritePRelu(bytes: Uint8Array): RewriteResult | null {
  let model: Field[];
  let graph: Field[];
  try {
    model = fields(bytes);
    const g = model.find((f) => f.field === MODEL_GRAPH && f.body);
    if (!g?.body || defaultOpset(model) < MIN_OPSET) return null;
    graph = fields(g.body);
  } catch {
    return null;
  }
  const zero = `prelu_rewrite_zero_${graph.length}`;
  let rewritten = 0;
  const newGraph: Uint8Array[] = [];
  for (const f of graph) {
    if (f.field !== GRAPH_NODE || !f.body) {
      newGraph.push(f.raw);
      continue;
    }
    let node: NodeProto;
    try {
      node = onnx.NodeProto.decode(f.body);
    } catch {
      return null;
    }
    const isPRelu =
      node.opType === 'PRelu' &&
      (!node.domain || node.domain === 'ai.onnx') &&
      node.input.length === 2 &&
      node.output.length === 1 &&
      node.attribute.length === 0;
    if (!isPRelu) {
      newGraph.push(f.raw);
      continue;
    }
    const [x, slope] = node.input as [string, string];
    const y = node.output[0] as string;
    const base = `${node.name || y}_prelu_rewrite`;
    const replacement = [
      { opType: 'Relu', input: [x], output: [`${base}_pos`], name: `${base}_relu` },
      { opType: 'Min', input: [x, zero], output: [`${base}_neg`], name: `${base}_min` },
      { opType: 'Mul', input: [`${base}_neg`, slope], output: [`${base}_negs`], name: `${base}_mul` },
      { opType: 'Add', input: [`${base}_pos`, `${base}_negs`], output: [y], name: `${base}_add` },
    ];
    for (const n of replacement)
      newGraph.push(lengthDelimited(GRAPH_NODE, onnx.NodeProto.encode(onnx.NodeProto.create(n)).finish()));
    rewritten++;
  }
  if (rewritten === 0) return null;
  const zeroTensor = onnx.TensorProto.create({
    name: zero,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims: [],
    floatData: [0],
  });
  newGraph.push(lengthDelimited(GRAPH_INITIALIZER, onnx.TensorProto.encode(zeroTensor).finish()));
  const graphBody = concat(newGraph);
  const out = model.map((f) =>
    f.field === MODEL_GRAPH && f.body ? lengthDelimited(MODEL_GRAPH, graphBody) : f.raw,
  );
  return { bytes: concat(out), rewritten };
}
