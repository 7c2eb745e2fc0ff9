"""Export: one ONNX graph (backbone + test-time verification), an fp16 variant, and the manifest."""

import datetime as dt
import hashlib
import inspect
import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from . import data, preprocess
from .nets import FGHV, TEST_TIME, Verifier

OUTPUTS = ["p_real", "var", "delta_kl", "kl_real", "kl_attack"]
OPSET = 17
BACKBONE_SCOPE = "/backbone/"  # torch.onnx names the backbone's nodes after its module path


def export_onnx(model: FGHV, path: str, **tt) -> onnx.ModelProto:
    v = Verifier.from_config(model, {**TEST_TIME, **tt}).eval()
    x = torch.zeros(1, 3, model.size, model.size)
    # PyTorch 2.9 and later default to the dynamo exporter (it needs onnxscript and builds another
    # graph); the graph checked by our tests and vectors is the TorchScript exporter's.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(v, (x,), path, opset_version=OPSET, input_names=["input"], output_names=OUTPUTS,
                      do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL, **legacy)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


def op_types(m: onnx.ModelProto) -> list[str]:
    return sorted({n.op_type for n in m.graph.node})


def to_fp16(m: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 backbone, fp32 verification tail: the backbone's weights and arithmetic become fp16
    (Cast of the input at the start, Cast of its output feature back to float32); correlations,
    variance, latent steps and KL stay fp32, because fp16's spacing near KL ~ 5 (0.004) and its
    smallest normal (6e-5) are coarser than the calibrated thresholds. Input and outputs float32."""
    g = onnx.ModelProto()
    g.CopyFrom(m)
    gr = g.graph
    inp = gr.input[0].name
    bb = [n for n in gr.node if n.name.startswith(BACKBONE_SCOPE)]
    if not bb:
        raise ValueError(f"no node named {BACKBONE_SCOPE}*: cannot find the backbone to convert")
    bb_ids = {id(n) for n in bb}
    tail = [n for n in gr.node if id(n) not in bb_ids]
    used_by_bb = {x for n in bb for x in n.input}
    used_by_tail = {x for n in tail for x in n.input}
    for init in gr.initializer:
        if init.name in used_by_bb and init.data_type == TensorProto.FLOAT:
            if init.name in used_by_tail:
                raise ValueError(f"initializer {init.name} is shared by backbone and tail")
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in bb:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
        for i, name in enumerate(node.input):
            if name == inp:
                node.input[i] = inp + "_fp16"
    produced_by_bb = {x for n in bb for x in n.output}
    crossing = sorted(produced_by_bb & used_by_tail)
    if any(o.name in produced_by_bb for o in gr.output):
        raise ValueError("a graph output comes straight from the backbone")
    casts = []
    for name in crossing:  # the backbone's output feature, back to fp32 for the tail
        for node in tail:
            for i, x in enumerate(node.input):
                if x == name:
                    node.input[i] = name + "_fp32"
        casts.append(helper.make_node("Cast", [name], [name + "_fp32"], to=TensorProto.FLOAT, name=f"cast_{name}_fp32"))
    cast_in = helper.make_node("Cast", [inp], [inp + "_fp16"], to=TensorProto.FLOAT16, name="cast_input_fp16")
    nodes = [cast_in, *bb, *casts, *tail]
    del gr.node[:]
    gr.node.extend(nodes)
    del gr.value_info[:]
    onnx.checker.check_model(g)
    return g


def fp32_tail_nodes(g: onnx.ModelProto) -> list[str]:
    """Names of the nodes after the backbone that do not compute in float32 (should be none)."""
    types = {i.name: i.data_type for i in g.graph.initializer}
    return [n.name for n in g.graph.node if not n.name.startswith(BACKBONE_SCOPE) and not n.name.startswith("cast_")
            and any(types.get(x) == TensorProto.FLOAT16 for x in n.input)]


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_commit() -> str:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout.strip()
        return r.stdout.strip() + ("+uncommitted" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown (no git commit)"


def manifest(model: FGHV, name: str, file: str, sha: str, purpose: str, description: str, fp16: tuple | None,
             provenance: dict) -> dict:
    """The manifest of a fresh export. It carries no thresholds: they belong to a calibration
    (python3 -m fghv calibrate sets all three), and the daemon refuses an FGHV manifest without
    them rather than run with made-up values."""
    s = model.size
    m = {
        "schema": 1,
        "name": name,
        "version": "0.1.0",
        "family": "fghv",
        "purpose": purpose,
        "description": description,
        "file": file,
        "sha256": sha,
        "license": "Apache-2.0",
        "input": {"name": "input", "shape": [1, 3, s, s], "layout": "NCHW", "dtype": "float32", "color": "RGB",
                  "normalize": {"mean": preprocess.MEAN, "std": preprocess.STD}},
        "crop": {"method": "similarity", "size": [s, s], "template": preprocess.template_for(s).tolist(),
                 "template_name": preprocess.template_name(s), "border": "constant", "border_value": 0,
                 "interpolation": "linear"},
        "outputs": {k: k for k in OUTPUTS},
        "provenance": provenance,
    }
    if fp16:
        m["variants"] = {"fp16": {"file": fp16[0], "sha256": fp16[1]}}
    return m


def write_json(path: str, obj: dict) -> None:
    data.atomic_write(path, (json.dumps(obj, indent=1) + "\n").encode())


def export_cli(a) -> dict:
    from .train import load_model

    from .sweep import load_choice

    model, st = load_model(a.checkpoint)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / a.file
    tt = {**TEST_TIME, **load_choice(getattr(a, "test_time", None))}
    m = export_onnx(model, str(onnx_path), **tt)
    fp16_file = a.file.replace(".onnx", ".fp16.onnx")
    onnx.save(to_fp16(m), str(out / fp16_file))
    man_path = out / "manifest.json"
    hist = st.get("history", [])
    last_val = next((h["val"] for h in reversed(hist) if "val" in h), None)
    targs = st.get("args", {})
    prov = {
        "data": targs.get("data"), "train_domains": targs.get("train_domains"), "val_domains": targs.get("val_domains"),
        "seed": targs.get("seed"), "steps": st.get("step"), "commit": git_commit(),
        "checkpoint": str(Path(a.checkpoint).resolve()),
        "command": "python3 -m fghv train " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(targs.items())
                                                      if k not in ("cmd", "resume") and v not in (None, [], False)),
        "training": {k: v for k, v in sorted(targs.items()) if k not in ("cmd", "resume", "out", "data", "val_data")},
        "losses": st.get("losses"), "model": model.config(), "test_time": tt, "metrics": {"last_validation": last_val},
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "opset": OPSET, "operators": op_types(m),
    }
    if getattr(a, "test_time", None):
        prov["test_time_sweep"] = json.loads(Path(a.test_time).read_text())
    if a.provenance:
        prov.update(json.loads(Path(a.provenance).read_text()))
    man = manifest(model, a.name or f"fghv-{model.family}-{model.size}", a.file, sha256(str(onnx_path)), a.purpose,
                   a.description, (fp16_file, sha256(str(out / fp16_file))), prov)
    write_json(str(man_path), man)
    return {"onnx": str(onnx_path), "fp16": str(out / fp16_file), "manifest": str(man_path), "operators": op_types(m)}
