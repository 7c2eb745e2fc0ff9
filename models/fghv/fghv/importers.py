"""Importers for the public face anti-spoofing datasets as their owners ship them.

    python3 -m fghv import {oulu-npu,casia-fasd,replay-attack,msu-mfsd} --root RAW --out DATA --yunet YUNET

Each release's own layout and file naming give the label and the attack type of every video
(table below); its split and protocol files give the split. Every video is sampled at evenly
spaced frames (in parallel worker processes, with a progress line), its face found by YuNet and
its 5 landmarks written beside the frames, so `train` aligns the crops with the daemon's code
(preprocess.align). Output, the documented training layout, one domain per dataset:

    DATA/<domain>/<live|spoof>/<video>/<frame>.jpg + landmarks.json   (spoof videos: type first)
    DATA/<domain>/videos.json    video -> split, subject, attack type, source file, protocol lists
    DATA/<domain>/import.json    counts and the videos that failed (corrupt, no face), with the reason

Frames are stored scaled so their longer side is at most --max-side (640 by default: a kiosk
camera's resolution and YuNet's input), JPEG quality 95. Not imported: Replay-Attack's `enroll/`
videos (face-recognition enrolment, not part of its anti-spoofing protocols) and the releases'
own face-position files (YuNet finds the face in every release the same way). Resumable: a video whose folder holds
`.import.json` is not read again. A video that cannot be decoded is reported and skipped.

| dataset | layout read | live | print | replay |
|---|---|---|---|---|
| OULU-NPU (`oulu`) | `{Train,Dev,Test}_files/<phone>_<session>_<user>_<file>.avi`, `Protocols/Protocol_N/{Train,Dev,Test}[_k].txt` (`+1,1_1_01_1`) | file 1 | files 2, 3 | files 4, 5 |
| CASIA-FASD (`casia`) | `{train,test}_release/<subject>/<n>.avi` | 1, 2, HR_1 | 3, 4, HR_2 (warped), 5, 6, HR_3 (cut) | 7, 8, HR_4 |
| Replay-Attack (`replay`) | `{train,devel,test}/real/*.mov`, `{train,devel,test}/attack/{fixed,hand}/attack_<print|mobile|highdef>_client<id>_*.mov` | `real/` | `attack_print_` | `attack_mobile_`, `attack_highdef_` (photo or video on a screen) |
| MSU-MFSD (`msu`) | `scene01/real/real_client<id>_*`, `scene01/attack/attack_client<id>_*_{printed_photo,ipad_video,iphone_video}_*`, `{train,test}_sub_list.txt` | `real/` | `printed_photo` | `ipad_video`, `iphone_video` |
"""

import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from . import data, preprocess

VIDEO_EXTS = {".avi", ".mov", ".mp4", ".mkv"}
DOMAINS = {"oulu-npu": "oulu", "casia-fasd": "casia", "replay-attack": "replay", "msu-mfsd": "msu"}


@dataclass
class Video:
    source: str  # path relative to the release root
    live: bool
    attack: str  # "bona_fide" for live videos, else "print" or "replay"
    name: str  # output folder under live/ or spoof/ (spoof: attack type first)
    split: str  # train, dev, test (or "unlisted" when the release's split files do not name it)
    subject: str
    protocols: list = field(default_factory=list)  # protocol lists naming this video (OULU-NPU)

    @property
    def rel(self) -> str:
        return f"{'live' if self.live else 'spoof'}/{self.name}"


class LayoutError(ValueError):
    """The release folder does not look like the named dataset (says what was expected)."""


def _videos_under(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS) if d.is_dir() else []


def _need(root: Path, names: list[str], dataset: str) -> None:
    if not any((root / n).is_dir() for n in names):
        raise LayoutError(f"{root} is not a {dataset} release: none of {names} found under it")


