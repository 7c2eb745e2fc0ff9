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
    # the log watches for collapse and for a test-time update that does not move, per branch
    for k in ("cos_gg", "cos_hh", "move_real", "move_attack"):
        assert all(np.isfinite(h[k]) for h in hist), k
    assert all(-1.0 <= h["cos_gg"] <= 1.0 for h in hist)
    assert {"auc_neg_var", "auc_neg_delta_kl", "median_move_real", "median_move_attack"} <= set(hist[-1]["val"])
    # resumable: continuing to 50 steps starts from step 40
    main([*args[:-12], "--size", "64", "--width", "0.25", "--gen-hidden", "64", "--batch", "8", "--steps", "50",
          "--log-every", "10", "--val-every", "50", "--save-every", "50", "--resume", "--threads", "1"])
    assert torch.load(run / "checkpoint.pt")["step"] == 50

    out = tmp_path / "export"
    main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out), "--file", "m.onnx"])
    man_path = out / "manifest.json"
    assert "thresholds" not in json.loads(man_path.read_text())  # a fresh export is uncalibrated
    assert json.loads(man_path.read_text())["provenance"]["training"]["weight_decay"] == 5e-4
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


def test_ablation_command_produces_every_row_and_column(tmp_path):
    from fghv import sweep
    from fghv.ablation import ROWS

    out = tmp_path / "abl"
    main(["ablation", "--out", str(out), "--seeds", "0,1", "--steps", "10", "--scale", "0.04", "--threads", "1"])
    res = json.loads((out / "results.json").read_text())
    assert (res["chosen_test_time"]["step_rule"], res["chosen_test_time"]["step"]) in sweep.SETTINGS
    assert len(res["sweep"]["0"]) == len(sweep.SETTINGS)
    assert [s["seed"] for s in res["per_seed"]] == [0, 1]
    for s in res["per_seed"]:
        assert set(s["unseen_domain"]["rows"]) == set(ROWS) == set(s["unseen_attack"]["rows"])
        assert set(s["unseen_domain"]["rows"]["FGHV full box"]["apcer_per_type"]) == {"print", "replay"}
        assert set(s["unseen_attack"]["rows"]["baseline (CE)"]["apcer_per_type"]) == {"mask"}
        for row in s["unseen_attack"]["rows"].values():
            assert 0.0 <= row["hter"] <= 1.0 and 0.0 <= row["bpcer"] <= 1.0
    table = (out / "table.md").read_text()
    assert "unseen attack" in table and "errors flagged uncertain" in table and "p (sign flip)" in table
    assert {p["metric"] for p in res["paired"]} >= {"hter", "auc", "bpcer", "apcer mask"}
    assert all(0.0 < p["p_sign_flip"] <= 1.0 for p in res["paired"])


def test_worker_batches_and_gpu_normalisation_match_the_reference_preprocessing(tmp_path):
    """--workers 1: batches come from a DataLoader worker; the log reports steps/s; the batch
    normalisation done on the device equals preprocess.to_tensor bit for bit."""
    import torch

    from fghv.preprocess import normalize_batch, to_tensor

    crops = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert torch.equal(normalize_batch(torch.from_numpy(crops)), torch.from_numpy(np.stack([to_tensor(c) for c in crops])))
    root = tmp_path / "data"
    data.make_demo_data(str(root), 32, {"camA": 16}, seed=0)
    run = tmp_path / "run"
    main(["train", "--data", str(root), "--train-domains", "camA", "--out", str(run), "--size", "32", "--width", "0.25",
          "--gen-hidden", "32", "--batch", "8", "--steps", "6", "--log-every", "3", "--workers", "1", "--threads", "1"])
    hist = torch.load(run / "checkpoint.pt")["history"]
    assert [h["step"] for h in hist] == [3, 6]
    assert all(h["steps_per_s"] > 0 and h["gpu_util"] is None for h in hist)
    assert all(np.isfinite(h["loss"]) for h in hist)
