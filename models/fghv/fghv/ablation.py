"""Cross-domain ablation on the simulator (models/fghv/EXPERIMENTS.md): what each part of FGHV
does, against a plain binary classifier on the same backbone and data.

Train on camera domains camA + camB with print and replay attacks; choose the test-time step
and calibrate every threshold on a validation render of the same domains and attacks; test on
(a) camC, a camera domain never seen in training (print, replay), and (b) camA + camB with a
cut-out print worn as a mask, an attack type never seen in training. Rows: the baseline (cross
entropy), FGHV p_real only, var only, delta_kl only, and the full box. One command, seeds fixed:

    python3 -m fghv ablation --out runs/ablation --seeds 0,1,2
"""

import json
import time
from pathlib import Path

import numpy as np
import torch

from . import data, metrics, sweep
from .cli import options
from .evaluate import fit_thresholds
from .train import load_checkpoint, train

SIZE, SCENE = 64, 128
SETS = {  # name -> (per-domain counts, attack types, data seed)
    "train": ({"camA": 600, "camB": 600}, ("print", "replay"), 0),
    "val": ({"camA": 150, "camB": 150}, ("print", "replay"), 100),
    "unseen_domain": ({"camC": 300}, ("print", "replay"), 200),
    "unseen_attack": ({"camA": 150, "camB": 150}, ("mask",), 300),
}
TRAIN = {"family": "lite", "width": 0.5, "gen_hidden": 128, "batch": 32, "hypotheses": 8, "lr_backbone": 1e-3,
         "lr_gen": 1e-3, "weight_decay": 5e-4, "simulate_p": 0.1}


def cli_args(opts: dict) -> list[str]:
    """The `python3 -m fghv train` flags for these options (recorded in the report, to rerun by hand)."""
    return [x for k, v in opts.items() for x in (f"--{k.replace('_', '-')}", str(v))]


ROWS = ["baseline (CE)", "FGHV p_real only", "FGHV var only", "FGHV delta_kl only", "FGHV full box"]


def make_sets(root: Path, scale: float = 1.0, size: int = SIZE, scene: int = SCENE) -> None:
    for name, (per, attacks, seed) in SETS.items():
        d = root / name
        if not (d / "demo-data.json").exists():
            per = {k: max(8, int(v * scale)) for k, v in per.items()}
            print(json.dumps({"generating": name, **data.make_demo_data(str(d), size, per, seed, attacks=attacks, scene=scene)}), flush=True)


def train_runs(root: Path, seeds: list[int], steps: int, threads: int, size: int = SIZE) -> None:
    for seed in seeds:
        for objective in ("fghv", "ce"):
            run = root / f"seed{seed}" / objective
            ck = run / "checkpoint.pt"
            if ck.exists() and load_checkpoint(ck)["step"] >= steps:
                continue
            train(options("train", data=str(root / "train"), train_domains=["camA", "camB"], val_data=str(root / "val"),
                          val_domains=["camA", "camB"], out=str(run), objective=objective, **TRAIN, size=size, steps=steps,
                          seed=seed, threads=threads, log_every=100, val_every=steps, save_every=200, resume=True))


def _eer_threshold(score, live) -> float:
    return metrics.eer(score, live)[1]


def _row(accepted, score, res, var_max) -> dict:
    iso = metrics.iso_metrics(accepted, res["live"], res["attack"])
    out = {"hter": iso["hter"], "bpcer": iso["bpcer"], "apcer_per_type": iso["apcer_per_type"],
           "auc": metrics.auc(score, res["live"])}
    if var_max is not None:
        y = np.asarray(res["live"], bool)
        err = (accepted & ~y) | (~accepted & y)
        out["uncertain_share_of_errors"] = float((np.asarray(res["var"])[err] > var_max).mean()) if err.any() else 0.0
    return out


