#!/usr/bin/env bash
# FGHV training on a CUDA GPU, as one prepared check (issue 25). Two steps:
#
#   scripts/gpu-fghv.sh --prepare    here, from the repository root: builds gpu-carry/ (ignored by
#                                    git) with what the GPU machine lacks: the two public-domain
#                                    portraits the simulator renders from (Debian packages) and
#                                    YuNet from ../shared/data (the importer's face detector)
#   scripts/gpu-fghv.sh OUT [--ablation]
#                                    on the GPU machine, from the repository root, with gpu-carry/
#                                    beside the checkout (the device tool's `carry`): writes OUT/
#
# On the GPU machine it (1) puts the portraits at their Debian paths (needs root, as the device
# machine runs), (2) runs the device tests (tests/test_device.py: the CUDA end-to-end test runs
# there) and the whole Python suite on that PyTorch, (3) measures training throughput per backbone,
# precision and loader setting (bench/fghv-train.bench.py), (4) imports OULU-NPU- and
# CASIA-FASD-shaped fixtures and runs `protocol --train oulu --test casia --device cuda`, and with
# --ablation (5) the 8-seed FGHV/CE ablation on CUDA. Every step has its own time limit and
# writes its log to OUT; a failing step does not stop the others. About 6-8 minutes without
# --ablation on an H100/H200 (not measured yet).
set -u
root=$(pwd)
if [ "${1:-}" = "--prepare" ]; then
  rm -rf gpu-carry && mkdir -p gpu-carry/portraits
  /usr/bin/python3 - <<'PY'
import json, shutil
meta = json.load(open("models/fghv/fghv/portraits.json"))
for p in meta["portraits"]:
    shutil.copy(p["path"], "gpu-carry/portraits/")
PY
  yunet=../shared/data/models/yunet_s_640_640.onnx
  if [ -f "$yunet" ]; then cp "$yunet" gpu-carry/; else echo "no $yunet: step 4 (import) will be skipped there"; fi
  du -sh gpu-carry
  exit 0
fi
out=$(mkdir -p "${1:-gpu-out}" && cd "${1:-gpu-out}" && pwd)
ablation=${2:-}
py=python3
step() { echo "== $1 ($(date -u +%H:%M:%S))" | tee -a "$out/steps.txt"; }

step versions
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.txt" 2>&1
$py - > "$out/versions.txt" 2>&1 <<'PY'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
for m in ("numpy", "cv2", "onnx", "pytest", "matplotlib"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as e:
        print(m, "MISSING", type(e).__name__)
PY
cat "$out/versions.txt"

step portraits
$py - <<'PY' 2>&1 | tee "$out/portraits.txt"
import json, os, shutil
meta = json.load(open("models/fghv/fghv/portraits.json"))
for p in meta["portraits"]:
    src = os.path.join("gpu-carry/portraits", os.path.basename(p["path"]))
    if not os.path.exists(p["path"]) and os.path.exists(src):
        os.makedirs(os.path.dirname(p["path"]), exist_ok=True)
        shutil.copy(src, p["path"])
    print(p["path"], os.path.exists(p["path"]))
PY

cd "$root/models/fghv"
if $py -c "import pytest" 2>/dev/null; then
  step "device tests (CUDA end to end included)"
  timeout 150 $py -m pytest -q -p no:cacheprovider -rs tests/test_device.py > "$out/test-device.log" 2>&1
  echo "rc $?" >> "$out/test-device.log"; tail -3 "$out/test-device.log"
  step "whole Python suite on this PyTorch"
  timeout 240 $py -m pytest -q -p no:cacheprovider -rs tests > "$out/pytest.log" 2>&1
  echo "rc $?" >> "$out/pytest.log"; tail -3 "$out/pytest.log"
else
  step "device tests without pytest: the CUDA end-to-end test called directly"
  timeout 150 $py - > "$out/test-device.log" 2>&1 <<'PY'
import sys, tempfile, pathlib
sys.path[:0] = ["tests", "."]
import test_device as t
t.test_test_time_verification_on_the_model_device()
t.test_training_step_keeps_every_tensor_on_the_model_device("lite", 64)
with tempfile.TemporaryDirectory() as d:
    t.test_train_sweep_export_calibrate_on_cuda(pathlib.Path(d))
print("device tests passed")
PY
  echo "rc $?" >> "$out/test-device.log"; tail -3 "$out/test-device.log"
fi

step "training throughput"
cd "$root"
timeout 240 $py bench/fghv-train.bench.py --device cuda --steps 300 --json "$out/bench-train.json" \
  > "$out/bench-train.log" 2>&1
echo "rc $?" >> "$out/bench-train.log"; tail -9 "$out/bench-train.log"

step "import fixtures + protocol O->C on CUDA"
cd "$root/models/fghv"
if [ -f "$root/gpu-carry/yunet_s_640_640.onnx" ]; then
  timeout 200 bash -c "
    $py -c \"import sys; sys.path[:0]=['tests','.']; from pathlib import Path; import releases
releases.make_oulu(Path('$out/raw/oulu')); releases.make_casia(Path('$out/raw/casia'))\" &&
    $py -m fghv import oulu-npu --root '$out/raw/oulu' --out '$out/data' --yunet '$root/gpu-carry/yunet_s_640_640.onnx' --workers 4 &&
    $py -m fghv import casia-fasd --root '$out/raw/casia' --out '$out/data' --yunet '$root/gpu-carry/yunet_s_640_640.onnx' --workers 4 &&
    $py -m fghv protocol --data '$out/data' --train oulu --test casia --steps 300 --device cuda --out '$out/protocol' --workers 2
  " > "$out/protocol.log" 2>&1
  echo "rc $?" >> "$out/protocol.log"; tail -3 "$out/protocol.log"
  rm -rf "$out/raw" "$out/data"  # fixtures: rebuilt from the code, not worth carrying back
else
  echo "skipped: no gpu-carry/yunet_s_640_640.onnx" | tee "$out/protocol.log"
fi

if [ "$ablation" = "--ablation" ]; then
  step "ablation, 8 seeds, CUDA"
  timeout 420 $py -m fghv ablation --out "$out/ablation" --seeds 0,1,2,3,4,5,6,7 --steps 1500 --threads 4 --crop ${CROP:-64} \
    > "$out/ablation.log" 2>&1
  echo "rc $?" >> "$out/ablation.log"; tail -3 "$out/ablation.log"
  find "$out/ablation" -name checkpoint.pt -delete; rm -rf "$out/ablation"/{train,val,unseen_domain,unseen_attack}
fi
step done
