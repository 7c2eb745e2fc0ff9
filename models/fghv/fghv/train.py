"""Training: RCC + VAR + DDC on domain-balanced batches, seeded, resumable, atomic checkpoints."""

import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import data, losses, metrics, simulate
from .nets import FGHV, Baseline, Verifier
from .preprocess import to_tensor


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def batch_tensor(crops: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack([to_tensor(c) for c in crops]))


class CropCache:
    def __init__(self, samples, size, enabled=True):
        self.samples, self.size, self.enabled, self.store = samples, size, enabled, {}

    def __getitem__(self, i):
        if i not in self.store:
            crop = data.load_crop(self.samples[i], self.size)
            if not self.enabled:
                return crop
            self.store[i] = crop
        return self.store[i]


@torch.no_grad()
def features(model, samples, cache: CropCache, device, batch: int = 32) -> torch.Tensor:
    """Unit features of every sample (FGHV) or the baseline's logits."""
    model.eval()
    out = []
    for s in range(0, len(samples), batch):
        x = batch_tensor([cache[i] for i in range(s, min(s + batch, len(samples)))]).to(device)
        out.append(model(x) if isinstance(model, Baseline) else model.features(x))
    return torch.cat(out)


@torch.no_grad()
def score_features(model: FGHV, f: torch.Tensor, tt: dict | None = None, batch: int = 64) -> dict:
    """Test-time outputs (the exported procedure) from unit features, plus the median latent
    displacement |z - z0| / |z0| of each branch."""
    v = Verifier.from_config(model, tt or {}).to(f.device).eval()
    keys = ("p_real", "var", "delta_kl", "kl_real", "kl_attack", "move_real", "move_attack")
    outs = {k: [] for k in keys}
    for s in range(0, len(f), batch):
        cr, ca, zr, za = v.tail(f[s:s + batch])
        for k, t in zip(keys, (*v.outputs(cr, ca, zr, za), *v.displacement(zr, za))):
            outs[k].append(t.cpu().numpy())
    return {k: np.concatenate(v_).astype(float) for k, v_ in outs.items()}


def labels(res: dict, samples) -> dict:
    res["live"] = np.array([s.live for s in samples])
    res["attack"] = np.array([s.attack for s in samples])
    return res


@torch.no_grad()
def score(model, samples, cache: CropCache, device, batch: int = 32, tt: dict | None = None) -> dict:
    """Test-time outputs for every sample; for the baseline, p_real = sigmoid(logit)."""
    f = features(model, samples, cache, device, batch)
    if isinstance(model, Baseline):
        return labels({"p_real": torch.sigmoid(f).cpu().numpy().astype(float)}, samples)
    return labels(score_features(model, f, tt), samples)


def summarize(res: dict) -> dict:
    e, t = metrics.eer(res["p_real"], res["live"])
    iso = metrics.iso_metrics(res["p_real"] >= t, res["live"], res["attack"])
    out = {"auc": metrics.auc(res["p_real"], res["live"]), "eer": e, "eer_threshold": t, "hter_at_eer_threshold": iso["hter"]}
    if "var" in res:
        out.update({
            "auc_neg_delta_kl": metrics.auc(-res["delta_kl"], res["live"]),
            "auc_neg_var": metrics.auc(-res["var"], res["live"]),
            "median_move_real": float(np.median(res["move_real"])),
            "median_move_attack": float(np.median(res["move_attack"])),
        })
    return out


def loss_config(args) -> dict:
    """The loss hyper-parameters of a run (recorded in the checkpoint and the manifest)."""
    return {"rcc_scale": 16.0, "lambda_v": args.lambda_v, "lambda_d": args.lambda_d, "var_margin": args.var_margin,
            "lambda_a": args.lambda_a, "ddc_margin": args.ddc_margin, "ddc_weight": args.ddc_weight}


def test_time_config(args) -> dict:
    from .nets import TEST_TIME

    return {**TEST_TIME, "step": args.tt_step, "step_rule": args.tt_rule}


def next_batch(batches, samples, cache, rng, simulate_p: float, device):
    """One domain-balanced, augmented training batch (x, live)."""
    crops, live = [], []
    for i in batches.next():
        crop, is_live = cache[int(i)], samples[int(i)].live
        if is_live and rng.random() < simulate_p:  # simulator as an augmentation
            crop, is_live = simulate.simulate_attack(crop, str(rng.choice(["print", "replay"])), rng), False
        crops.append(data.augment_crop(crop, rng))
        live.append(is_live)
    return batch_tensor(crops).to(device), torch.tensor(live, device=device)


def load_checkpoint(path, device="cpu") -> dict:
    """torch.load of our own checkpoints with tensors mapped to `device`. On PyTorch 2.x with
    weights_only=True (2.6 and later default to it): a checkpoint holds tensors, numbers, strings
    and the numpy generators' state as plain dicts, nothing that needs pickle's code execution.
    Debian's 1.13 has the flag but its restricted unpickler rejects plain floats (opcode 71), so
    there the file is loaded the old way."""
    if int(torch.__version__.split(".")[0]) >= 2:
        return torch.load(path, map_location=device, weights_only=True)
    return torch.load(path, map_location=device)