# ---------------- OULU-NPU ----------------
OULU_TYPES = {1: "bona_fide", 2: "print", 3: "print", 4: "replay", 5: "replay"}
OULU_LABEL = {"+1": "bona_fide", "1": "bona_fide", "-1": "print", "-2": "replay"}
OULU_NAME = re.compile(r"^(\d)_(\d)_(\d\d)_(\d)$")


def list_oulu(root: Path) -> list[Video]:
    splits = {"Train_files": "train", "Dev_files": "dev", "Test_files": "test"}
    _need(root, list(splits), "OULU-NPU")
    proto: dict[str, list[str]] = {}
    for f in sorted(root.glob("Protocols/Protocol_*/*.txt")):
        for line in f.read_text().splitlines():
            if not line.strip():
                continue
            label, _, name = line.strip().partition(",")
            m = OULU_NAME.match(name.strip())
            if not m or label.strip() not in OULU_LABEL:
                raise LayoutError(f"{f}: line {line!r} is not '<+1|-1|-2>,<phone>_<session>_<user>_<file>'")
            if OULU_LABEL[label.strip()] != OULU_TYPES.get(int(m.group(4))):
                raise LayoutError(f"{f}: label {label} disagrees with the file-type digit of {name}")
            proto.setdefault(name.strip(), []).append(f"{f.parent.name}/{f.stem}")
    out = []
    for folder, split in splits.items():
        for p in _videos_under(root / folder):
            m = OULU_NAME.match(p.stem)
            if not m or int(m.group(4)) not in OULU_TYPES:
                continue  # not a video of the release (the eye-position .txt files are skipped by extension)
            attack = OULU_TYPES[int(m.group(4))]
            live = attack == "bona_fide"
            out.append(Video(str(p.relative_to(root)), live, attack, p.stem if live else f"{attack}_{p.stem}", split,
                             m.group(3), proto.get(p.stem, [])))
    return out


# ---------------- CASIA-FASD ----------------
CASIA_TYPES = {"1": "bona_fide", "2": "bona_fide", "HR_1": "bona_fide", "3": "print", "4": "print", "HR_2": "print",
               "5": "print", "6": "print", "HR_3": "print", "7": "replay", "8": "replay", "HR_4": "replay"}


def list_casia(root: Path) -> list[Video]:
    splits = {"train_release": "train", "test_release": "test"}
    _need(root, list(splits), "CASIA-FASD")
    out = []
    for folder, split in splits.items():
        for subj in sorted((p for p in (root / folder).glob("*") if p.is_dir()), key=lambda p: (len(p.name), p.name)):
            for p in _videos_under(subj):
                attack = CASIA_TYPES.get(p.stem)
                if attack is None:
                    continue
                live = attack == "bona_fide"
                base = f"{split}_{subj.name}_{p.stem}"
                out.append(Video(str(p.relative_to(root)), live, attack, base if live else f"{attack}_{base}", split,
                                 f"{split}_{subj.name}"))
    return out


# ---------------- Idiap Replay-Attack ----------------
REPLAY_TYPES = {"print": "print", "mobile": "replay", "highdef": "replay"}
CLIENT = re.compile(r"client0*(\d+)")


def list_replay(root: Path) -> list[Video]:
    splits = {"train": "train", "devel": "dev", "test": "test"}
    _need(root, [f"{s}/real" for s in splits], "Replay-Attack")
    out = []
    for folder, split in splits.items():
        for p in _videos_under(root / folder / "real"):
            m = CLIENT.search(p.stem)
            out.append(Video(str(p.relative_to(root)), True, "bona_fide", f"{split}_{p.stem}", split,
                             m.group(1) if m else "?"))
        for support in ("fixed", "hand"):
            for p in _videos_under(root / folder / "attack" / support):
                kind = p.stem.split("_")[1] if p.stem.startswith("attack_") else ""
                attack, m = REPLAY_TYPES.get(kind), CLIENT.search(p.stem)
                if attack is None:
                    continue
                out.append(Video(str(p.relative_to(root)), False, attack, f"{attack}_{support}_{split}_{p.stem}", split,
                                 m.group(1) if m else "?"))
    return out


