"""Evaluation and calibration: scores from a model (or a score file) -> metrics, ROC, thresholds."""

import json
from pathlib import Path

import numpy as np

from . import data, metrics

SCORE_KEYS = ("p_real", "var", "delta_kl", "kl_real", "kl_attack")


def fit_thresholds(res: dict, target="eer", var_quantile: float = 0.99, kl_quantile: float = 0.99) -> dict:
    """var_max and delta_kl_max keep the given share of bona fide samples inside the box; p_real_min
    is then chosen among samples inside the box, for the EER or for a target BPCER (overall)."""
    live = np.asarray(res["live"], bool)
    var_max = float(np.quantile(np.asarray(res["var"])[live], var_quantile))
    kl_max = float(np.quantile(np.asarray(res["delta_kl"])[live], kl_quantile))
    inside = (np.asarray(res["var"]) <= var_max) & (np.asarray(res["delta_kl"]) <= kl_max)
    s = np.where(inside, np.asarray(res["p_real"], np.float64), -np.inf)  # outside the box: never accepted
    if str(target) == "eer":
        _, p_min = metrics.eer(np.where(np.isfinite(s), s, -1.0), live)
    else:
        p_min = metrics.threshold_for_bpcer(s, live, float(target))
        if not np.isfinite(p_min):  # the box alone already rejects more than the target
            p_min = float(np.min(s[np.isfinite(s)]))
    return {"p_real_min": float(p_min), "var_max": var_max, "delta_kl_max": kl_max}


def report(res: dict, thresholds: dict) -> dict:
    acc = metrics.decide(res, thresholds)
    e, t = metrics.eer(res["p_real"], res["live"])
    return {
        "thresholds": thresholds,
        "decision": metrics.iso_metrics(acc, res["live"], res["attack"]),
        "uncertain_rate": float((np.asarray(res["var"]) > thresholds["var_max"]).mean()),
        "p_real": {"auc": metrics.auc(res["p_real"], res["live"]), "eer": e, "eer_threshold": t},
        "auc_neg_delta_kl": metrics.auc(-np.asarray(res["delta_kl"]), res["live"]),
        "auc_neg_var": metrics.auc(-np.asarray(res["var"]), res["live"]),
    }


def roc_png(res: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    for key, sign in (("p_real", 1), ("delta_kl", -1), ("var", -1)):
        far, tar, _ = metrics.roc(sign * np.asarray(res[key]), res["live"])
        ax.plot(far, tar, label=f"{'-' if sign < 0 else ''}{key} (AUC {metrics.auc(sign * np.asarray(res[key]), res['live']):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("attacks accepted (APCER, pooled)")
    ax.set_ylabel("bona fide accepted (1 - BPCER)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def test_time_of(a, st: dict) -> dict:
    """Test-time settings: the manifest's (what the exported graph does) when given, else the
    checkpoint's."""
    man = getattr(a, "manifest", None)
    if man and Path(man).exists():
        tt = json.loads(Path(man).read_text()).get("provenance", {}).get("test_time")
        if tt:
            return tt
    return st.get("test_time") or {}


def load_scores(a) -> dict:
    if a.scores:
        raw = json.loads(Path(a.scores).read_text())
        raw = raw.get("scores", raw)
        return {k: np.asarray(v) for k, v in raw.items()}
    if not (a.checkpoint and a.data):
        raise SystemExit("give --scores, or --checkpoint and --data")
    from .train import CropCache, load_model, pick_device, score

    device = pick_device(a.device)
    model, st = load_model(a.checkpoint, device)
    samples = data.scan(a.data, a.domains)
    res = score(model.to(device), samples, CropCache(samples, model.size), device, tt=test_time_of(a, st))
    res["video"] = np.array([s.video for s in samples])
    return res


def run(a) -> dict:
    res = load_scores(a)
    man_path = getattr(a, "manifest", None)
    if a.cmd == "evaluate" and man_path and Path(man_path).exists():
        thresholds = json.loads(Path(man_path).read_text()).get("thresholds")
        if not thresholds:
            raise SystemExit(f"{man_path} has no thresholds (exported without calibration): run python3 -m fghv calibrate first")
        source = f"manifest {man_path}"
    else:
        thresholds = fit_thresholds(res, a.target, a.var_quantile, a.kl_quantile)
        source = f"fitted here (target {a.target})"
    rep = {"source": a.scores or f"{a.data} {a.domains or 'all domains'}", "thresholds_from": source, **report(res, thresholds)}
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        data.atomic_write(str(out / "report.json"), (json.dumps(rep, indent=1) + "\n").encode())
        scores = {k: np.asarray(v).tolist() for k, v in res.items()}
        data.atomic_write(str(out / "scores.json"), json.dumps({"scores": scores}).encode())
        roc_png(res, str(out / "roc.png"), rep["source"])
    if a.cmd == "evaluate" and getattr(a, "record", None) and man_path:
        man = json.loads(Path(man_path).read_text())
        man.setdefault("provenance", {}).setdefault("metrics", {})[a.record] = {
            "data": rep["source"], **{k: rep[k] for k in ("decision", "p_real", "uncertain_rate", "auc_neg_delta_kl", "auc_neg_var")},
        }
        data.atomic_write(man_path, (json.dumps(man, indent=1) + "\n").encode())
    if a.cmd == "calibrate":
        man = json.loads(Path(man_path).read_text())
        man["thresholds"] = dict(thresholds)  # unrounded: the report above used these exact values
        man.setdefault("provenance", {}).setdefault("metrics", {})["calibration"] = {
            "data": rep["source"], "target": str(a.target), "var_quantile": a.var_quantile,
            "kl_quantile": a.kl_quantile, **{k: rep[k] for k in ("decision", "p_real", "uncertain_rate")},
        }
        data.atomic_write(man_path, (json.dumps(man, indent=1) + "\n").encode())
    return rep
