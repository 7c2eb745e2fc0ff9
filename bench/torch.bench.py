#!/usr/bin/env python3
"""PyTorch eager side of bench/performance.md (run by bench/perf/report.ts):
- the FGHV demo model (models/fghv-demo/manifest.json: architecture and test-time settings) in
  eager mode, whole graph (backbone + verification) and backbone alone, 1 and all threads. Its
  weights come from the training checkpoint named in the manifest when that file exists on this
  machine; otherwise random weights of the same architecture (latency does not depend on them);
- the FGHV backbones exported alone to ONNX (so Node can time them on ONNX Runtime) with their
  MACs, for "GFLOP/s the backbone achieves" against the measured GEMM peak;
- MACs of the shipped ONNX detector and liveness files (Conv, Gemm, MatMul from shape inference).
YuNet, BlazeFace and MiniFASNet exist here only as ONNX, so they have no eager timing.
  /usr/bin/python3 bench/torch.bench.py OUT_DIR [--runs 20] [--depthnet-runs 3] MODEL.onnx...
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import onnx
import torch
from onnx import shape_inference

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models/fghv"))
from fghv.complexity import count  # noqa: E402
from fghv.nets import FGHV, Verifier  # noqa: E402


def median_ms(fn, x, runs):
    with torch.no_grad():
        for _ in range(2):
            fn(x)
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            fn(x)
            ts.append((time.perf_counter() - t) * 1e3)
    return round(statistics.median(ts), 3)


def onnx_macs(path: str) -> int:
    """Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul nodes, batch as in the file."""
    m = shape_inference.infer_shapes(onnx.load(path))
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for init in m.graph.initializer:
        shapes[init.name] = list(init.dims)
    macs = 0
    for n in m.graph.node:
        out = shapes.get(n.output[0])
        if n.op_type == "Conv" and out and n.input[1] in shapes:
            w = shapes[n.input[1]]  # [Cout, Cin/groups, kh, kw]
            macs += prod(out) * w[1] * prod(w[2:])
        elif n.op_type in ("Gemm", "MatMul") and out and n.input[0] in shapes:
            macs += prod(out) * shapes[n.input[0]][-1]
    return macs


def prod(xs):
    p = 1
    for v in xs:
        p *= v
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("models", nargs="*")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--depthnet-runs", type=int, default=3)
    a = ap.parse_intermixed_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    threads = sorted({1, cores})

    man = json.loads((ROOT / "models/fghv-demo/manifest.json").read_text())
    prov = man["provenance"]
    cfg, tt = prov["model"], prov["test_time"]
    torch.manual_seed(0)
    model = FGHV(cfg["family"], cfg["size"], cfg["width"], cfg["k"], cfg["gen_hidden"]).eval()
    ckpt = prov.get("checkpoint")
    weights = "random (same architecture; the training checkpoint is not on this machine)"
    if ckpt and Path(ckpt).exists():
        model.load_state_dict(torch.load(ckpt, map_location="cpu")["model"])
        weights = f"trained checkpoint {ckpt}"
    verifier = Verifier.from_config(model, tt).eval()
    size = cfg["size"]
    x = torch.randn(1, 3, size, size)
    eager = {"model": man["name"], "weights": weights, "torch": torch.__version__, "whole_ms": {}, "backbone_ms": {}}
    for t in threads:
        torch.set_num_threads(t)
        eager["whole_ms"][str(t)] = median_ms(verifier, x, a.runs)
        eager["backbone_ms"][str(t)] = median_ms(model.backbone, x, a.runs)

    backbones = []
    for name, fam, sz, width, runs in [
        ("fghv-demo backbone (lite w0.5, 128 px)", cfg["family"], size, cfg["width"], a.runs),
        ("lite w1.0 backbone (128 px)", "lite", 128, 1.0, a.runs),
        ("depthnet backbone (256 px, paper-era)", "depthnet", 256, 1.0, a.depthnet_runs),
    ]:
        m = model if (fam, sz, width) == (cfg["family"], size, cfg["width"]) else FGHV(fam, sz, width).eval()
        path = out / f"backbone-{fam}-{sz}-w{width:g}.onnx"
        xb = torch.randn(1, 3, sz, sz)
        torch.onnx.export(m.backbone, (xb,), str(path), opset_version=17, input_names=["input"],
                          output_names=["features"], do_constant_folding=True)
        row = {"name": name, "onnx": str(path), "macs": count(m.backbone, sz)["macs"], "runs": runs,
               "torch_ms": {}}
        for t in threads:
            torch.set_num_threads(t)
            row["torch_ms"][str(t)] = median_ms(m.backbone, xb, runs)
        backbones.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    files = [{"onnx": p, "macs": onnx_macs(p)} for p in a.models]
    print(json.dumps({"eager": eager, "backbones": backbones, "files": files}))


if __name__ == "__main__":
    main()
