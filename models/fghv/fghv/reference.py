"""Autograd reference of the test-time verification: the same procedure as nets.Verifier, but
the latent gradients come from torch.autograd through the ordinary Generator modules. The
exported graph must agree with this (tests/test_export.py and test/unit/fghv-equivalence)."""

import torch

from .nets import FGHV, fixed_latents, gaussian_kl


def verify(model: FGHV, x: torch.Tensor, n: int = 16, steps: int = 8, step: float = 0.1, seed: int = 0, scale: float = 16.0):
    model.eval()
    with torch.no_grad():
        f = model.features(x)
    zr0, za0 = fixed_latents(n, model.k, seed)
    out = {}
    cos0 = {}
    for name, gen, z0 in (("real", model.rf, zr0), ("attack", model.ka, za0)):
        z = z0.unsqueeze(0).repeat(x.shape[0], 1, 1).double().requires_grad_(True)
        g64 = {k: v.double() for k, v in gen.state_dict().items()}
        for t in range(steps + 1):
            hyp = _call(gen, g64, z)
            c = (hyp * f.double().unsqueeze(1)).sum(-1)
            if t == 0:
                cos0[name] = c.detach()
            if t == steps:
                break
            # Each latent ascends its own cosine: the gradient of the sum, not of the mean.
            (grad,) = torch.autograd.grad(c.sum(), z)
            z = (z + step * grad).detach().requires_grad_(True)
        out[name] = gaussian_kl(z.detach())
    cr, ca = cos0["real"], cos0["attack"]
    p_real = torch.sigmoid(scale * (cr - ca)).mean(1)
    var = cr.var(1, unbiased=False)
    return {
        "p_real": p_real,
        "var": var,
        "delta_kl": out["real"] - out["attack"],
        "kl_real": out["real"],
        "kl_attack": out["attack"],
    }


def _call(gen, params, z):
    """Run a Generator with float64 copies of its weights (torch 1.13 has no torch.func)."""
    from torch.nn.utils import stateless

    return stateless.functional_call(gen, params, (z,))
