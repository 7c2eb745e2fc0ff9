"""Export: one ONNX graph (backbone + test-time verification), an fp16 variant, and the manifest."""

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from . import data, preprocess
from .nets import FGHV, Verifier

OUTPUTS = ["p_real", "var", "delta_kl", "kl_real", "kl_attack"]
OPSET = 17
TEST_TIME = {"hypotheses": 16, "steps": 8, "step": 0.1, "latent_seed": 0, "rcc_scale": 16.0}
DEFAULT_THRESHOLDS = {"p_real_min": 0.5, "var_max": 0.05, "delta_kl_max": 0.0}


def export_onnx(model: FGHV, path: str, **tt) -> onnx.ModelProto:
    cfg = {**TEST_TIME, **tt}
    v = Verifier(model, n=cfg["hypotheses"], steps=cfg["steps"], step=cfg["step"], seed=cfg["latent_seed"],
                 scale=cfg["rcc_scale"]).eval()
    x = torch.zeros(1, 3, model.size, model.size)
    torch.onnx.export(v, (x,), path, opset_version=OPSET, input_names=["input"], output_names=OUTPUTS,
                      do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


def op_types(m: onnx.ModelProto) -> list[str]:
    return sorted({n.op_type for n in m.graph.node})


def to_fp16(m: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and arithmetic with float32 input and outputs (Casts at both ends), for
    TensorRT builds that want an fp16 graph; the fp32 graph stays the reference."""
    g = onnx.ModelProto()
    g.CopyFrom(m)
    gr = g.graph
    for init in gr.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in gr.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    inp = gr.input[0].name
    for node in gr.node:
        for i, name in enumerate(node.input):
            if name == inp:
                node.input[i] = inp + "_fp16"
    cast_in = helper.make_node("Cast", [inp], [inp + "_fp16"], to=TensorProto.FLOAT16, name="cast_input_fp16")
    casts_out = []
    for out in gr.output:
        for node in gr.node:  # an output can also feed other nodes (kl_real -> delta_kl)
            for names in (node.output, node.input):
                for i, name in enumerate(names):
                    if name == out.name:
                        names[i] = out.name + "_fp16"
        casts_out.append(helper.make_node("Cast", [out.name + "_fp16"], [out.name], to=TensorProto.FLOAT, name=f"cast_{out.name}"))
    nodes = [cast_in, *gr.node, *casts_out]
    del gr.node[:]
    gr.node.extend(nodes)
    del gr.value_info[:]
    onnx.checker.check_model(g)
    return g


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
             provenance: dict, thresholds: dict | None = None) -> dict:
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
        "thresholds": thresholds or dict(DEFAULT_THRESHOLDS),
        "provenance": provenance,
    }
    if fp16:
        m["variants"] = {"fp16": {"file": fp16[0], "sha256": fp16[1]}}
    return m


def write_json(path: str, obj: dict) -> None:
    data.atomic_write(path, (json.dumps(obj, indent=1) + "\n").encode())


def export_cli(a) -> dict:
    from .train import load_model

    model, st = load_model(a.checkpoint)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / a.file
    m = export_onnx(model, str(onnx_path))
    fp16_file = a.file.replace(".onnx", ".fp16.onnx")
    onnx.save(to_fp16(m), str(out / fp16_file))
    man_path = out / "manifest.json"
    old = json.loads(man_path.read_text()) if man_path.exists() else {}
    hist = st.get("history", [])
    last_val = next((h["val"] for h in reversed(hist) if "val" in h), None)
    targs = st.get("args", {})
    prov = {
        "data": targs.get("data"), "train_domains": targs.get("train_domains"), "val_domains": targs.get("val_domains"),
        "seed": targs.get("seed"), "steps": st.get("step"), "commit": git_commit(),
        "checkpoint": str(Path(a.checkpoint).resolve()),
        "command": "python3 -m fghv train " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(targs.items())
                                                      if k not in ("cmd", "resume") and v not in (None, [], False)),
        "model": model.config(), "test_time": TEST_TIME, "metrics": {"last_validation": last_val},
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "opset": OPSET, "operators": op_types(m),
    }
    if a.provenance:
        prov.update(json.loads(Path(a.provenance).read_text()))
    man = manifest(model, a.name or f"fghv-{model.family}-{model.size}", a.file, sha256(str(onnx_path)), a.purpose,
                   a.description, (fp16_file, sha256(str(out / fp16_file))), prov, old.get("thresholds"))
    write_json(str(man_path), man)
    return {"onnx": str(onnx_path), "fp16": str(out / fp16_file), "manifest": str(man_path), "operators": op_types(m)}
