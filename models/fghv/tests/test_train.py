import argparse
import json
import shutil

import numpy as np

from fghv import data
from fghv.__main__ import main


def test_train_evaluate_calibrate_end_to_end(tmp_path):
    root = tmp_path / "data"
    data.make_demo_data(str(root), 64, {"camA": 24, "camB": 24}, seed=0)
    run = tmp_path / "run"
    args = ["train", "--data", str(root), "--train-domains", "camA", "--val-domains", "camB", "--out", str(run),
            "--size", "64", "--width", "0.25", "--gen-hidden", "64", "--batch", "8", "--steps", "40",
            "--log-every", "10", "--val-every", "40", "--save-every", "20", "--lr-backbone", "1e-3", "--threads", "1"]
    main(args)
    import torch

    st = torch.load(run / "checkpoint.pt")
    hist = st["history"]
    assert st["step"] == 40
    assert hist[-1]["loss"] < hist[0]["loss"], [h["loss"] for h in hist]
    assert np.isfinite(hist[-1]["val"]["auc"])
    # resumable: continuing to 50 steps starts from step 40
    main([*args[:-12], "--size", "64", "--width", "0.25", "--gen-hidden", "64", "--batch", "8", "--steps", "50",
          "--log-every", "10", "--val-every", "50", "--save-every", "50", "--resume", "--threads", "1"])
    assert torch.load(run / "checkpoint.pt")["step"] == 50

    out = tmp_path / "export"
    main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--file", "m.onnx"])
    man_path = out / "manifest.json"
    main(["calibrate", "--checkpoint", str(run / "checkpoint.pt"), "--data", str(root), "--domains", "camB",
          "--manifest", str(man_path), "--out", str(tmp_path / "cal"), "--target", "0.1"])
    man = json.loads(man_path.read_text())
    assert set(man["thresholds"]) == {"p_real_min", "var_max", "delta_kl_max"}
    assert "calibration" in man["provenance"]["metrics"]
    rep = json.loads((tmp_path / "cal" / "report.json").read_text())
    for k in ("apcer", "bpcer", "acer", "hter"):
        assert 0.0 <= rep["decision"][k] <= 1.0
    assert set(rep["decision"]["apcer_per_type"]) == {"print", "replay"}
    assert (tmp_path / "cal" / "roc.png").stat().st_size > 1000
    # evaluate from the score file with the manifest's thresholds gives the same decision metrics
    shutil.copy(tmp_path / "cal" / "scores.json", tmp_path / "s.json")
    main(["evaluate", "--scores", str(tmp_path / "s.json"), "--manifest", str(man_path), "--out", str(tmp_path / "ev")])
    rep2 = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert rep2["decision"]["bpcer"] == rep["decision"]["bpcer"]