def save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    data.atomic_write(str(path), buf.getvalue())


def train(args) -> dict:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_s = data.scan(args.data, args.train_domains)
    val_s = data.scan(args.val_data or args.data, args.val_domains) if args.val_domains else []
    ce = getattr(args, "objective", "fghv") == "ce"
    if ce:
        model = Baseline(args.family, args.size, args.width).to(device)
        groups = [{"params": model.backbone.parameters(), "lr": args.lr_backbone, "weight_decay": args.weight_decay},
                  {"params": model.head.parameters(), "lr": args.lr_gen, "weight_decay": 0.0}]
    else:
        model = FGHV(args.family, args.size, args.width, gen_hidden=args.gen_hidden).to(device)
        gen_params = list(model.rf.parameters()) + list(model.ka.parameters())
        # Decoupled weight decay on the backbone only: decay on the generators shrinks their first
        # layer, the only path from z, and helps them collapse (method doc section 3).
        groups = [{"params": model.backbone.parameters(), "lr": args.lr_backbone, "weight_decay": args.weight_decay},
                  {"params": gen_params, "lr": args.lr_gen, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups)
    lcfg, tt = loss_config(args), test_time_config(args)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.steps))
    step, history = 0, []
    ckpt = out / "checkpoint.pt"
    batches = data.BalancedBatches(train_s, args.batch, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    if args.resume and ckpt.exists():
        st = load_checkpoint(ckpt, device)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optim"])
        sched.load_state_dict(st["sched"])
        step, history = st["step"], st["history"]
        torch.set_rng_state(st["torch_rng"])
        batches.rng.bit_generator.state = st["batch_rng"]
        rng.bit_generator.state = st["aug_rng"]
        print(f"resumed from {ckpt} at step {step}", flush=True)
    cache = CropCache(train_s, model.size, enabled=len(train_s) <= args.cache_limit)
    val_cache = CropCache(val_s, model.size, enabled=len(val_s) <= args.cache_limit)
    info = {"train": len(train_s), "val": len(val_s), "device": str(device), **model.config()}
    print(json.dumps(info), flush=True)
    t0, run = time.time(), {}
    while step < args.steps:
        model.train()
        x, y = next_batch(batches, train_s, cache, rng, args.simulate_p, device)
        if ce:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y.float())
            parts = {}
        else:
            f, g, h = model(x, n=args.hypotheses)
            loss, parts = losses.total(f, g, h, y, lcfg["lambda_v"], lcfg["lambda_d"], lcfg["rcc_scale"],
                                       lcfg["var_margin"], lcfg["lambda_a"], lcfg["ddc_margin"], lcfg["ddc_weight"])
            with torch.no_grad():  # collapse monitor: mean pairwise cosine of each branch's hypotheses
                parts = {**parts, "cos_gg": losses.within_similarity(g), "cos_hh": losses.within_similarity(h)}
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        for k, v in {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}.items():
            run[k] = run.get(k, 0.0) + v
        if step % args.log_every == 0 or step == args.steps:
            n = args.log_every if step % args.log_every == 0 else step % args.log_every
            rec = {"step": step, **{k: round(v / n, 5) for k, v in run.items()}, "s": round(time.time() - t0, 1)}
            run = {}
            if not ce:  # latent displacement of the test-time update on this batch, per branch
                model.eval()
                with torch.no_grad():
                    mv = score_features(model, f.detach(), tt)
                rec["move_real"], rec["move_attack"] = round(float(np.median(mv["move_real"])), 4), round(float(np.median(mv["move_attack"])), 4)
            if val_s and (step % args.val_every == 0 or step == args.steps):
                rec["val"] = {k: round(v, 4) for k, v in summarize(score(model, val_s, val_cache, device, tt=tt)).items()}
            history.append(rec)
            print(json.dumps(rec), flush=True)
        if step % args.save_every == 0 or step == args.steps:
            save_checkpoint(ckpt, {
                "model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(),
                "step": step, "history": history, "config": model.config(), "args": vars(args),
                "losses": None if ce else lcfg, "test_time": tt,
                "torch_rng": torch.get_rng_state(), "batch_rng": batches.rng.bit_generator.state,
                "aug_rng": rng.bit_generator.state,
            })
    return {"history": history, "checkpoint": str(ckpt), "seconds": time.time() - t0}


def load_model(path: str, device="cpu") -> tuple[FGHV, dict]:
    st = load_checkpoint(path, device)
    c = st["config"]
    if c.get("objective") == "ce":
        model = Baseline(c["family"], c["size"], c["width"])
    else:
        model = FGHV(c["family"], c["size"], c["width"], c["k"], c.get("gen_hidden", 512))
    model.load_state_dict(st["model"])
    return model.eval(), st
