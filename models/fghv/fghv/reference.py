"""Autograd reference of the test-time verification: the same procedure as nets.Verifier, but
the latent gradients come from torch.autograd through the ordinary Generator modules, in float64.
The exported graph must agree with this (tests/test_nets.py, test/unit/fghv-equivalence)."""

import torch

from .nets import FGHV, TEST_TIME, fixed_latents, gaussian_kl, latent_step


def verify(model: FGHV, x: torch.Tensor, n: int = 16, steps: int = 8, step: float = TEST_TIME["step"], seed: int = 0,
           scale: float = 16.0, rule: str = TEST_TIME["step_rule"]):
    model.eval()
    with torch.no_grad():
        f = model.features(x).double()
    z0 = fixed_latents(n, model.k, seed).double()
    gens = {"real": model.rf, "attack": model.ka}
    params = {b: {k: v.double() for k, v in g.state_dict().items()} for b, g in gens.items()}
    z = {b: z0.unsqueeze(0).repeat(x.shape[0], 1, 1) for b in gens}
    cos0 = {}
    for t in range(steps + 1):
        grads = {}
        for b, gen in gens.items():
            zb = z[b].detach().requires_grad_(True)
            c = (_call(gen, params[b], zb) * f.unsqueeze(1)).sum(-1)
            if t == 0:
                cos0[b] = c.detach()
            if t < steps:
                # Each latent ascends its own cosine: the gradient of the sum, not of the mean.
                (grads[b],) = torch.autograd.grad(c.sum(), zb)
        if t == steps:
            break
        dr, da = latent_step(grads["real"], grads["attack"], step, rule, model.k)
        z = {"real": z["real"] + dr, "attack": z["attack"] + da}
    kl = {b: gaussian_kl(z[b]) for b in gens}
    cr, ca = cos0["real"], cos0["attack"]
    return {
        "p_real": torch.sigmoid(scale * (cr - ca)).mean(1),
        "var": cr.var(1, unbiased=False),
        "delta_kl": kl["real"] - kl["attack"],
        "kl_real": kl["real"],
        "kl_attack": kl["attack"],
    }


def _call(gen, params, z):
    """Run a Generator with float64 copies of its weights (torch 1.13 has no torch.func)."""
    from torch.nn.utils import stateless

    return stateless.functional_call(gen, params, (z,))
