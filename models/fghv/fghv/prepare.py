"""Detect and align the faces of raw frames: writes landmarks.json into every video folder of the
training layout, so `train` aligns with the daemon's code. Frames without a face are left out."""

import json
from pathlib import Path

import cv2

from . import data, preprocess


def prepare(src: str, yunet: str, min_score: float = 0.5) -> dict:
    stats = {"frames": 0, "faces": 0, "videos": 0}
    for video in sorted(p for p in Path(src).glob("*/*/*") if p.is_dir()):
        found = {}
        for frame in sorted(video.iterdir()):
            if frame.suffix.lower() not in data.EXTS:
                continue
            stats["frames"] += 1
            img = cv2.imread(str(frame), cv2.IMREAD_COLOR)
            det = preprocess.detect_landmarks(img, yunet, min_score) if img is not None else None
            if det:
                found[frame.name] = [[round(x, 2), round(y, 2)] for x, y in det[0]]
        stats["faces"] += len(found)
        stats["videos"] += 1
        data.atomic_write(str(video / "landmarks.json"), json.dumps(found).encode())
    return stats