# ---------------- MSU-MFSD ----------------
MSU_TYPES = {"printed_photo": "print", "ipad_video": "replay", "iphone_video": "replay"}


def _id_list(f: Path) -> set[int]:
    return {int(x) for x in re.findall(r"\d+", f.read_text())} if f.exists() else set()


def list_msu(root: Path) -> list[Video]:
    scene = root / "scene01"
    _need(root, ["scene01/real", "scene01/attack"], "MSU-MFSD")
    train_ids, test_ids = _id_list(root / "train_sub_list.txt"), _id_list(root / "test_sub_list.txt")
    out = []
    for label in ("real", "attack"):
        for p in _videos_under(scene / label):
            m = CLIENT.search(p.stem)
            cid = int(m.group(1)) if m else -1
            split = "train" if cid in train_ids else "test" if cid in test_ids else "unlisted"
            if label == "real":
                out.append(Video(str(p.relative_to(root)), True, "bona_fide", p.stem, split, str(cid)))
                continue
            attack = next((t for k, t in MSU_TYPES.items() if k in p.stem), None)
            if attack is not None:
                out.append(Video(str(p.relative_to(root)), False, attack, f"{attack}_{p.stem}", split, str(cid)))
    return out


LISTERS = {"oulu-npu": list_oulu, "casia-fasd": list_casia, "replay-attack": list_replay, "msu-mfsd": list_msu}


def list_videos(dataset: str, root: str) -> list[Video]:
    if dataset not in LISTERS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(LISTERS)}")
    rootp = Path(root)
    if not rootp.is_dir():
        raise FileNotFoundError(f"release folder {root} does not exist")
    videos = LISTERS[dataset](rootp)
    if not videos:
        raise LayoutError(f"no {dataset} videos found under {root}")
    return videos


# ---------------- frames ----------------
def sample_indices(n_frames: int, k: int) -> list[int]:
    """k evenly spaced frame indices of n_frames (centres of k equal spans)."""
    if n_frames <= 0:
        return []
    k = min(k, n_frames)
    return sorted({int((i + 0.5) * n_frames / k) for i in range(k)})


def read_frames(path: str, k: int) -> list[tuple[int, np.ndarray]]:
    """k evenly spaced frames (index, BGR). Raises OSError when the file cannot be decoded."""
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)  # not GStreamer: quiet and the same on every host
    try:
        if not cap.isOpened():
            raise OSError("cannot open")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:  # container without a frame count: decode everything once
            frames = []
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                frames.append(img)
            return [(i, frames[i]) for i in sample_indices(len(frames), k)] if frames else _fail("no frames decoded")
        want, got, i = set(sample_indices(n, k)), [], 0
        while i <= max(want):
            if not cap.grab():
                break
            if i in want:
                ok, img = cap.retrieve()
                if ok and img is not None:
                    got.append((i, img))
            i += 1
        return got or _fail("no frames decoded")
    finally:
        cap.release()


def _fail(msg: str):
    raise OSError(msg)


def _scaled(img: np.ndarray, max_side: int) -> np.ndarray:
    s = max_side / max(img.shape[:2])
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img


def import_one(job) -> dict:
    """One video: frames, face landmarks, marker. Never raises: failures come back as records."""
    v, root, out, frames, yunet, min_score, max_side = job
    d = Path(out) / v["rel"]
    marker = d / ".import.json"
    if marker.exists():
        return {**json.loads(marker.read_text()), "skipped": True}
    rec = {"video": v["rel"], "source": v["source"]}
    try:
        cv2.setNumThreads(1)
        got = read_frames(str(Path(root) / v["source"]), frames)
        d.mkdir(parents=True, exist_ok=True)
        lms = {}
        for i, img in got:
            img = _scaled(img, max_side)
            det = preprocess.detect_landmarks(img, yunet, min_score)
            if det is None:
                continue
            name = f"{i:05d}.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise OSError("JPEG encoding failed")
            data.atomic_write(str(d / name), buf.tobytes())
            lms[name] = [[round(float(x), 2), round(float(y), 2)] for x, y in det[0]]
        data.atomic_write(str(d / "landmarks.json"), json.dumps(lms).encode())
        rec.update({"frames": len(got), "faces": len(lms)})
        if not lms:
            rec["error"] = "no face found in any sampled frame"
        data.atomic_write(str(marker), json.dumps(rec).encode())
        return rec
    except Exception as e:  # a corrupt or unreadable video is reported, never fatal
        return {**rec, "error": f"{type(e).__name__}: {e}"}


