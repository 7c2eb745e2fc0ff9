"""Training: RCC + VAR + DDC on domain-balanced batches, seeded, resumable, atomic checkpoints."""

import io
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import data, losses, metrics, simulate
from .nets import FGHV, Verifier
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
def score(model: FGHV, samples, cache: CropCache, device, batch: int = 32, seed: int = 0) -> dict:
    """Test-time outputs (the exported procedure) for every sample."""
    v = Verifier(model, seed=seed).to(device).eval()
    model.eval()
    outs = {k: [] for k in ("p_real", "var", "delta_kl", "kl_real", "kl_attack")}
    for s in range(0, len(samples), batch):
        x = batch_tensor([cache[i] for i in range(s, min(s + batch, len(samples)))]).to(device)
        for k, t in zip(outs, v(x)):
            outs[k].append(t.cpu().numpy())
    res = {k: np.concatenate(v_).astype(float) for k, v_ in outs.items()}
    res["live"] = np.array([s.live for s in samples])
    res["attack"] = np.array([s.attack for s in samples])
    return res


def summarize(res: dict) -> dict:
    e, t = metrics.eer(res["p_real"], res["live"])
    iso = metrics.iso_metrics(res["p_real"] >= t, res["live"], res["attack"])
    return {
        "auc": metrics.auc(res["p_real"], res["live"]),
        "eer": e,
        "eer_threshold": t,
        "hter_at_eer_threshold": iso["hter"],
        "auc_neg_delta_kl": metrics.auc(-res["delta_kl"], res["live"]),
        "auc_neg_var": metrics.auc(-res["var"], res["live"]),
    }


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
    model = FGHV(args.family, args.size, args.width, gen_hidden=args.gen_hidden).to(device)
    gen_params = list(model.rf.parameters()) + list(model.ka.parameters())
    opt = torch.optim.Adam(
        [{"params": model.backbone.parameters(), "lr": args.lr_backbone}, {"params": gen_params, "lr": args.lr_gen}],
        weight_decay=args.weight_decay,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.steps))
    step, history = 0, []
    ckpt = out / "checkpoint.pt"
    batches = data.BalancedBatches(train_s, args.batch, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    if args.resume and ckpt.exists():
        st = torch.load(ckpt, map_location=device)
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
        idx = batches.next()
        crops, live = [], []
        for i in idx:
            crop, is_live = cache[int(i)], train_s[int(i)].live
            if is_live and rng.random() < args.simulate_p:  # simulator as an augmentation
                crop, is_live = simulate.simulate_attack(crop, str(rng.choice(["print", "replay"])), rng), False
            crops.append(data.augment_crop(crop, rng))
            live.append(is_live)
        x = batch_tensor(crops).to(device)
        y = torch.tensor(live, device=device)
        f, g, h = model(x, n=args.hypotheses)
        loss, parts = losses.total(f, g, h, y, args.lambda_v, args.lambda_d)
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
            if val_s and (step % args.val_every == 0 or step == args.steps):
                rec["val"] = {k: round(v, 4) for k, v in summarize(score(model, val_s, val_cache, device)).items()}
            history.append(rec)
            print(json.dumps(rec), flush=True)
        if step % args.save_every == 0 or step == args.steps:
            save_checkpoint(ckpt, {
                "model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(),
                "step": step, "history": history, "config": model.config(), "args": vars(args),
                "torch_rng": torch.get_rng_state(), "batch_rng": batches.rng.bit_generator.state,
                "aug_rng": rng.bit_generator.state,
            })
    return {"history": history, "checkpoint": str(ckpt), "seconds": time.time() - t0}


def load_model(path: str, device="cpu") -> tuple[FGHV, dict]:
    st = torch.load(path, map_location=device)
    c = st["config"]
    model = FGHV(c["family"], c["size"], c["width"], c["k"], c.get("gen_hidden", 512))
    model.load_state_dict(st["model"])
    return model.eval(), st
