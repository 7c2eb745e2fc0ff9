"""Presentation attack detection metrics (ISO/IEC 30107-3) and the paper's HTER/EER/AUC.

Convention: a higher score means more likely bona fide (live). An attack presentation accepted
as bona fide counts towards APCER of its attack type; a bona fide presentation that is not
accepted (rejected or uncertain) counts towards BPCER.
"""

import numpy as np


def auc(scores, live) -> float:
    """Area under the ROC curve (probability a live sample outranks an attack; ties count 1/2)."""
    s, y = np.asarray(scores, np.float64), np.asarray(live, bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    ranks[order] = _average_ranks(allv)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(sorted_values):
    r = np.arange(1, len(sorted_values) + 1, dtype=np.float64)
    i = 0
    while i < len(sorted_values):
        j = i
        while j + 1 < len(sorted_values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        r[i : j + 1] = (i + j + 2) / 2.0
        i = j + 1
    return r


def roc(scores, live):
    """(false accept rate, true accept rate, thresholds), accepting score >= threshold."""
    s, y = np.asarray(scores, np.float64), np.asarray(live, bool)
    thr = np.concatenate([[np.inf], np.unique(s)[::-1]])
    far = np.array([(s[~y] >= t).mean() if (~y).any() else 0.0 for t in thr])
    tar = np.array([(s[y] >= t).mean() if y.any() else 0.0 for t in thr])
    return far, tar, thr


def eer(scores, live) -> tuple[float, float]:
    """Equal error rate and the threshold where FAR and FRR are closest (their mean there)."""
    far, tar, thr = roc(scores, live)
    frr = 1 - tar
    i = int(np.argmin(np.abs(far - frr)))
    t = thr[i] if np.isfinite(thr[i]) else float(np.max(scores)) + 1e-6
    return float((far[i] + frr[i]) / 2), float(t)


def threshold_for_bpcer(scores, live, target: float) -> float:
    """Highest threshold whose BPCER (live with score < threshold) does not exceed target."""
    s = np.sort(np.asarray(scores, np.float64)[np.asarray(live, bool)])
    if len(s) == 0:
        raise ValueError("no bona fide samples to calibrate on")
    k = int(np.floor(target * len(s)))  # at most k live samples may fall below the threshold
    return float(s[min(k, len(s) - 1)])


def iso_metrics(accepted, live, attack) -> dict:
    """APCER per attack type (worst reported), BPCER, ACER and HTER from accept decisions."""
    acc, y, att = np.asarray(accepted, bool), np.asarray(live, bool), np.asarray(attack)
    bpcer = float((~acc[y]).mean()) if y.any() else float("nan")
    per_type = {str(t): float(acc[(~y) & (att == t)].mean()) for t in sorted(set(att[~y].tolist()))}
    apcer = max(per_type.values()) if per_type else float("nan")
    pooled_far = float(acc[~y].mean()) if (~y).any() else float("nan")
    return {
        "apcer_per_type": per_type,
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2,
        "hter": (pooled_far + bpcer) / 2,
        "n_bona_fide": int(y.sum()),
        "n_attack": int((~y).sum()),
    }


def decide(out: dict, thresholds: dict) -> np.ndarray:
    """The daemon's per-frame rule: accepted iff var <= var_max, delta_kl <= delta_kl_max and
    p_real >= p_real_min (high var is 'uncertain', never accepted)."""
    return (
        (np.asarray(out["var"]) <= thresholds["var_max"])
        & (np.asarray(out["delta_kl"]) <= thresholds["delta_kl_max"])
        & (np.asarray(out["p_real"]) >= thresholds["p_real_min"])
    )
