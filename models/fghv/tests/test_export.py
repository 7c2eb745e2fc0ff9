import hashlib
import json

import onnx
import pytest

from conftest import REPO
from fghv.export import BACKBONE_SCOPE, OUTPUTS, export_onnx, fp32_tail_nodes, op_types, to_fp16
from fghv.vectors import tiny_model

# Conservative subset of TensorRT 8.6's supported ONNX operators (TensorRT's onnx-tensorrt
# "Supported Operators" matrix); ops with partial support or dtype caveats left out.
TENSORRT_OPS = {
    "Abs", "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv", "Div",
    "Equal", "Exp", "Expand", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Greater",
    "Identity", "LeakyRelu", "Less", "Log", "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg", "Pad", "Pow",
    "PRelu", "Reciprocal", "ReduceL2", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape",
    "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose",
    "Unsqueeze", "Where",
}


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    return export_onnx(tiny_model(), str(path))


def _dims(v):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]


def test_graph_interface_is_static_batch_one(tiny_graph):
    assert tiny_graph.opset_import[0].version == 17
    assert [i.name for i in tiny_graph.graph.input] == ["input"]
    assert _dims(tiny_graph.graph.input[0]) == [1, 3, 64, 64]
    assert [o.name for o in tiny_graph.graph.output] == OUTPUTS
    assert all(_dims(o) == [1] for o in tiny_graph.graph.output)


def test_operators_are_tensorrt_supported(tiny_graph):
    assert set(op_types(tiny_graph)) <= TENSORRT_OPS, set(op_types(tiny_graph)) - TENSORRT_OPS
    # the unrolled test-time loop really is in the graph, written with explicit ops
    assert {"Where", "Greater", "MatMul", "Log", "Sqrt"} <= set(op_types(tiny_graph))


def test_fp16_variant_keeps_the_verification_tail_in_fp32(tiny_graph):
    g = to_fp16(tiny_graph)
    onnx.checker.check_model(g)
    assert set(op_types(g)) <= TENSORRT_OPS
    assert g.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in g.graph.output)
    users = {}
    for n in g.graph.node:
        for x in n.input:
            users.setdefault(x, []).append(n.name)
    fp16 = [i for i in g.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    fp32 = [i for i in g.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    # the backbone's weights are fp16 ...
    assert fp16 and all(all(u.startswith(BACKBONE_SCOPE) for u in users[i.name]) for i in fp16)
    assert not [i.name for i in fp32 if any(u.startswith(BACKBONE_SCOPE) for u in users.get(i.name, []))]
    # ... and everything after it (generators, latents, steps, KL) stays fp32
    assert fp32 and fp32_tail_nodes(g) == []
    casts = [n for n in g.graph.node if n.op_type == "Cast"]
    assert [c.attribute[0].i for c in casts] == [onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT]
    # the shipped demo variant is built the same way
    demo = REPO / "models/fghv-demo"
    man = json.loads((demo / "manifest.json").read_text())
    d16 = onnx.load(str(demo / man["variants"]["fp16"]["file"]))
    assert fp32_tail_nodes(d16) == [] and any(i.data_type == onnx.TensorProto.FLOAT16 for i in d16.graph.initializer)


def test_export_writes_no_thresholds_and_records_the_test_time_settings(tmp_path):
    import argparse

    import torch

    from fghv.export import export_cli

    ck = tmp_path / "ck.pt"
    m = tiny_model()
    torch.save({"model": m.state_dict(), "config": m.config(), "step": 0, "history": [], "args": {"seed": 0}}, ck)
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"rows": [], "chosen": {"step_rule": "joint", "step": 0.02}}))
    a = argparse.Namespace(checkpoint=str(ck), out=str(tmp_path / "out"), file="m.onnx", name=None, purpose="production",
                           description="", provenance=None, test_time=str(sweep))
    export_cli(a)
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "thresholds" not in man
    assert man["provenance"]["test_time"]["step"] == 0.02 and man["provenance"]["test_time"]["step_rule"] == "joint"


def test_committed_models_match_their_manifest_and_vectors():
    tiny = json.loads((REPO / "test/vectors/fghv-tiny.json").read_text())
    assert hashlib.sha256((REPO / tiny["onnx"]).read_bytes()).hexdigest() == tiny["sha256"]
    demo = REPO / "models/fghv-demo"
    man = json.loads((demo / "manifest.json").read_text())
    assert man["family"] == "fghv" and man["purpose"] == "demo"
    assert set(man["thresholds"]) == {"p_real_min", "var_max", "delta_kl_max"}  # calibrated
    assert hashlib.sha256((demo / man["file"]).read_bytes()).hexdigest() == man["sha256"]
    fp16 = man["variants"]["fp16"]
    assert hashlib.sha256((demo / fp16["file"]).read_bytes()).hexdigest() == fp16["sha256"]
    m = onnx.load(str(demo / man["file"]))
    assert set(op_types(m)) <= TENSORRT_OPS
    assert [o.name for o in m.graph.output] == OUTPUTS
    assert (demo / man["file"]).stat().st_size < 8_000_000
