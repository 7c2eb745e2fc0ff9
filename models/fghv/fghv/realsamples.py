"""Per-frame outputs of an exported model on the real samples in ../shared/data/images (T1 live,
F1 print, F2 replay) and on the two public-domain portraits the demo data is rendered from
(the raw digital images, never seen unaltered in training). The graph itself cannot run here (no onnxruntime for Python), so this runs
the PyTorch Verifier from the checkpoint the manifest was exported from."""

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from . import metrics, preprocess

SAMPLES = {"T1.jpg": "live", "F1.jpg": "print", "F2.jpg": "replay", "hopper.jpg": "portrait (training identity)",
           "astronaut.png": "portrait (training identity)"}


def run_real(a) -> dict:
    from .nets import Verifier
    from .train import load_model

    man = json.loads(Path(a.manifest).read_text())
    ckpt = man.get("provenance", {}).get("checkpoint")
    if not ckpt or not Path(ckpt).exists():
        raise SystemExit(f"checkpoint {ckpt} named in the manifest's provenance is not here")
    model, _ = load_model(ckpt)
    if not man.get("thresholds"):
        raise SystemExit(f"{a.manifest} has no thresholds (exported without calibration): run python3 -m fghv calibrate first")
    v = Verifier.from_config(model, man["provenance"]["test_time"]).eval()
    size = man["input"]["shape"][2]
    rows = {}
    for name, truth in SAMPLES.items():
        img = cv2.imread(str(Path(a.images) / name), cv2.IMREAD_COLOR)
        if img is None:
            rows[name] = {"truth": truth, "error": "image missing"}
            continue
        # YuNet scores T1 at about 0.46 here, so the detection threshold is lowered to 0.3.
        det = preprocess.detect_landmarks(img, a.yunet, 0.3)
        if det is None:
            rows[name] = {"truth": truth, "error": "no face"}
            continue
        lm, det_score = det
        crop = preprocess.warp_crop(img, preprocess.similarity_matrix(lm, man["crop"]["template"]), size)
        x = torch.from_numpy(preprocess.to_tensor(crop))[None]
        with torch.no_grad():
            out = {k: float(t[0]) for k, t in zip(("p_real", "var", "delta_kl", "kl_real", "kl_attack"), v(x))}
        th = man["thresholds"]
        verdict = "uncertain" if out["var"] > th["var_max"] else ("live" if bool(metrics.decide(out, th)) else "spoof")
        rows[name] = {"truth": truth, "detector_score": round(det_score, 3), **{k: round(val, 5) for k, val in out.items()},
                      "verdict": verdict}
    res = {"thresholds": man["thresholds"], "samples": rows}
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    return res