def evaluate_seed(val: dict, tests: dict, base_val: dict, base_tests: dict) -> dict:
    """Thresholds from validation (EER for the single scores, fit_thresholds for the box), applied to each test set."""
    box = fit_thresholds(val, "eer")
    scores = {  # row -> (score function, higher = live)
        "FGHV p_real only": lambda r: np.asarray(r["p_real"]),
        "FGHV var only": lambda r: -np.asarray(r["var"]),
        "FGHV delta_kl only": lambda r: -np.asarray(r["delta_kl"]),
    }
    out = {"box_thresholds": box}
    for name in tests:
        res, b = tests[name], base_tests[name]
        t = _eer_threshold(base_val["p_real"], base_val["live"])
        rows = {"baseline (CE)": _row(b["p_real"] >= t, b["p_real"], b, None)}
        for row, fn in scores.items():
            t = _eer_threshold(fn(val), val["live"])
            rows[row] = _row(fn(res) >= t, fn(res), res, box["var_max"])
        acc = metrics.decide(res, box)
        inside = (np.asarray(res["var"]) <= box["var_max"]) & (np.asarray(res["delta_kl"]) <= box["delta_kl_max"])
        rows["FGHV full box"] = _row(acc, np.where(inside, res["p_real"], -1.0), res, box["var_max"])
        out[name] = {"rows": rows, "delta_kl_std": float(np.std(res["delta_kl"])), "var_std": float(np.std(res["var"])),
                     "spearman_var_delta_kl": sweep.spearman(res["var"], res["delta_kl"])}
    return out


def _fmt(vals, pct=True) -> str:
    v = np.asarray([x for x in vals if x is not None and np.isfinite(x)], np.float64)
    if not len(v):
        return "n/a"
    k = 100.0 if pct else 1.0
    return f"{k * v.mean():.1f} ± {k * v.std():.1f}" if pct else f"{v.mean():.3f} ± {v.std():.3f}"


