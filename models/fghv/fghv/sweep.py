"""Sweep of the test-time latent step (rule and size) on validation data: for each setting the
median latent displacement |z - z0| / |z0| of each branch, the spread of delta_kl across inputs,
AUC of -delta_kl (live lower) and its rank correlation with var. The chosen setting is the one
that really moves the latents (median displacement of both branches at least MIN_MOVE of |z0|)
with the highest AUC of -delta_kl (rounded to 3 decimals; ties go to the smaller step); it goes
into the exported manifest (export --test-time). Tiny steps are excluded because there delta_kl
is only a first-order echo of the gradient size (it mostly repeats var), and the method asks
for an update that moves the latents."""

import json
from pathlib import Path

import numpy as np
import torch

from . import data, metrics

MIN_MOVE = 0.05
SETTINGS = [("plain", 0.1), ("joint", 0.002), ("joint", 0.005), ("joint", 0.01), ("joint", 0.02), ("joint", 0.05), ("joint", 0.1)]


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def sweep_features(model, f: torch.Tensor, live, settings=SETTINGS, base: dict | None = None) -> dict:
    from .train import score_features

    rows = []
    for rule, step in settings:
        tt = {**(base or {}), "step_rule": rule, "step": step}
        r = score_features(model, f, tt)
        rows.append({
            "step_rule": rule, "step": step,
            "median_move_real": float(np.median(r["move_real"])), "median_move_attack": float(np.median(r["move_attack"])),
            "delta_kl_std": float(np.std(r["delta_kl"])),
            "auc_neg_delta_kl": metrics.auc(-r["delta_kl"], live),
            "auc_neg_var": metrics.auc(-r["var"], live),
            "spearman_var_delta_kl": spearman(r["var"], r["delta_kl"]),
        })
    return {"rows": rows, "chosen": choose(rows), "rule": f"moves >= {MIN_MOVE}, then max AUC of -delta_kl (3 d.p.), then smaller step"}


def moves(r: dict) -> bool:
    return min(r["median_move_real"], r["median_move_attack"]) >= MIN_MOVE


def choose(rows: list[dict]) -> dict:
    """The setting that moves the latents with the best AUC of -delta_kl (see the module doc)."""
    ok = [r for r in rows if moves(r)] or rows
    best = max(ok, key=lambda r: (round(r["auc_neg_delta_kl"], 3), -r["step"]))
    return {"step_rule": best["step_rule"], "step": best["step"]}


def run(a) -> dict:
    from .train import CropCache, features, load_model, pick_device

    device = pick_device(a.device)
    model, st = load_model(a.checkpoint, device)
    samples = data.scan(a.data, a.domains)
    f = features(model, samples, CropCache(samples, model.size), device)
    live = np.array([s.live for s in samples])
    res = {"data": f"{a.data} {a.domains}", "n": len(samples), **sweep_features(model, f, live, base=st.get("test_time"))}
    if a.out:
        data.atomic_write(a.out, (json.dumps(res, indent=1) + "\n").encode())
    return res


def markdown(rows: list[dict]) -> str:
    out = ["| rule | step | median \\|Δz\\|/\\|z\\| real | attack | std of ΔKL | AUC of -ΔKL | AUC of -var | Spearman(var, ΔKL) |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['step_rule']} | {r['step']} | {r['median_move_real']:.4f} | {r['median_move_attack']:.4f} | "
                   f"{r['delta_kl_std']:.4f} | {r['auc_neg_delta_kl']:.3f} | {r['auc_neg_var']:.3f} | {r['spearman_var_delta_kl']:.2f} |")
    return "\n".join(out)


def load_choice(path: str | None) -> dict:
    if not path:
        return {}
    return json.loads(Path(path).read_text())["chosen"]
