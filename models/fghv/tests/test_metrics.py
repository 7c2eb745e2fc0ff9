import numpy as np
import pytest

from fghv import metrics
from fghv.evaluate import fit_thresholds


def test_auc_and_eer_on_fixed_scores():
    live = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05])
    assert metrics.auc(s, live) == pytest.approx(15 / 16)  # 0.3 outranks three of the four attacks
    e, t = metrics.eer(s, live)
    assert e == pytest.approx(0.25)
    assert metrics.auc([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)  # ties count half


def test_iso_metrics_per_attack_type():
    live = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    attack = np.array(["bona_fide"] * 4 + ["print", "print", "replay", "replay"])
    accepted = np.array([1, 1, 1, 0, 1, 0, 0, 0], bool)
    r = metrics.iso_metrics(accepted, live, attack)
    assert r["apcer_per_type"] == {"print": 0.5, "replay": 0.0}
    assert r["apcer"] == 0.5 and r["bpcer"] == 0.25
    assert r["acer"] == pytest.approx(0.375)
    assert r["hter"] == pytest.approx((0.25 + 0.25) / 2)


def test_threshold_for_target_bpcer():
    live = np.ones(10, bool)
    s = np.arange(10) / 10.0
    t = metrics.threshold_for_bpcer(s, live, 0.2)
    assert t == pytest.approx(0.2)
    assert (s[live] < t).mean() <= 0.2


def test_decision_box_fails_closed_on_high_variance():
    out = {"p_real": np.array([0.9, 0.9]), "var": np.array([0.01, 0.2]), "delta_kl": np.array([-1.0, -1.0])}
    th = {"p_real_min": 0.5, "var_max": 0.05, "delta_kl_max": 0.0}
    assert metrics.decide(out, th).tolist() == [True, False]


def test_fit_thresholds_targets():
    rng = np.random.default_rng(0)
    live = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    res = {"live": live, "p_real": np.r_[rng.uniform(0.4, 1, 200), rng.uniform(0, 0.6, 200)],
           "var": rng.uniform(0, 0.01, 400), "delta_kl": rng.normal(0, 1, 400)}
    th = fit_thresholds(res, "0.05")
    bpcer = 1 - metrics.decide(res, th)[live].mean()
    assert bpcer <= 0.05 + 0.02 + 1e-9  # the box keeps 99 % + 99 %, p_real the rest
    th_eer = fit_thresholds(res, "eer")
    assert 0 < th_eer["p_real_min"] < 1
