"""The three training constraints of FGHV (method doc section 3)."""

import torch
import torch.nn.functional as F


def cosines(f: torch.Tensor, hyp: torch.Tensor) -> torch.Tensor:
    """c(f, hyp_i) for unit f [B,D] and unit hypotheses [B,N,D] -> [B,N]."""
    return (hyp * f.unsqueeze(1)).sum(-1)


def rcc(f, g, h, live: torch.Tensor, scale: float = 16.0) -> torch.Tensor:
    """Relative correlation constraint: per pair i, softmax(s*[c(f,g_i), c(f,h_i)]) vs the label."""
    logit = scale * (cosines(f, g) - cosines(f, h))  # softmax over two = sigmoid of the difference
    target = live.float().unsqueeze(1).expand_as(logit)
    return F.binary_cross_entropy_with_logits(logit, target)


def var_constraint(f, g, live: torch.Tensor) -> torch.Tensor:
    """Variance of c(f, g_i) over hypotheses, for live samples only."""
    v = cosines(f, g).var(1, unbiased=False)
    m = live.float()
    return (v * m).sum() / m.sum().clamp(min=1.0)


def ddc(g, h, margin: float = 0.9) -> torch.Tensor:
    """Distribution discrimination: cross-set correlation minus (capped) within-set correlation."""
    cross = torch.einsum("bid,bjd->bij", g, h).mean()
    within = torch.einsum("bid,bjd->bij", g, g)
    n = g.shape[1]
    off = ~torch.eye(n, dtype=torch.bool, device=g.device)
    within_mean = within[:, off].mean()
    return cross - torch.clamp(within_mean, max=margin)


def total(f, g, h, live, lambda_v: float = 1.0, lambda_d: float = 1.0, scale: float = 16.0):
    parts = {"rcc": rcc(f, g, h, live, scale), "var": var_constraint(f, g, live), "ddc": ddc(g, h)}
    return parts["rcc"] + lambda_v * parts["var"] + lambda_d * parts["ddc"], parts
