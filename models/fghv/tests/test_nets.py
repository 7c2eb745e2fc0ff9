import torch

from fghv import losses
from fghv.complexity import count, table
from fghv.nets import FGHV, Verifier, gaussian_kl, l2n
from fghv.reference import verify
from fghv.vectors import tiny_model


def test_explicit_test_time_gradient_matches_autograd():
    torch.manual_seed(1)
    for family, size in (("lite", 64), ("depthnet", 32)):
        model = FGHV(family, size, 0.25, gen_hidden=64).eval()
        x = torch.randn(3, 3, size, size)
        with torch.no_grad():
            got = Verifier(model)(x)
        ref = verify(model, x)
        for name, g in zip(("p_real", "var", "delta_kl", "kl_real", "kl_attack"), got):
            assert g.shape == (3,)
            assert torch.allclose(g.double(), ref[name], atol=1e-5, rtol=1e-5), name


def test_latents_move_more_for_the_branch_that_explains_f_worse():
    model = tiny_model()
    x = torch.randn(1, 3, 64, 64)
    ref = verify(model, x, steps=0)  # no steps: KL of the fixed draws only
    moved = verify(model, x, steps=8)
    assert not torch.allclose(ref["kl_real"], moved["kl_real"])


def test_gaussian_kl_is_zero_for_standard_normal_moments():
    z = torch.tensor([[[1.0, -1.0], [-1.0, 1.0]]])  # mean 0, variance 1 per dimension
    assert abs(float(gaussian_kl(z)) - 0.5 * 2 * (1 - 1 - torch.log(torch.tensor(1 + 1e-6)))) < 1e-6


def test_losses_on_fixed_vectors():
    f = l2n(torch.tensor([[1.0, 0.0, 0.0]]))
    g = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    h = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    live, spoof = torch.tensor([True]), torch.tensor([False])
    assert losses.rcc(f, g, h, live) < 1e-6 < losses.rcc(f, g, h, spoof)
    assert float(losses.var_constraint(f, g, live)) == 0.0
    # cross-set correlation 0, within-set correlation 1 capped at the 0.9 margin
    assert abs(float(losses.ddc(g, h)) + 0.9) < 1e-6


def test_complexity_reports_macs_and_params():
    rows = {r["family"]: r for r in table(["lite"], [128])}
    assert rows["lite"]["backbone_params"] > 0
    m64, m128 = FGHV("lite", 64).backbone, FGHV("lite", 128).backbone
    assert count(m128, 128)["macs"] == 4 * count(m64, 64)["macs"]
