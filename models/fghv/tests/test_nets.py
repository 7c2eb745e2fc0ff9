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
        for rule, step in (("joint", 0.05), ("joint", 0.1), ("plain", 0.1)):
            with torch.no_grad():
                got = Verifier(model, step=step, rule=rule)(x)
            ref = verify(model, x, step=step, rule=rule)
            for name, g in zip(("p_real", "var", "delta_kl", "kl_real", "kl_attack"), got):
                assert g.shape == (3,)
                assert torch.allclose(g.double(), ref[name], atol=1e-4, rtol=1e-4), (family, rule, name)


def test_test_time_update_moves_the_latents_and_delta_kl_depends_on_the_input():
    model = tiny_model()
    torch.manual_seed(2)
    x = torch.randn(6, 3, 64, 64)
    v = Verifier(model).eval()  # the default test-time settings
    with torch.no_grad():
        f = model.features(x)
        cr, ca, zr, za = v.tail(f)
        p_real, var, dkl, kl_r, kl_a = v.outputs(cr, ca, zr, za)
        move_r, move_a = v.displacement(zr, za)
    # both branches start from the same draws: with zero steps delta_kl would be exactly 0
    assert torch.equal(v.rf.z0, v.ka.z0)
    assert float(move_r.min()) > 0.05 and float(move_a.min()) > 0.05, (move_r, move_a)  # > 5 % of |z|
    assert float(dkl.max() - dkl.min()) > 1e-2, dkl  # not a constant of the seed
    assert float(var.max() - var.min()) > 0, var
    zero = verify(model, x, steps=0)
    assert torch.allclose(zero["delta_kl"], torch.zeros(6, dtype=torch.float64))


def test_a_collapsed_hypothesis_set_scores_a_worse_loss_than_a_spread_one():
    torch.manual_seed(3)
    b, n, d = 4, 8, 32
    f = l2n(torch.randn(b, d))
    live = torch.tensor([True, True, False, False])
    # DDC's optimum is a within-set similarity at the margin (0.9): a set spread to about that
    # level must beat a collapsed one (every g_i the same), which the old cap min(within, 0.9) tied.
    spread = l2n(f.unsqueeze(1) + 0.08 * torch.randn(b, n, d))
    collapsed = l2n(f.unsqueeze(1).expand(b, n, d) + 1e-4 * torch.randn(b, n, d))
    h = l2n(torch.randn(b, n, d))
    assert losses.within_similarity(collapsed) > 0.99 > losses.within_similarity(spread) > 0.7
    assert float(losses.ddc(collapsed, h)) > float(losses.ddc(spread, h))
    assert float(losses.ddc(spread, collapsed)) > float(losses.ddc(spread, h))  # the hinge applies to h too
    # a collapsed real generator gives attacks zero variance: the attack-side hinge charges it
    wide = l2n(torch.randn(b, n, d))
    spoof = torch.zeros(b, dtype=torch.bool)
    assert float(losses.var_constraint(f, collapsed, spoof)) > float(losses.var_constraint(f, wide, spoof))
    assert float(losses.total(f, collapsed, h, live)[0]) > float(losses.total(f, spread, h, live)[0])


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
    # an attack with zero variance pays lambda_a * margin
    assert abs(float(losses.var_constraint(f, g, spoof)) - 10.0 * 0.01) < 1e-6
    # cross 0; within g = 1 -> -1 + 2 * (1 - 0.9); within h = 0 -> no hinge
    assert abs(float(losses.ddc(g, h)) - (-1.0 + 2.0 * 0.1)) < 1e-6


def test_complexity_reports_macs_and_params():
    rows = {r["family"]: r for r in table(["lite"], [128])}
    assert rows["lite"]["backbone_params"] > 0
    m64, m128 = FGHV("lite", 64).backbone, FGHV("lite", 128).backbone
    assert count(m128, 128)["macs"] == 4 * count(m64, 64)["macs"]
