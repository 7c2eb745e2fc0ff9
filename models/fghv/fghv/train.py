"""Training: RCC + VAR + DDC on domain-balanced batches, seeded, resumable, atomic checkpoints."""

import io
import json
import subprocess
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from . import data, losses, metrics, simulate
from .nets import FGHV, Baseline, Verifier, l2n
from .preprocess import normalize_batch, to_tensor


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


def batch_crops(batches, samples, cache, rng, simulate_p: float) -> tuple[np.ndarray, np.ndarray]:
    """One domain-balanced, augmented training batch as uint8 BGR crops [B,S,S,3] and live [B]."""
    crops, live = [], []
    for i in batches.next():
        crop, is_live = cache[int(i)], samples[int(i)].live
        if is_live and rng.random() < simulate_p:  # simulator as an augmentation
            crop, is_live = simulate.simulate_attack(crop, str(rng.choice(["print", "replay"])), rng), False
        crops.append(data.augment_crop(crop, rng))
        live.append(is_live)
    return np.stack(crops), np.array(live)


def next_batch(batches, samples, cache, rng, simulate_p: float, device):
    """One training batch (x, live) on `device`, made in this process."""
    crops, live = batch_crops(batches, samples, cache, rng, simulate_p)
    return normalize_batch(torch.from_numpy(crops).to(device)), torch.from_numpy(live).to(device)


class BatchStream(torch.utils.data.IterableDataset):
    """Training batches made in DataLoader worker processes (--workers N): each worker draws its
    own domain-balanced batches and augmentations from generators seeded with (seed, start step,
    worker), and keeps its own crop cache. Yields uint8 crops, so pinned host memory and the copy
    to the GPU carry a quarter of the bytes; the GPU normalises them (normalize_batch)."""

    def __init__(self, samples, size, batch, seed, start, simulate_p, cache_limit):
        super().__init__()
        self.samples, self.size, self.batch, self.seed, self.start = samples, size, batch, seed, start
        self.simulate_p, self.cache_limit = simulate_p, cache_limit

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        batches = data.BalancedBatches(self.samples, self.batch, [self.seed, self.start, wid])
        rng = np.random.default_rng([self.seed + 1, self.start, wid])
        cache = CropCache(self.samples, self.size, enabled=len(self.samples) <= self.cache_limit)
        while True:
            crops, live = batch_crops(batches, self.samples, cache, rng, self.simulate_p)
            yield torch.from_numpy(crops), torch.from_numpy(live)


def batch_source(args, train_s, size, device, batches, cache, rng, start: int):
    """Iterator of (x, live) on `device`: in-process (workers 0, exactly resumable) or from a
    DataLoader with worker processes and pinned memory."""
    workers = getattr(args, "workers", 0)
    if not workers:
        while True:
            yield next_batch(batches, train_s, cache, rng, args.simulate_p, device)
    pin = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        BatchStream(train_s, size, args.batch, args.seed, start, args.simulate_p, args.cache_limit),
        batch_size=None, num_workers=workers, pin_memory=pin, prefetch_factor=4, persistent_workers=True)
    for crops, live in loader:
        yield normalize_batch(crops.to(device, non_blocking=pin)), live.to(device, non_blocking=pin)


def use_bf16(device: torch.device, mode: str = "auto") -> bool:
    """bf16 autocast of the backbone: on CUDA devices that have bf16 (Ampere and later), unless off."""
    if mode == "off" or device.type != "cuda":
        return False
    return bool(torch.cuda.is_bf16_supported())


def gpu_util(device: torch.device):
    """GPU utilisation in percent over the driver's last sample period, or None when unknown."""
    if device.type != "cuda":
        return None
    try:
        return int(torch.cuda.utilization(device))
    except Exception:  # needs pynvml; fall back to nvidia-smi
        try:
            idx = device.index if device.index is not None else torch.cuda.current_device()
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i",
                                  str(idx)], capture_output=True, text=True, timeout=5)
            return int(out.stdout.strip().splitlines()[0])
        except Exception:
            return None


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


