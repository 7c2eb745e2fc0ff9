#!/usr/bin/env bash
# The project's GPU check, run from the repository root on a machine with an NVIDIA GPU,
# Python, PyTorch and onnxruntime-gpu (no Node needed, no network): exported FGHV graphs on the
# CPU, CUDA and TensorRT execution providers, and a short FGHV training run on CUDA.
# Usage: scripts/gpu-check.sh OUT_DIR
set -u
out=${1:-gpu-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/nvidia-smi.txt"
python3 -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'onnxruntime', o.__version__, o.get_available_providers())" | tee "$out/versions.txt"
timeout 300 python3 scripts/gpu-check.py "$out" 2>&1 | tee "$out/gpu-check.log"
# FGHV training on CUDA: noise images in the documented data layout, 30 steps.
( cd models/fghv && timeout 150 python3 - "$out" <<'PY' 2>&1 | tee "$OLDPWD/$out/train-cuda.log"
import os, sys, time
import numpy as np
try:
    import cv2
except ImportError:
    print("SKIP: no cv2 on this machine"); sys.exit(0)
import torch
out = os.path.abspath(os.path.join(os.environ.get("OLDPWD", "."), sys.argv[1]))
root = os.path.join(out, "noise-data")
rng = np.random.default_rng(0)
for dom in ("a", "b"):
    for lab in ("live", "spoof"):
        for v in range(3):
            d = os.path.join(root, dom, lab, f"v{v}"); os.makedirs(d, exist_ok=True)
            for f in range(4):
                img = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
                if lab == "spoof": img[::4] = 255
                cv2.imwrite(os.path.join(d, f"{f}.png"), img)
from fghv.__main__ import main
t0 = time.time()
main(["train", "--data", root, "--train-domains", "a", "--val-domains", "b", "--out", os.path.join(out, "run"),
      "--size", "128", "--batch", "16", "--steps", "30", "--log-every", "10", "--val-every", "30", "--save-every", "30"])
print(f"cuda available: {torch.cuda.is_available()}; 30 steps in {time.time()-t0:.1f} s")
PY
)
echo done
