#!/usr/bin/env python3
"""FGHV training throughput: steps/s (and images/s) of `python3 -m fghv train` per backbone,
batch, precision and data-loader setting, on the device given. Run from the repository root:

    /usr/bin/python3 bench/fghv-train.bench.py --device cpu --threads 2 --steps 40
    python3 bench/fghv-train.bench.py --device cuda --steps 300          # on a GPU machine

Data: demo crops rendered by the simulator (models/fghv/fghv/data.py) into a temporary folder.
steps/s is the training log's figure for the last logging interval (the first interval, with
warm-up and cuDNN autotuning, is not counted). GPU utilisation is the training log's sample at
that line. Prints Markdown rows for bench/fghv.md and writes --json.
"""

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models" / "fghv"))

import torch  # noqa: E402

from fghv import data  # noqa: E402
from fghv.__main__ import main as fghv  # noqa: E402
from fghv.train import load_checkpoint  # noqa: E402

CPU_CONFIGS = [  # family, size, width, gen_hidden, batch, bf16, workers
    ("lite", 64, 0.5, 128, 32, "off", 0),
    ("lite", 128, 1.0, 512, 32, "off", 0),
]
GPU_CONFIGS = [
    ("lite", 128, 1.0, 512, 64, "off", 0),
    ("lite", 128, 1.0, 512, 64, "off", 6),
    ("lite", 128, 1.0, 512, 64, "auto", 6),
    ("depthnet", 256, 1.0, 512, 32, "off", 6),
    ("depthnet", 256, 1.0, 512, 32, "auto", 6),
]


def machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPUs"
    model = ""
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    return f"{model}, {os.cpu_count()} CPUs"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", type=int, action="append", help="index of a config to run (repeatable)")
    a = ap.parse_args()
    configs = GPU_CONFIGS if a.device.startswith("cuda") else CPU_CONFIGS
    if a.only:
        configs = [configs[i] for i in a.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = sorted({c[1] for c in configs})
        for s in sizes:
            data.make_demo_data(f"{tmp}/d{s}", s, {"camA": 200, "camB": 200}, seed=0)
        for fam, size, width, hid, batch, bf16, workers in configs:
            run = f"{tmp}/run-{fam}-{size}-{bf16}-{workers}"
            t0 = time.time()
            fghv(["train", "--data", f"{tmp}/d{size}", "--train-domains", "camA,camB", "--out", run, "--family", fam,
                  "--size", str(size), "--width", str(width), "--gen-hidden", str(hid), "--batch", str(batch),
                  "--steps", str(a.steps), "--log-every", str(max(1, a.steps // 2)), "--save-every", str(a.steps),
                  "--device", a.device, "--bf16", bf16, "--workers", str(workers), "--threads", str(a.threads)])
            wall = time.time() - t0
            st = load_checkpoint(f"{run}/checkpoint.pt")
            last = st["history"][-1]
            rows.append({"family": fam, "size": size, "width": width, "gen_hidden": hid, "batch": batch,
                         "bf16": bf16 == "auto" and a.device.startswith("cuda") and torch.cuda.is_bf16_supported(),
                         "workers": workers, "steps_per_s": last["steps_per_s"],
                         "images_per_s": round(last["steps_per_s"] * batch, 1), "gpu_util": last.get("gpu_util"),
                         "wall_s": round(wall, 1), "steps": a.steps})
            print(json.dumps(rows[-1]), flush=True)
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(a.device),
            "device": a.device, "torch": torch.__version__, "threads": a.threads or torch.get_num_threads(),
            "load_average": os.getloadavg()}
    if a.json:
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"\n{meta['date']}, {meta['machine']}, device {meta['device']}, torch {meta['torch']}, "
          f"threads {meta['threads']}, load average {', '.join(f'{x:.1f}' for x in meta['load_average'])}\n")
    print("| model | size | batch | bf16 | loader workers | steps/s | images/s | GPU util % |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['family']} w{r['width']}, generators {r['gen_hidden']} | {r['size']} | {r['batch']} | "
              f"{'yes' if r['bf16'] else 'no'} | {r['workers']} | {r['steps_per_s']} | {r['images_per_s']} | "
              f"{r['gpu_util'] if r['gpu_util'] is not None else 'n/a'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
