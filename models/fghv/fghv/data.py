"""Datasets in the documented layout, domain-balanced batches, and the demo data generator.

Layout: ROOT/<domain>/<live|spoof>/<video-or-subject>/<frame>.{jpg,png}. Frames are either
aligned crops already (any square size; resized to the model size) or raw frames with a
`landmarks.json` in their folder ({"<frame file>": [[x,y] x5], ...}), aligned here with the
daemon's code. The attack type of a spoof video is its folder name up to the first "_"
(e.g. spoof/print_0003 -> "print"), used for APCER per attack type.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import preprocess, simulate

EXTS = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass
class Sample:
    path: str
    domain: str
    live: bool
    attack: str  # "bona_fide" for live samples
    video: str
    landmarks: list | None = None


def scan(root: str, domains: list[str] | None = None, keep=None) -> list[Sample]:
    """Every frame of the given domains (all when None); keep(domain, "<live|spoof>/<video>") -> bool
    selects videos (the protocol command passes the splits of an imported domain)."""
    rootp = Path(root)
    if not rootp.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    found = sorted(p.name for p in rootp.iterdir() if p.is_dir())
    if domains:
        missing = [d for d in domains if d not in found]
        if missing:
            raise FileNotFoundError(f"domains {missing} not under {root} (found: {found})")
    samples = []
    for domain in domains or found:
        for label in ("live", "spoof"):
            for video in sorted((rootp / domain / label).glob("*")):
                if not video.is_dir() or (keep is not None and not keep(domain, f"{label}/{video.name}")):
                    continue
                lm_file = video / "landmarks.json"
                lms = json.loads(lm_file.read_text()) if lm_file.exists() else None
                attack = "bona_fide" if label == "live" else video.name.split("_")[0]
                for frame in sorted(video.iterdir()):
                    if frame.suffix.lower() not in EXTS:
                        continue
                    lm = lms.get(frame.name) if lms else None
                    if lms is not None and lm is None:
                        continue  # no face found in this frame when landmarks were made
                    samples.append(Sample(str(frame), domain, label == "live", attack, f"{domain}/{label}/{video.name}", lm))
    if not samples:
        raise FileNotFoundError(f"no frames found under {root} for domains {domains or found}")
    return samples


def load_crop(s: Sample, size: int) -> np.ndarray:
    img = cv2.imread(s.path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {s.path}")
    if s.landmarks is not None:
        return preprocess.align(img, s.landmarks, size)
    if img.shape[0] != size or img.shape[1] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def augment_crop(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light photometric and flip augmentation applied to every training crop."""
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    x = crop.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-15, 15)
    return np.clip(x, 0, 255).astype(np.uint8)


class BalancedBatches:
    """Yields index batches with equal counts from every (domain, live/spoof) group, seeded."""

    def __init__(self, samples: list[Sample], batch: int, seed: int):
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(samples):
            groups.setdefault((s.domain, s.live), []).append(i)
        self.groups = [np.array(v) for _, v in sorted(groups.items())]
        self.per = max(1, batch // len(self.groups))
        self.rng = np.random.default_rng(seed)

    def next(self) -> np.ndarray:
        return np.concatenate([self.rng.choice(g, self.per, replace=len(g) < self.per) for g in self.groups])


# ---------------- demo data ----------------
PORTRAITS = Path(__file__).with_name("portraits.json")
# Camera profiles stand in for capture domains (sensor colour and noise, compression).
PROFILES = {
    "camA": {"cast": [1.0, 1.0, 1.0], "noise": 5.0, "jpeg_min": 60},
    "camB": {"cast": [1.1, 1.0, 0.9], "noise": 9.0, "jpeg_min": 40},
    "camC": {"cast": [0.9, 1.0, 1.1], "noise": 7.0, "jpeg_min": 50},
}


def load_portraits(work: int = 256) -> list[tuple[np.ndarray, np.ndarray]]:
    meta = json.loads(PORTRAITS.read_text())
    out = []
    for p in meta["portraits"]:
        img = cv2.imread(p["path"], cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"{p['path']} missing: install Debian package {p['debian_package']}")
        s = work / max(img.shape[:2])
        out.append((cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), np.array(p["landmarks"]) * s))
    return out


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    q = np.c_[pts, np.ones(len(pts))] @ h.T
    return q[:, :2] / q[:, 2:3]


def render(portrait, lm, kind: str, profile: dict, rng, scene: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One simulated camera frame of a live face or a print/replay/mask attack, and its landmarks."""
    if kind in ("live", "mask"):
        face = simulate.mask_overlay(portrait, lm, rng) if kind == "mask" else portrait
        frame, h = simulate.move_live(face, rng, scene)
    else:
        medium = simulate.print_medium(portrait, rng) if kind == "print" else simulate.replay_medium(portrait, rng)
        medium, m = simulate.frame_medium(medium, kind, rng)
        frame, h = simulate.place_in_scene(medium, rng, scene)
        h = h @ np.array([[1, 0, m], [0, 1, m], [0, 0, 1]], np.float64)
    frame = simulate.camera(frame, rng, profile)
    jitter = rng.normal(0, 1.0, lm.shape)  # detector landmark noise, in pixels
    return frame, _apply(h, lm) + jitter


def make_demo_data(out: str, size: int, per_domain: dict[str, int], seed: int, videos: int = 20,
                   attacks: tuple[str, ...] = ("print", "replay"), scene: int = 256) -> dict:
    """Write aligned crops in the dataset layout: per domain n live and n/len(attacks) of each
    attack type (print, replay, and mask, the cut-out print worn as a mask). `scene` is the
    side of the simulated camera frame (the portraits are scaled to it)."""
    portraits = load_portraits(scene)
    counts = {}
    for di, (domain, n) in enumerate(sorted(per_domain.items())):
        rng = np.random.default_rng([seed, di])
        profile = PROFILES[domain]
        kinds = [("live", "live", n)] + [(k, "spoof", n // len(attacks)) for k in attacks]
        for kind, label, count in kinds:
            for i in range(count):
                pi = i % len(portraits)
                video = f"{kind}_{pi}_{(i // len(portraits)) % videos:03d}" if label == "spoof" else f"subject{pi}_{(i // len(portraits)) % videos:03d}"
                d = Path(out, domain, label, video)
                d.mkdir(parents=True, exist_ok=True)
                frame, lm = render(*portraits[pi], kind, profile, rng, scene)
                crop = preprocess.align(frame, lm, size)
                cv2.imwrite(str(d / f"{i:05d}.png"), crop)
            counts[f"{domain}/{kind}"] = count
    Path(out, "demo-data.json").write_text(json.dumps({"seed": seed, "size": size, "scene": scene, "counts": counts}, indent=1))
    return counts


def atomic_write(path: str, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename: a crash leaves the old file or the new one."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
