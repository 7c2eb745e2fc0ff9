"""FGHV networks: backbones (FEB), the two feature generation networks, and the test-time
verification written with explicit operators so it exports to one ONNX graph.

Shapes: x [B,3,S,S] -> f [B,512] (unit length); latents z [B,N,k] -> hypotheses [B,N,512].
"""

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 512
LATENT_DIM = 64
LRELU_SLOPE = 0.2
NORM_EPS = 1e-12
KL_EPS = 1e-6

# family -> default input size and width. "depthnet" is the paper-era backbone (~47 GMACs at
# 256 px); "lite" is a plain-conv light family for edge CPUs and small Jetsons.
FAMILIES = {"depthnet": {"size": 256, "width": 1.0}, "lite": {"size": 128, "width": 1.0}}


def l2n(x: torch.Tensor) -> torch.Tensor:
    """L2 normalisation along the last axis, written with ops TensorRT and ONNX both have."""
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + NORM_EPS)


def _ch(c: int, width: float) -> int:
    return max(8, int(round(c * width / 8.0)) * 8)


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class DepthNet(nn.Module):
    """Paper-era backbone: conv 64, three blocks (128-196-128 + max-pool) whose outputs are pooled
    to size/8 and concatenated, then an embedder conv 128-256-512 with pooling and GAP."""

    def __init__(self, size: int = 256, width: float = 1.0):
        super().__init__()
        if size % 32:
            raise ValueError("depthnet input size must be a multiple of 32")
        c64, c128, c196 = _ch(64, width), _ch(128, width), _ch(196, width)
        self.stem = conv_bn(3, c64)
        self.blocks = nn.ModuleList()
        cin = c64
        for _ in range(3):
            self.blocks.append(nn.Sequential(conv_bn(cin, c128), conv_bn(c128, c196), conv_bn(c196, c128), nn.MaxPool2d(2)))
            cin = c128
        self.pool_to = size // 8
        self.size = size
        self.embed = nn.Sequential(
            conv_bn(3 * c128, _ch(128, width)),
            nn.MaxPool2d(2),
            conv_bn(_ch(128, width), _ch(256, width)),
            nn.MaxPool2d(2),
            conv_bn(_ch(256, width), FEATURE_DIM),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        outs = []
        res = self.size
        for block in self.blocks:
            x = block(x)
            res //= 2
            k = res // self.pool_to
            outs.append(F.avg_pool2d(x, k) if k > 1 else x)
        y = self.embed(torch.cat(outs, 1))
        return y.mean((2, 3))


class LiteNet(nn.Module):
    """Light edge family: plain 3x3 conv-BN-ReLU layers, stride 2 every other layer, residual where
    shapes match. Plain convs rather than depthwise ones: PyTorch trains depthwise layers slowly
    on CPU, and TensorRT and ONNX Runtime run dense 3x3 convs well at these widths."""

    CFG = [(32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1)]

    def __init__(self, size: int = 128, width: float = 1.0):
        super().__init__()
        cin = _ch(16, width)
        self.stem = conv_bn(3, cin, stride=2)
        self.layers = nn.ModuleList()
        self.residual = []
        for c, s in self.CFG:
            cout = _ch(c, width)
            self.layers.append(conv_bn(cin, cout, s))
            self.residual.append(s == 1 and cin == cout)
            cin = cout
        self.head = conv_bn(cin, FEATURE_DIM, k=1)
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer, res in zip(self.layers, self.residual):
            x = x + layer(x) if res else layer(x)
        return self.head(x).mean((2, 3))


def make_backbone(family: str, size: int | None = None, width: float | None = None) -> nn.Module:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    d = FAMILIES[family]
    size, width = size or d["size"], width or d["width"]
    return DepthNet(size, width) if family == "depthnet" else LiteNet(size, width)


class Generator(nn.Module):
    """Feature generation network: z (k) -> hidden -> hidden -> 512, LeakyReLU(0.2), unit output.
    hidden is 512 per the method doc; the demo model uses 256 to keep its file small."""

    def __init__(self, k: int = LATENT_DIM, dim: int = FEATURE_DIM, hidden: int = FEATURE_DIM):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(k, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a1 = F.leaky_relu(self.fc1(z), LRELU_SLOPE)
        a2 = F.leaky_relu(self.fc2(a1), LRELU_SLOPE)
        return l2n(self.fc3(a2))


class FGHV(nn.Module):
    def __init__(
        self, family: str = "lite", size: int | None = None, width: float | None = None, k: int = LATENT_DIM,
        gen_hidden: int = FEATURE_DIM,
    ):
        super().__init__()
        self.gen_hidden = gen_hidden
        self.family = family
        self.size = size or FAMILIES[family]["size"]
        self.width = width or FAMILIES[family]["width"]
        self.k = k
        self.backbone = make_backbone(family, self.size, self.width)
        self.rf = Generator(k, hidden=gen_hidden)  # real-face hypotheses g_i
        self.ka = Generator(k, hidden=gen_hidden)  # known-attack hypotheses h_i

    def config(self) -> dict:
        return {"family": self.family, "size": self.size, "width": self.width, "k": self.k, "gen_hidden": self.gen_hidden}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return l2n(self.backbone(x))

    def hypotheses(self, b: int, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """n freshly sampled hypotheses per sample and branch, [B,N,512] each."""
        g = self.rf(torch.randn(b, n, self.k, device=device))
        h = self.ka(torch.randn(b, n, self.k, device=device))
        return g, h

    def forward(self, x: torch.Tensor, n: int = 8):
        """Training forward: features and n freshly sampled hypotheses per sample and branch."""
        f = self.features(x)
        return (f, *self.hypotheses(x.shape[0], n, x.device))


class Baseline(nn.Module):
    """Plain binary classifier on the same backbone (cross-entropy), the ablation's baseline:
    backbone -> GAP feature -> one linear logit (live)."""

    def __init__(self, family: str = "lite", size: int | None = None, width: float | None = None):
        super().__init__()
        self.family = family
        self.size = size or FAMILIES[family]["size"]
        self.width = width or FAMILIES[family]["width"]
        self.backbone = make_backbone(family, self.size, self.width)
        self.head = nn.Linear(FEATURE_DIM, 1)

    def config(self) -> dict:
        return {"family": self.family, "size": self.size, "width": self.width, "objective": "ce"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)).squeeze(-1)


def fixed_latents(n: int, k: int, seed: int) -> torch.Tensor:
    """The seeded start latents stored as graph constants, shared by both branches: with the
    same start, delta_kl measures how far each branch had to move, not a seed offset."""
    return torch.randn(n, k, generator=torch.Generator().manual_seed(seed))


class ExplicitGenerator(nn.Module):
    """A frozen Generator with its input gradient written out in plain ops (MatMul, Add, Mul,
    Where/Greater, ReduceSum, Sqrt, Div, Transpose), so the test-time latent optimisation exports.
    Weights are stored once, as [in, out]; the backward pass transposes the small activations."""

    def __init__(self, g: Generator, z0: torch.Tensor):
        super().__init__()
        for i, fc in enumerate((g.fc1, g.fc2, g.fc3), 1):
            self.register_buffer(f"w{i}t", fc.weight.detach().t().contiguous())
            self.register_buffer(f"b{i}", fc.bias.detach().clone())
        dev = g.fc1.weight.device
        self.register_buffer("one", torch.tensor(1.0, device=dev))
        self.register_buffer("lrelu_slope", torch.tensor(LRELU_SLOPE, device=dev))
        # The first step's forward pass does not depend on the image: precompute it, so the
        # graph carries its result instead of a MatMul on constants.
        with torch.no_grad():
            self.register_buffer("z0", z0.clone())
            for name, t in zip(("h1_0", "h2_0", "h3_0"), self._forward(z0)):
                self.register_buffer(name, t)

    @staticmethod
    def _lrelu(h):
        return torch.where(h > 0, h, h * LRELU_SLOPE)

    def _slope(self, h):
        # Scalar constants broadcast in Where: full-size ones/slope tensors would be folded
        # into large constants, one per unrolled step.
        return torch.where(h > 0, self.one, self.lrelu_slope)

    def _forward(self, z):
        h1 = z @ self.w1t + self.b1
        h2 = self._lrelu(h1) @ self.w2t + self.b2
        h3 = self._lrelu(h2) @ self.w3t + self.b3
        return h1, h2, h3

    @staticmethod
    def _back(d, wt):
        """d @ W for W = wt^T, computed as (wt @ d^T)^T so only one copy of W is stored."""
        return (wt @ d.transpose(-1, -2)).transpose(-1, -2)

    def forward_with_grad(self, z: torch.Tensor | None, f: torch.Tensor):
        """Cosines c_i = c(f, G(z_i)) and dc_i/dz_i. f: [B,D] unit; z: [B,N,k], None for z0."""
        h1, h2, h3 = (self.h1_0, self.h2_0, self.h3_0) if z is None else self._forward(z)
        n3 = torch.sqrt((h3 * h3).sum(-1, keepdim=True) + NORM_EPS)
        u = h3 / n3
        fb = f.unsqueeze(1)  # [B,1,D]
        c = (u * fb).sum(-1)  # [B,N]
        dh3 = (fb - c.unsqueeze(-1) * u) / n3  # d(f.h/|h|)/dh
        dh2 = self._back(dh3, self.w3t) * self._slope(h2)
        dh1 = self._back(dh2, self.w2t) * self._slope(h1)
        return c, self._back(dh1, self.w1t)


def gaussian_kl(z: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) of a diagonal Gaussian fitted to z [B,N,k] -> [B]."""
    mu = z.mean(1, keepdim=True)
    d = z - mu
    var = (d * d).mean(1)
    mu = mu.squeeze(1)
    return 0.5 * (var + mu * mu - 1.0 - torch.log(var + KL_EPS)).sum(-1)


STEP_RULES = ("joint", "plain")
# Test-time defaults; the exported manifest records the values used (chosen by a sweep, see
# ablation.py and models/fghv/EXPERIMENTS.md).
TEST_TIME = {"hypotheses": 16, "steps": 8, "step": 0.05, "step_rule": "joint", "latent_seed": 0, "rcc_scale": 16.0}


def latent_step(gr: torch.Tensor, ga: torch.Tensor, step: float, rule: str, k: int):
    """Latent update of both branches from their cosine gradients [B,N,k].
    joint: per sample, one scale for both branches, z += step * sqrt(k) * grad / rms(grad over
    both branches), so the step does not depend on the model's gradient scale and the branch
    with the larger gradient moves further. plain: z += step * grad (the first version)."""
    if rule == "plain":
        return step * gr, step * ga
    if rule != "joint":
        raise ValueError(f"unknown step rule {rule!r}; valid: {', '.join(STEP_RULES)}")
    n = gr.shape[1] * gr.shape[2] * 2
    ms = ((gr * gr).sum(-1, keepdim=True).sum(-2, keepdim=True) + (ga * ga).sum(-1, keepdim=True).sum(-2, keepdim=True)) / n
    s = (step * k**0.5) / torch.sqrt(ms + NORM_EPS)
    return s * gr, s * ga


class Verifier(nn.Module):
    """Backbone + the whole test-time verification; outputs (p_real, var, delta_kl, kl_real,
    kl_attack), each [B]. Both branches start from the same seeded latents and ascend
    sum_i c(f, G(z_i)) for `steps` steps with `latent_step`; generator weights frozen."""

    def __init__(self, model: FGHV, n: int = 16, steps: int = 8, step: float = 0.05, seed: int = 0,
                 scale: float = 16.0, rule: str = "joint"):
        super().__init__()
        if rule not in STEP_RULES:
            raise ValueError(f"unknown step rule {rule!r}; valid: {', '.join(STEP_RULES)}")
        self.backbone = model.backbone
        # drawn on the CPU (the same numbers on every device), then moved to the generators' device
        z0 = fixed_latents(n, model.k, seed).to(model.rf.fc1.weight.device)
        self.rf, self.ka = ExplicitGenerator(model.rf, z0), ExplicitGenerator(model.ka, z0)
        self.steps, self.step, self.scale, self.rule, self.k = steps, step, scale, rule, model.k

    @classmethod
    def from_config(cls, model: FGHV, tt: dict) -> "Verifier":
        t = {**TEST_TIME, **tt}
        return cls(model, t["hypotheses"], t["steps"], t["step"], t["latent_seed"], t["rcc_scale"],
                   t.get("step_rule", "plain"))

    def tail(self, f: torch.Tensor):
        """The verification on unit features f [B,D]: initial cosines of both branches and the
        optimised latents (c_real0, c_attack0, z_real, z_attack)."""
        cr, gr = self.rf.forward_with_grad(None, f)
        ca, ga = self.ka.forward_with_grad(None, f)
        dr, da = latent_step(gr, ga, self.step, self.rule, self.k)
        zr, za = self.rf.z0 + dr, self.ka.z0 + da
        for _ in range(self.steps - 1):
            _, gr = self.rf.forward_with_grad(zr, f)
            _, ga = self.ka.forward_with_grad(za, f)
            dr, da = latent_step(gr, ga, self.step, self.rule, self.k)
            zr, za = zr + dr, za + da
        return cr, ca, zr, za

    def outputs(self, cr, ca, zr, za):
        p_real = torch.sigmoid(self.scale * (cr - ca)).mean(1)
        d = cr - cr.mean(1, keepdim=True)
        var = (d * d).mean(1)
        kl_r, kl_a = gaussian_kl(zr), gaussian_kl(za)
        return p_real, var, kl_r - kl_a, kl_r, kl_a

    def forward(self, x: torch.Tensor):
        return self.outputs(*self.tail(l2n(self.backbone(x))))

    def displacement(self, zr: torch.Tensor, za: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Median over hypotheses of |z - z0| / |z0| per sample and branch -> ([B], [B])."""
        z0n = self.rf.z0.norm(dim=-1)
        return ((zr - self.rf.z0).norm(dim=-1) / z0n).median(1).values, ((za - self.ka.z0).norm(dim=-1) / z0n).median(1).values
