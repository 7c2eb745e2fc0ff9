"""The three training constraints of FGHV (method doc section 3, revised: DDC hinge on both
hypothesis sets, attack-side VAR hinge)."""

import torch
import torch.nn.functional as F

# Defaults of the method doc; every run records the values it used (train.py -> manifest).
DEFAULTS = {"rcc_scale": 16.0, "lambda_v": 1.0, "lambda_d": 1.0, "var_margin": 0.01, "lambda_a": 10.0,
            "ddc_margin": 0.9, "ddc_weight": 2.0}


def cosines(f: torch.Tensor, hyp: torch.Tensor) -> torch.Tensor:
    """c(f, hyp_i) for unit f [B,D] and unit hypotheses [B,N,D] -> [B,N]."""
    return (hyp * f.unsqueeze(1)).sum(-1)


def rcc(f, g, h, live: torch.Tensor, scale: float = 16.0) -> torch.Tensor:
    """Relative correlation constraint: per pair i, softmax(s*[c(f,g_i), c(f,h_i)]) vs the label."""
    logit = scale * (cosines(f, g) - cosines(f, h))  # softmax over two = sigmoid of the difference
    target = live.float().unsqueeze(1).expand_as(logit)
    return F.binary_cross_entropy_with_logits(logit, target)


def var_constraint(f, g, live: torch.Tensor, margin: float = 0.01, lambda_a: float = 10.0) -> torch.Tensor:
    """Variance of c(f, g_i) over hypotheses: minimised for live samples; for attacks a hinge
    lambda_a * relu(margin - var) keeps it above the margin. Each side is averaged over its own
    samples."""
    v = cosines(f, g).var(1, unbiased=False)
    m = live.float()
    live_term = (v * m).sum() / m.sum().clamp(min=1.0)
    hinge = lambda_a * F.relu(margin - v)
    attack_term = (hinge * (1 - m)).sum() / (1 - m).sum().clamp(min=1.0)
    return live_term + attack_term


def within_similarity(hyp: torch.Tensor) -> torch.Tensor:
    """Mean pairwise cosine c(x_i, x_j), i != j, of unit hypotheses [B,N,D] (1.0 = collapsed)."""
    b, n = hyp.shape[0], hyp.shape[1]
    gram = torch.einsum("bid,bjd->bij", hyp, hyp)
    # off-diagonal mean as (sum - trace) / count: no boolean mask, so no host sync on a GPU
    return (gram.sum() - torch.diagonal(gram, dim1=1, dim2=2).sum()) / (b * n * (n - 1))


def ddc(g, h, margin: float = 0.9, weight: float = 2.0) -> torch.Tensor:
    """Distribution discrimination: cross-set correlation minus within-set correlation of the
    real hypotheses, plus weight * relu(within - margin) for both sets, which pushes back on a
    collapsing generator (a cap such as min(within, margin) only stops rewarding collapse)."""
    cross = torch.einsum("bid,bjd->bij", g, h).mean()
    wg, wh = within_similarity(g), within_similarity(h)
    return cross - wg + weight * (F.relu(wg - margin) + F.relu(wh - margin))


def total(f, g, h, live, lambda_v: float = 1.0, lambda_d: float = 1.0, scale: float = 16.0, var_margin: float = 0.01,
          lambda_a: float = 10.0, ddc_margin: float = 0.9, ddc_weight: float = 2.0):
    parts = {"rcc": rcc(f, g, h, live, scale), "var": var_constraint(f, g, live, var_margin, lambda_a),
             "ddc": ddc(g, h, ddc_margin, ddc_weight)}
    return parts["rcc"] + lambda_v * parts["var"] + lambda_d * parts["ddc"], parts
