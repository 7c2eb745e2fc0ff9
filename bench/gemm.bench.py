#!/usr/bin/env python3
"""Measured peak fp32 GFLOP/s of this machine (part of `make bench`, see bench/performance.md):
square float32 GEMM through numpy's BLAS (Debian's OpenBLAS), 1 thread and all threads, best of
several repetitions per size. Prints one JSON object; names the OpenBLAS kernel that ran (asked
from the library itself, as threadpoolctl does), since OPENBLAS_CORETYPE changes it.
  /usr/bin/python3 bench/gemm.bench.py [--sizes 256,512,1024,2048] [--seconds 1.5]
"""

import argparse
import ctypes
import json
import os
import time

import numpy as np


def openblas():
    """The OpenBLAS library numpy loaded, or None (another BLAS)."""
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "blas" in path.lower() and path.endswith(tuple(".so" + s for s in ("", ".0", ".3"))):
            lib = ctypes.CDLL(path)
            if hasattr(lib, "openblas_get_corename"):
                return lib
    return None


def gflops(n: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    best = float("inf")
    end = time.perf_counter() + seconds
    reps = 0
    while reps < 3 or time.perf_counter() < end:
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t)
        reps += 1
    return 2 * n**3 / best / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512,1024,2048")
    ap.add_argument("--seconds", type=float, default=1.5)
    a = ap.parse_args()
    lib = openblas()
    kernel = lib.openblas_get_corename if lib else None
    if kernel:
        kernel.restype = ctypes.c_char_p
    cores = os.cpu_count() or 1
    rows = []
    for threads in sorted({1, cores}):
        if lib:
            lib.openblas_set_num_threads(threads)
        for n in map(int, a.sizes.split(",")):
            rows.append({"threads": threads, "n": n, "gflops": round(gflops(n, a.seconds), 1)})
    peak = {t: max(r["gflops"] for r in rows if r["threads"] == t) for t in sorted({r["threads"] for r in rows})}
    print(json.dumps({
        "numpy": np.__version__,
        "blas": "OpenBLAS" if lib else "unknown (not OpenBLAS)",
        "openblas_kernel": kernel().decode() if kernel else None,
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
        "rows": rows,
        "peak_gflops": {str(k): v for k, v in peak.items()},
    }))


if __name__ == "__main__":
    main()
