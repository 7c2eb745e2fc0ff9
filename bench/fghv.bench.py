#!/usr/bin/env python3
"""Benchmark (part of `make bench`): per backbone family at its default size, MACs, parameters and
latency of the whole exported FGHV graph on ONNX Runtime (CPU, 1 and 2 threads, via
bench/fghv.bench.mjs because onnxruntime exists here only for Node) next to the same model in
PyTorch eager. Weights are random: latency does not depend on them.
  /usr/bin/python3 bench/fghv.bench.py [--runs 20] [--out bench-out/fghv]   (from the repo root)
"""

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models/fghv"))
from fghv.complexity import count  # noqa: E402
from fghv.export import export_onnx  # noqa: E402
from fghv.nets import FAMILIES, FGHV, Verifier  # noqa: E402

CONFIGS = [(fam, d["size"], d["width"], 512) for fam, d in FAMILIES.items()] + [("lite", 128, 0.5, 256)]


def torch_ms(v, size, threads, runs):
    torch.set_num_threads(threads)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        for _ in range(2):
            v(x)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            v(x)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "bench-out/fghv"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for fam, size, width, hidden in CONFIGS:
        torch.manual_seed(0)
        model = FGHV(fam, size, width, gen_hidden=hidden).eval()
        name = f"{fam}-{size}-w{width:g}-g{hidden}"
        path = out / f"{name}.onnx"
        export_onnx(model, str(path))
        runs = max(3, a.runs // 5) if fam == "depthnet" else a.runs
        v = Verifier(model).eval()
        row = {"name": name, "family": fam, "size": size, "width": width, "gen_hidden": hidden, "onnx": str(path),
               "backbone_gmacs": round(count(model.backbone, size)["macs"] / 1e9, 4),
               "params": sum(p.numel() for p in model.parameters()), "runs": runs,
               "torch_ms": {str(t): round(torch_ms(v, size, t, runs), 2) for t in (1, 2)}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "torch.json").write_text(json.dumps(rows, indent=1))
    ort = subprocess.run(["node", str(ROOT / "bench/fghv.bench.mjs"), str(out / "torch.json")], capture_output=True,
                         text=True, check=True)
    ort_rows = json.loads(ort.stdout)
    for r in rows:
        r["ort_ms"] = ort_rows[r["name"]]
        r["ratio_torch_over_ort"] = {t: round(r["torch_ms"][t] / r["ort_ms"][t], 2) for t in ("1", "2")}
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "?")
    res = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cpu": model_name,
           "cpus": torch.get_num_threads(), "torch": torch.__version__, "rows": rows}
    (out / "fghv.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