class Progress:
    """One progress line on stderr: redrawn in place on a terminal, every 10 % otherwise."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.n, self.failed, self.t0, self.last = total, label, 0, 0, time.time(), -1
        self.tty = sys.stderr.isatty()

    def step(self, failed: bool) -> None:
        self.n += 1
        self.failed += failed
        tenth = self.n * 10 // max(1, self.total)
        if not self.tty and tenth == self.last and self.n != self.total:
            return
        self.last = tenth
        bar = "#" * (self.n * 30 // max(1, self.total))
        line = (f"{self.label} [{bar:<30}] {self.n}/{self.total} videos, {self.failed} failed, "
                f"{time.time() - self.t0:.0f} s")
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.n == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_import(dataset: str, root: str, out: str, yunet: str, frames: int = 10, workers: int = 2,
               min_score: float = 0.5, max_side: int = 640, domain: str | None = None) -> dict:
    if not Path(yunet).is_file():
        raise FileNotFoundError(f"YuNet model {yunet} not found (give --yunet PATH to yunet_s_640_640.onnx)")
    videos = list_videos(dataset, root)
    domain = domain or DOMAINS[dataset]
    dom = Path(out) / domain
    dom.mkdir(parents=True, exist_ok=True)
    index = {v.rel: {k: val for k, val in asdict(v).items() if k not in ("name", "live")} for v in videos}
    data.atomic_write(str(dom / "videos.json"), (json.dumps({"dataset": dataset, "videos": index}, indent=1) + "\n").encode())
    jobs = [({"rel": v.rel, "source": v.source}, root, str(dom), frames, yunet, min_score, max_side) for v in videos]
    prog, recs = Progress(len(jobs), f"import {dataset}"), []
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            for r in pool.imap_unordered(import_one, jobs, chunksize=1):
                recs.append(r)
                prog.step("error" in r)
    else:
        for j in jobs:
            recs.append(import_one(j))
            prog.step("error" in recs[-1])
    failed = sorted((r for r in recs if "error" in r), key=lambda r: r["video"])
    for r in failed:
        print(f"import {dataset}: skipped {r['source']}: {r['error']}", file=sys.stderr)
    summary = {
        "dataset": dataset, "domain": domain, "root": str(root), "videos": len(videos),
        "imported": len(videos) - len(failed), "resumed": sum(1 for r in recs if r.get("skipped")),
        "frames_with_face": sum(r.get("faces", 0) for r in recs),
        "per_label": {k: sum(1 for v in videos if (v.attack if not v.live else "live") == k)
                      for k in ("live", "print", "replay")},
        "per_split": {s: sum(1 for v in videos if v.split == s) for s in sorted({v.split for v in videos})},
        "failed": [{"video": r["video"], "source": r["source"], "error": r["error"]} for r in failed],
        "settings": {"frames": frames, "min_score": min_score, "max_side": max_side, "detector": Path(yunet).name},
    }
    data.atomic_write(str(dom / "import.json"), (json.dumps(summary, indent=1) + "\n").encode())
    return summary


def read_index(root: str, domain: str) -> dict:
    """videos.json of an imported domain: {"live/<video>": {"split", "subject", "attack", ...}}."""
    p = Path(root, domain, "videos.json")
    if not p.exists():
        raise FileNotFoundError(f"{p} missing: protocols need domains written by `python3 -m fghv import`")
    return json.loads(p.read_text())["videos"]