def train(args, train_s=None, val_s=None) -> dict:
    """Train on args.data/args.train_domains (or the given sample lists; the protocol command
    passes the splits of imported datasets)."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if train_s is None:
        train_s = data.scan(args.data, args.train_domains)
    if val_s is None:
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
        if device.type == "cuda" and st.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(st["cuda_rng"].cpu(), device)
        batches.rng.bit_generator.state = st["batch_rng"]
        rng.bit_generator.state = st["aug_rng"]
        print(f"resumed from {ckpt} at step {step}", flush=True)
    cache = CropCache(train_s, model.size, enabled=len(train_s) <= args.cache_limit)
    val_cache = CropCache(val_s, model.size, enabled=len(val_s) <= args.cache_limit)
    amp = use_bf16(device, getattr(args, "bf16", "auto"))
    info = {"train": len(train_s), "val": len(val_s), "device": str(device), "bf16": amp,
            "workers": getattr(args, "workers", 0), **model.config()}
    print(json.dumps(info), flush=True)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext
    source = batch_source(args, train_s, model.size, device, batches, cache, rng, step)
    t0, run, t_log, s_log = time.time(), {}, time.time(), step
    while step < args.steps:
        model.train()
        x, y = next(source)
        with autocast():  # mixed precision on the backbone only; heads, generators and losses in fp32
            feat = model.backbone(x)
        if ce:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model.head(feat.float()).squeeze(-1), y.float())
            parts = {}
        else:
            f = l2n(feat.float())
            g, h = model.hypotheses(x.shape[0], args.hypotheses, device)
            loss, parts = losses.total(f, g, h, y, lcfg["lambda_v"], lcfg["lambda_d"], lcfg["rcc_scale"],
                                       lcfg["var_margin"], lcfg["lambda_a"], lcfg["ddc_margin"], lcfg["ddc_weight"])
            with torch.no_grad():  # collapse monitor: mean pairwise cosine of each branch's hypotheses
                parts = {**parts, "cos_gg": losses.within_similarity(g), "cos_hh": losses.within_similarity(h)}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        # running sums stay on the device: no host sync per step, one at each log line
        for k, v in {"loss": loss, **parts}.items():
            run[k] = run[k] + v.detach() if k in run else v.detach().clone()
        if step % args.log_every == 0 or step == args.steps:
            n = args.log_every if step % args.log_every == 0 else step % args.log_every
            sums = torch.stack(list(run.values())).float().cpu().tolist()  # the one sync of this interval
            now = time.time()
            rec = {"step": step, **{k: round(v / n, 5) for k, v in zip(run, sums)}, "s": round(now - t0, 1),
                   "steps_per_s": round((step - s_log) / max(now - t_log, 1e-9), 2), "gpu_util": gpu_util(device)}
            t_log, s_log = now, step
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
            t_log = time.time()  # validation and the displacement check are not training time
        if step % args.save_every == 0 or step == args.steps:
            save_checkpoint(ckpt, {
                "model": model.state_dict(), "optim": opt.state_dict(), "sched": sched.state_dict(),
                "step": step, "history": history, "config": model.config(), "args": vars(args),
                "losses": None if ce else lcfg, "test_time": tt,
                "torch_rng": torch.get_rng_state(), "batch_rng": batches.rng.bit_generator.state,
                "aug_rng": rng.bit_generator.state,
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            })
    return {"history": history, "checkpoint": str(ckpt), "seconds": time.time() - t0}


def load_model(path: str, device="cpu") -> tuple[FGHV, dict]:
    st = load_checkpoint(path, "cpu")
    c = st["config"]
    if c.get("objective") == "ce":
        model = Baseline(c["family"], c["size"], c["width"])
    else:
        model = FGHV(c["family"], c["size"], c["width"], c["k"], c.get("gen_hidden", 512))
    model.load_state_dict(st["model"])
    return model.to(device).eval(), st  # on `device`: sweep and evaluate feed it tensors there
