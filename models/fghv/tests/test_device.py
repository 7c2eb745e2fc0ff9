"""Every tensor of training and test-time verification lives on the model's device.

Without a GPU: the model is built on PyTorch's `meta` device and run under `SameDevice`, which
raises on any op that mixes devices (a tensor made on the CPU meeting the model's weights).
With a GPU (the test below it): a few training steps, a sweep, export, calibration and
evaluation on CUDA.
"""

import numpy as np
import pytest
import torch

from devicecheck import MixedDeviceError, SameDevice
from fghv import losses
from fghv.nets import FGHV, Baseline, Verifier

META = torch.device("meta")


def test_check_itself_catches_a_cpu_tensor_beside_a_meta_one():
    with pytest.raises(MixedDeviceError):
        with SameDevice():
            torch.zeros(3, device=META) + torch.zeros(3)
    with SameDevice():  # a CPU scalar beside a device tensor is allowed, as on CUDA
        torch.zeros(3, device=META) * torch.tensor(2.0)


@pytest.mark.parametrize("family,size", [("lite", 64), ("depthnet", 32)])
def test_training_step_keeps_every_tensor_on_the_model_device(family, size):
    model = FGHV(family, size, 0.25, gen_hidden=32).to(META)
    x = torch.zeros(4, 3, size, size, device=META)
    live = torch.tensor([True, False, True, False], device=META)
    with SameDevice():
        f, g, h = model(x, n=4)
        loss, parts = losses.total(f, g, h, live)  # (no backward: 1.13 has no conv backward on meta)
        losses.within_similarity(g)
    assert loss.device == META and all(p.device == META for p in parts.values())


def test_test_time_verification_on_the_model_device():
    """The seeded start latents, the precomputed first forward pass and the Where constants are
    made where the generators' weights are (failed here before: z0 was made on the CPU)."""
    model = FGHV("lite", 64, 0.25, gen_hidden=32).to(META).eval()
    with SameDevice(), torch.no_grad():
        v = Verifier(model, n=4, steps=2)
        outs = v(torch.zeros(2, 3, 64, 64, device=META))
        f = model.features(torch.zeros(2, 3, 64, 64, device=META))
        cr, ca, zr, za = v.tail(f)
        v.outputs(cr, ca, zr, za)
    assert all(o.device == META for o in outs)
    assert all(b.device == META for b in v.buffers())


def test_baseline_on_the_model_device():
    model = Baseline("lite", 64, 0.25).to(META)
    with SameDevice():
        out = model(torch.zeros(2, 3, 64, 64, device=META))
    assert out.device == META


def test_training_batches_are_made_on_the_requested_device(tmp_path):
    from fghv import data
    from fghv.train import CropCache, next_batch

    data.make_demo_data(str(tmp_path), 32, {"camA": 8}, seed=0)
    samples = data.scan(str(tmp_path))
    x, y = next_batch(data.BalancedBatches(samples, 4, 0), samples, CropCache(samples, 32), np.random.default_rng(0),
                      0.5, META)
    assert x.device == META and y.device == META


def test_a_loaded_checkpoint_is_on_the_requested_device(tmp_path):
    """sweep, evaluate and calibrate take the model from load_model and feed it batches on the
    device they were given (failed before: the weights stayed on the CPU)."""
    from fghv import data
    from fghv.train import CropCache, features, load_model, save_checkpoint

    for model in (FGHV("lite", 32, 0.25, gen_hidden=32), Baseline("lite", 32, 0.25)):
        save_checkpoint(tmp_path / "ck.pt", {"model": model.state_dict(), "config": model.config()})
        loaded, _ = load_model(str(tmp_path / "ck.pt"), META)
        assert all(p.device == META for p in loaded.parameters())
    data.make_demo_data(str(tmp_path / "d"), 32, {"camA": 4}, seed=0)
    samples = data.scan(str(tmp_path / "d"))
    loaded, _ = load_model(str(tmp_path / "ck.pt"), META)
    with SameDevice():
        assert features(loaded, samples, CropCache(samples, 32), META).device == META


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the meta-device tests above stand in")
def test_train_sweep_export_calibrate_on_cuda(tmp_path):
    from fghv import data
    from fghv.__main__ import main

    root = tmp_path / "data"
    data.make_demo_data(str(root), 64, {"camA": 24, "camB": 24}, seed=0)
    run = tmp_path / "run"
    main(["train", "--data", str(root), "--train-domains", "camA", "--val-domains", "camB", "--out", str(run),
          "--size", "64", "--width", "0.25", "--gen-hidden", "64", "--batch", "8", "--steps", "20", "--log-every", "10",
          "--val-every", "20", "--device", "cuda"])
    ck = str(run / "checkpoint.pt")
    main(["sweep", "--checkpoint", ck, "--data", str(root), "--domains", "camB", "--out", str(tmp_path / "sw.json"),
          "--device", "cuda"])
    main(["export", "--checkpoint", ck, "--out", str(tmp_path / "exp"), "--test-time", str(tmp_path / "sw.json")])
    main(["calibrate", "--checkpoint", ck, "--data", str(root), "--domains", "camB", "--device", "cuda",
          "--manifest", str(tmp_path / "exp" / "manifest.json"), "--out", str(tmp_path / "cal")])
    assert (tmp_path / "cal" / "report.json").exists()