def markdown(per_seed: list[dict]) -> str:
    lines = []
    for name in ("unseen_domain", "unseen_attack"):
        types = sorted(per_seed[0][name]["rows"]["FGHV full box"]["apcer_per_type"])
        head = ["row", "HTER %", "AUC", *[f"APCER {t} %" for t in types], "BPCER %", "errors flagged uncertain %"]
        lines += [f"\n**{name.replace('_', ' ')}** (mean ± sd over {len(per_seed)} seeds)\n", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for row in ROWS:
            rs = [s[name]["rows"][row] for s in per_seed]
            cells = [row, _fmt([r["hter"] for r in rs]), _fmt([r["auc"] for r in rs], pct=False),
                     *[_fmt([r["apcer_per_type"].get(t) for r in rs]) for t in types], _fmt([r["bpcer"] for r in rs]),
                     _fmt([r.get("uncertain_share_of_errors") for r in rs])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append(f"\nstd of delta_kl across inputs {_fmt([s[name]['delta_kl_std'] for s in per_seed], pct=False)}; "
                     f"std of var {_fmt([s[name]['var_std'] for s in per_seed], pct=False)}; "
                     f"Spearman(var, delta_kl) {_fmt([s[name]['spearman_var_delta_kl'] for s in per_seed], pct=False)}")
    return "\n".join(lines)


def sign_flip_p(d) -> float:
    """Two-sided exact paired sign-flip (permutation) test of mean(d) = 0: the share of the 2^n
    sign assignments whose |mean| is at least the observed one (n <= 16 here)."""
    d = np.asarray(d, np.float64)
    n = len(d)
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    means = np.abs((signs * d).mean(1))
    return float((means >= abs(d.mean()) - 1e-12).mean())


PAIRED = [("FGHV full box", "baseline (CE)"), ("FGHV p_real only", "baseline (CE)")]


def paired(per_seed: list[dict]) -> list[dict]:
    """Per test set, metric and FGHV row: the per-seed differences FGHV - CE, their mean and sd, and
    the sign-flip p-value (lower HTER / APCER / BPCER and higher AUC are better)."""
    out = []
    for name in ("unseen_domain", "unseen_attack"):
        for a_row, b_row in PAIRED:
            types = sorted(per_seed[0][name]["rows"][b_row]["apcer_per_type"])
            for key in ["hter", "auc", "bpcer", *[f"apcer {t}" for t in types]]:
                def get(r, key=key):
                    return r["apcer_per_type"][key[6:]] if key.startswith("apcer ") else r[key]
                d = [get(sd[name]["rows"][a_row]) - get(sd[name]["rows"][b_row]) for sd in per_seed]
                out.append({"test": name, "rows": f"{a_row} - {b_row}", "metric": key, "n": len(d),
                            "mean_diff": float(np.mean(d)), "sd_diff": float(np.std(d, ddof=1)) if len(d) > 1 else 0.0,
                            "fghv_better_seeds": int(sum((x > 0) if key == "auc" else (x < 0) for x in d)),
                            "p_sign_flip": sign_flip_p(d)})
    return out


def paired_markdown(rows: list[dict]) -> str:
    lines = ["| test | FGHV row - CE | metric | mean diff (pp; AUC x100) | sd | seeds FGHV better | p (sign flip) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['test'].replace('_', ' ')} | {r['rows'].split(' - ')[0]} | {r['metric']} | "
                     f"{100 * r['mean_diff']:+.2f} | {100 * r['sd_diff']:.2f} | {r['fghv_better_seeds']}/{r['n']} | "
                     f"{r['p_sign_flip']:.3f} |")
    return "\n".join(lines)


def run(a) -> dict:
    from .train import CropCache, features, labels, load_model, score_features

    torch.set_num_threads(a.threads)
    root = Path(a.out)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    size = getattr(a, "crop", SIZE)
    scene = 2 * size
    make_sets(root, a.scale, size, scene)
    t_data = time.time() - t0
    seeds = [int(s) for s in a.seeds.split(",")]
    train_runs(root, seeds, a.steps, a.threads, size)
    t_train = time.time() - t0 - t_data
    samples = {n: data.scan(str(root / n)) for n in SETS if n != "train"}
    caches = {n: CropCache(s, size) for n, s in samples.items()}
    feats, models, sweeps = {}, {}, {}
    for seed in seeds:
        model, _ = load_model(str(root / f"seed{seed}" / "fghv" / "checkpoint.pt"))
        base, _ = load_model(str(root / f"seed{seed}" / "ce" / "checkpoint.pt"))
        models[seed] = (model, base)
        feats[seed] = {n: (features(model, s, caches[n], "cpu"), features(base, s, caches[n], "cpu")) for n, s in samples.items()}
        live = np.array([s.live for s in samples["val"]])
        sweeps[seed] = sweep.sweep_features(model, feats[seed]["val"][0], live)
    # One setting for all seeds: sweep.choose on the per-setting means over seeds.
    mean_rows = [{**sweeps[seeds[0]]["rows"][i], **{k: float(np.mean([sweeps[s]["rows"][i][k] for s in seeds]))
                  for k in ("median_move_real", "median_move_attack", "auc_neg_delta_kl")}} for i in range(len(sweep.SETTINGS))]
    mean_auc = [r["auc_neg_delta_kl"] for r in mean_rows]
    chosen = sweep.choose(mean_rows)
    per_seed = []
    for seed in seeds:
        model, _ = models[seed]
        res, bres = {}, {}
        for n in samples:
            f, logit = feats[seed][n]
            res[n] = labels(score_features(model, f, chosen), samples[n])
            bres[n] = labels({"p_real": torch.sigmoid(logit).cpu().numpy().astype(float)}, samples[n])
        ev = evaluate_seed(res["val"], {k: res[k] for k in ("unseen_domain", "unseen_attack")}, bres["val"],
                           {k: bres[k] for k in ("unseen_domain", "unseen_attack")})
        per_seed.append({"seed": seed, **ev})
    out = {
        "command": f"python3 -m fghv ablation --out {a.out} --seeds {a.seeds} --steps {a.steps} --threads {a.threads} --crop {size}",
        "sets": {k: {"per_domain": v[0], "attacks": v[1], "seed": v[2]} for k, v in SETS.items()},
        "scale": a.scale, "train_args": cli_args({**TRAIN, "size": size, "steps": a.steps}), "crop": size, "scene": scene,
        "sweep": {str(s): sweeps[s]["rows"] for s in seeds}, "sweep_mean_val_auc": mean_auc, "chosen_test_time": chosen,
        "per_seed": per_seed, "paired": paired(per_seed), "threads": a.threads, "torch": torch.__version__,
        "seconds": {"data": round(t_data), "train": round(t_train), "total": round(time.time() - t0)},
    }
    table = markdown(per_seed) + "\n\n## Paired comparison over seeds\n\n" + paired_markdown(out["paired"])
    sw = "\n\n".join(f"seed {s}\n\n" + sweep.markdown(sweeps[s]["rows"]) for s in seeds)
    data.atomic_write(str(root / "results.json"), (json.dumps(out, indent=1) + "\n").encode())
    data.atomic_write(str(root / "table.md"), (f"chosen test-time step: {chosen}\n\n## Sweep (validation)\n\n{sw}\n\n## Test\n{table}\n").encode())
    print(table)
    return out
