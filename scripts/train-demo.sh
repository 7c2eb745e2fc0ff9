#!/usr/bin/env bash
# Trains, evaluates, calibrates and exports the demo FGHV model (models/fghv-demo/), seeded, on
# the CPU. Live faces are Debian's public-domain portraits (packages facedetect, python3-skimage,
# landmarks measured once into models/fghv/fghv/portraits.json); attacks are simulated
# (models/fghv/fghv/simulate.py). Rerunning resumes training from its checkpoint.
# Steps: data -> train -> sweep of the test-time latent step on camC -> export (fp32 + fp16,
# no thresholds) -> calibrate on camC (all three thresholds) -> evaluate on the held-out camC
# render -> vectors -> real samples.
#   scripts/train-demo.sh            # env: WORK=models/fghv/runs/demo STEPS=1500 THREADS=1 SEED=0
set -euo pipefail
cd "$(dirname "$0")/../models/fghv"
PY=/usr/bin/python3
WORK=${WORK:-runs/demo}
STEPS=${STEPS:-1500}
THREADS=${THREADS:-1}
SEED=${SEED:-0}
OUT=../fghv-demo
SHARED=../../../shared/data
export OMP_NUM_THREADS=$THREADS
# Every training hyper-parameter, spelled out (the manifest records them from the checkpoint).
TRAIN_ARGS=(--family lite --size 128 --width 0.5 --gen-hidden 256 --steps "$STEPS" --batch 32 --hypotheses 8
  --lr-backbone 1e-3 --lr-gen 1e-3 --weight-decay 5e-4 --lambda-v 1 --lambda-d 1 --var-margin 0.01 --lambda-a 10
  --ddc-margin 0.9 --ddc-weight 2 --simulate-p 0.1 --seed "$SEED" --threads "$THREADS" --tt-rule joint --tt-step 0.05)

# Train on camera profiles A and B; validate, sweep and calibrate on C; report on C rendered with another seed.
[ -f "$WORK/data/demo-data.json" ] || $PY -m fghv demo-data --out "$WORK/data" --per-domain camA=1500,camB=1500,camC=600 --seed "$SEED"
[ -f "$WORK/test/demo-data.json" ] || $PY -m fghv demo-data --out "$WORK/test" --per-domain camC=600 --seed "$((SEED + 1000))"
$PY -m fghv train --data "$WORK/data" --train-domains camA,camB --val-domains camC --out "$WORK/run" "${TRAIN_ARGS[@]}" \
  --log-every 50 --val-every 250 --save-every 100 --resume | tee -a "$WORK/train.log"
[ "$WORK/sweep.json" -nt "$WORK/run/checkpoint.pt" ] ||
  $PY -m fghv sweep --checkpoint "$WORK/run/checkpoint.pt" --data "$WORK/data" --domains camC --out "$WORK/sweep.json"
cat > "$WORK/provenance.json" <<JSON
{"data": "synthetic (python3 -m fghv demo-data, seed $SEED): live = 2 public-domain portraits shipped by Debian (facedetect: grace_hopper_512x512.jpg; python3-skimage: astronaut.png) heavily augmented; attacks = simulated print and replay; train camA+camB (3000 crops each), validation/sweep/calibration camC (1200), test camC rendered with seed $((SEED + 1000)) (1200)",
 "script": "scripts/train-demo.sh (STEPS=$STEPS THREADS=$THREADS SEED=$SEED)"}
JSON
$PY -m fghv export --checkpoint "$WORK/run/checkpoint.pt" --out "$OUT" --file fghv-demo.onnx \
  --name fghv-demo-lite-128 --purpose demo --provenance "$WORK/provenance.json" --test-time "$WORK/sweep.json" \
  --description "Demo FGHV model trained on simulated attacks of two public-domain portraits; not for production use."
$PY -m fghv calibrate --checkpoint "$WORK/run/checkpoint.pt" --data "$WORK/data" --domains camC --target eer \
  --manifest "$OUT/manifest.json" --out "$WORK/calibration"
$PY -m fghv evaluate --checkpoint "$WORK/run/checkpoint.pt" --data "$WORK/test" --domains camC \
  --manifest "$OUT/manifest.json" --out "$WORK/test-report" --record held_out_test
cp "$WORK/test-report/roc.png" "$OUT/roc-held-out.png"
$PY -m fghv make-vectors --checkpoint "$WORK/run/checkpoint.pt" --onnx "$OUT/fghv-demo.onnx" --name fghv-demo \
  --crops "$WORK/test"
if [ -d "$SHARED/images" ]; then
  $PY -m fghv real-samples --manifest "$OUT/manifest.json" --images "$SHARED/images" \
    --yunet "$SHARED/models/yunet_s_640_640.onnx" --out "$WORK/real-samples.json"
fi
echo "done: $OUT (reports under $WORK)"
