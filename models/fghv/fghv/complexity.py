"""MACs and parameters per backbone family and input size (conv and linear layers counted)."""

import torch
from torch import nn

from .nets import FAMILIES, FGHV


def count(model: nn.Module, size: int) -> dict:
    macs = 0

    def hook(mod, inp, out):
        nonlocal macs
        if isinstance(mod, nn.Conv2d):
            macs += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            macs += out.numel() // out.shape[-1] * mod.in_features * mod.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in hs:
        h.remove()
    return {"macs": int(macs), "params": int(sum(p.numel() for p in model.parameters()))}


def table(families=None, sizes=None, width=None) -> list[dict]:
    rows = []
    for fam in families or list(FAMILIES):
        for size in sizes or [FAMILIES[fam]["size"]]:
            m = FGHV(fam, size, width)
            bb = count(m.backbone, size)
            gen = sum(p.numel() for p in list(m.rf.parameters()) + list(m.ka.parameters()))
            rows.append({"family": fam, "size": size, "width": m.width, "backbone_gmacs": round(bb["macs"] / 1e9, 4),
                         "backbone_params": bb["params"], "generator_params": gen})
    return rows
