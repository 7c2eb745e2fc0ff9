#!/usr/bin/env python3
"""GPU check of the exported FGHV graphs: do they build and run on ONNX Runtime's CUDA and
TensorRT execution providers, and do they agree with the CPU provider?

Run on a machine with an NVIDIA GPU and onnxruntime-gpu (Python); no network needed:
    python3 scripts/gpu-check.py [OUT_DIR]
Writes OUT_DIR/gpu-check.json and prints a Markdown table for bench/gpu.md.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = [
    ("fghv-demo fp32", "models/fghv-demo/fghv-demo.onnx"),
    ("fghv-demo fp16", "models/fghv-demo/fghv-demo.fp16.onnx"),
]
OUTPUTS = ["p_real", "var", "delta_kl", "kl_real", "kl_attack"]


def inputs(shape, dtype, n=4):
    """Deterministic inputs in [-1, 1] (no RNG library differences)."""
    size = int(np.prod(shape))
    idx = np.arange(size, dtype=np.float64)
    out = []
    for k in range(n):
        x = np.sin(idx * (0.013 + 0.007 * k) + k) * 0.9
        out.append(x.reshape(shape).astype(dtype))
    return out


def session(path, provider, cache):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if provider == "TensorrtExecutionProvider":
        fp16 = "fp16" in os.path.basename(path)
        prov = [(provider, {"trt_fp16_enable": fp16, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache})]
    else:
        prov = [provider]
    t0 = time.perf_counter()
    s = ort.InferenceSession(path, sess_options=opts, providers=prov)
    build_s = time.perf_counter() - t0
    used = s.get_providers()[0]
    return s, used, build_s


def main():
    report = {"date": time.strftime("%Y-%m-%d"), "onnxruntime": ort.__version__, "available": ort.get_available_providers()}
    try:
        report["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                       capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as e:  # noqa: BLE001
        report["gpu"] = f"nvidia-smi failed: {e}"
    try:
        import tensorrt  # noqa: F401
        report["tensorrt"] = tensorrt.__version__
    except Exception as e:  # noqa: BLE001
        report["tensorrt"] = f"not importable: {e}"
    cache = os.path.join(OUT, "trt-cache")
    os.makedirs(cache, exist_ok=True)
    rows = []
    for label, rel in MODELS:
        path = os.path.join(ROOT, rel)
        if not os.path.exists(path):
            rows.append({"model": label, "error": "missing"})
            continue
        ref_sess, _, _ = session(path, "CPUExecutionProvider", cache)
        inp = ref_sess.get_inputs()[0]
        dtype = np.float16 if "float16" in inp.type else np.float32
        xs = inputs(inp.shape, dtype)
        ref = [ref_sess.run(OUTPUTS, {inp.name: x}) for x in xs]
        for provider in ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]:
            row = {"model": label, "provider": provider}
            try:
                s, used, build_s = session(path, provider, cache)
                row["used"] = used
                row["build_s"] = round(build_s, 2)
                outs = [s.run(OUTPUTS, {inp.name: x}) for x in xs]
                again = [s.run(OUTPUTS, {inp.name: x}) for x in xs]
                row["bit_identical_repeat"] = all(
                    np.array_equal(a, b) for o1, o2 in zip(outs, again) for a, b in zip(o1, o2))
                diffs = {}
                for j, name in enumerate(OUTPUTS):
                    d = max(float(np.max(np.abs(o[j].astype(np.float64) - r[j].astype(np.float64)))) for o, r in zip(outs, ref))
                    diffs[name] = d
                row["max_abs_diff_vs_cpu"] = diffs
                row["p_real"] = [float(o[0].ravel()[0]) for o in outs]
                for _ in range(10):
                    s.run(OUTPUTS, {inp.name: xs[0]})
                times = []
                for _ in range(100):
                    t0 = time.perf_counter()
                    s.run(OUTPUTS, {inp.name: xs[0]})
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                row["latency_ms_p50"] = round(times[50], 3)
                row["latency_ms_p95"] = round(times[95], 3)
            except Exception as e:  # noqa: BLE001
                row["error"] = str(e).splitlines()[0][:300]
            rows.append(row)
            print(json.dumps(row), flush=True)
    report["rows"] = rows
    with open(os.path.join(OUT, "gpu-check.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
