#!/usr/bin/env python3
"""The reference pipeline an integrator would write instead of the daemon (bench/performance.md,
"Equal work"): the fastest straightforward Python loop with Debian's OpenCV 4.6 and its DNN
module, on the same video with the same model files and the same detector input size.
Per frame: cv2.VideoCapture read -> YuNet (cv2.dnn.readNetFromONNX; OpenCV 4.6's FaceDetectorYN
cannot run the 2023mar YuNet: its Eltwise shape check fails) on the same letterboxed input the
daemon builds (the model's fixed size, 320x320 for yunet_n_320_320), decoded with numpy,
cv2.dnn.NMSBoxes -> the largest face -> liveness:
  minifasnet: MiniFASNetV2 on cv2.dnn (scaled-box crop, BGR 0..255, softmax), as its manifest says;
  fghv: the FGHV demo model in PyTorch eager (cv2.dnn rejects the exported graph), similarity
        alignment with cv2.estimateAffinePartial2D + warpAffine as its manifest says; weights from
        the training checkpoint when present, else random (same cost).
No quality gates, tracking or fusion: those cost well under a millisecond in the daemon.
OpenCV uses every core (cv2.setNumThreads(os.cpu_count())), its fastest setting here for
both networks. The time inside each network's forward() is reported apart ("net_ms"), so a
difference between the runtimes' kernels is not mistaken for pipeline cost.
  /usr/bin/python3 bench/reference.py VIDEO YUNET.onnx {minifasnet --manifest INSTALLED_MANIFEST|fghv} [--warmup 10] [--frames N]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRIDES = (8, 16, 32)


def letterbox(img, dw, dh):
    h, w = img.shape[:2]
    s = min(dw / w, dh / h)
    iw, ih = min(dw, max(1, round(w * s))), min(dh, max(1, round(h * s)))
    px, py = (dw - iw) // 2, (dh - ih) // 2
    canvas = np.zeros((dh, dw, 3), np.uint8)
    interp = cv2.INTER_AREA if iw < w else cv2.INTER_LINEAR
    canvas[py:py + ih, px:px + iw] = cv2.resize(img, (iw, ih), interpolation=interp)
    return canvas, (px, py, w / iw, h / ih)


NET_S = {"detect": 0.0, "liveness": 0.0}


def forward(kind, net, blob, names=None):
    t = time.perf_counter()
    net.setInput(blob)
    out = net.forward(names) if names else net.forward()
    NET_S[kind] += time.perf_counter() - t
    return out


def yunet(net, names, img, size, thr=0.6, nms=0.3):
    canvas, (px, py, sx, sy) = letterbox(img, size, size)
    out = dict(zip(names, forward("detect", net, cv2.dnn.blobFromImage(canvas), names)))  # NCHW, BGR, 0..255
    boxes, scores, kpss = [], [], []
    for s in STRIDES:
        cols = rows = size // s
        cls, obj = out[f"cls_{s}"].reshape(-1), out[f"obj_{s}"].reshape(-1)
        bbox, kps = out[f"bbox_{s}"].reshape(-1, 4), out[f"kps_{s}"].reshape(-1, 10)
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.nonzero(score >= thr)[0]
        if not keep.size:
            continue
        col, row = keep % cols, keep // cols
        cx, cy = (col + bbox[keep, 0]) * s, (row + bbox[keep, 1]) * s
        bw, bh = np.exp(bbox[keep, 2]) * s, np.exp(bbox[keep, 3]) * s
        x0, y0 = (cx - bw / 2 - px) * sx, (cy - bh / 2 - py) * sy
        boxes += np.stack([x0, y0, bw * sx, bh * sy], 1).tolist()
        scores += score[keep].tolist()
        k = kps[keep].reshape(-1, 5, 2)
        kx, ky = (col[:, None] + k[..., 0]) * s, (row[:, None] + k[..., 1]) * s
        kpss += np.stack([(kx - px) * sx, (ky - py) * sy], -1).tolist()
    idx = cv2.dnn.NMSBoxes(boxes, scores, thr, nms) if boxes else []
    return [(boxes[i], kpss[i], scores[i]) for i in np.array(idx).reshape(-1)]


def scaled_box_crop(img, box, scale, size):
    ih, iw = img.shape[:2]
    bx, by, bw, bh = box
    s = min((ih - 1) / bh, (iw - 1) / bw, scale)
    cx, cy, nw, nh = bx + bw / 2, by + bh / 2, bw * s, bh * s
    x1, y1, x2, y2 = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if x1 < 0:
        x2, x1 = x2 - x1, 0
    if y1 < 0:
        y2, y1 = y2 - y1, 0
    if x2 > iw - 1:
        x1, x2 = x1 - (x2 - iw + 1), iw - 1
    if y2 > ih - 1:
        y1, y2 = y1 - (y2 - ih + 1), ih - 1
    x, y = max(0, int(x1)), max(0, int(y1))
    return cv2.resize(img[y:int(y2) + 1, x:int(x2) + 1], size)


class MiniFas:
    def __init__(self, manifest):
        # An installed manifest (`fghv-kiosk model fetch minifasnet-v2`): its file sits beside it.
        man = json.loads(Path(manifest).read_text())
        self.man = man
        self.net = cv2.dnn.readNetFromONNX(str((Path(manifest).parent / man["file"]).resolve()))
        self.name = man["name"]

    def __call__(self, img, box, kps):
        c = self.man["crop"]
        crop = scaled_box_crop(img, box, c["scale"], tuple(c["size"]))
        logits = forward("liveness", self.net, cv2.dnn.blobFromImage(crop)).reshape(-1)  # BGR 0..255
        e = np.exp(logits - logits.max())
        return float((e / e.sum())[self.man["outputs"]["live_index"]])


class Fghv:
    def __init__(self):
        import torch

        sys.path.insert(0, str(ROOT / "models/fghv"))
        from fghv.nets import FGHV, Verifier

        man = json.loads((ROOT / "models/fghv-demo/manifest.json").read_text())
        self.man, self.torch, self.name = man, torch, man["name"]
        cfg, tt = man["provenance"]["model"], man["provenance"]["test_time"]
        model = FGHV(cfg["family"], cfg["size"], cfg["width"], cfg["k"], cfg["gen_hidden"]).eval()
        ckpt = man["provenance"].get("checkpoint")
        self.weights = "random"
        if ckpt and Path(ckpt).exists():
            model.load_state_dict(torch.load(ckpt, map_location="cpu")["model"])
            self.weights = "checkpoint"
        self.v = Verifier.from_config(model, tt).eval()
        self.template = np.array(man["crop"]["template"], np.float32)
        n = man["input"]["normalize"]
        self.mean, self.std = np.array(n["mean"], np.float32), np.array(n["std"], np.float32)

    def __call__(self, img, box, kps):
        m, _ = cv2.estimateAffinePartial2D(np.array(kps, np.float32), self.template, method=cv2.RANSAC,
                                           ransacReprojThreshold=1000, maxIters=2000, confidence=0.99,
                                           refineIters=10)
        w, h = self.man["crop"]["size"]
        crop = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        x = (crop[:, :, ::-1].astype(np.float32) - self.mean) / self.std  # RGB per the manifest
        with self.torch.no_grad():
            p_real = self.v(self.torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None])[0]
        return float(p_real[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("yunet")
    ap.add_argument("liveness", choices=["minifasnet", "fghv"])
    ap.add_argument("--manifest", help="minifasnet: the installed MiniFASNetV2 manifest (model fetch)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: the whole video)")
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    cv2.setNumThreads(cores)
    if a.liveness == "minifasnet" and not a.manifest:
        ap.error("minifasnet needs --manifest (an installed minifasnet-v2 manifest)")
    live = MiniFas(a.manifest) if a.liveness == "minifasnet" else Fghv()
    if a.liveness == "fghv":
        live.torch.set_num_threads(cores)
    det = cv2.dnn.readNetFromONNX(a.yunet)
    names = list(det.getUnconnectedOutLayersNames())
    size = int(Path(a.yunet).stem.split("_")[-1])
    cap = cv2.VideoCapture(a.video)
    n = faces = 0
    t_detect = t_live = t_read = 0.0
    t0 = None
    scores = []
    while True:
        t = time.perf_counter()
        ok, frame = cap.read()
        if not ok or (a.frames and n >= a.frames):
            break
        n += 1
        if n == a.warmup + 1:
            t0, t_detect, t_live, t_read = time.perf_counter(), 0.0, 0.0, 0.0
            NET_S["detect"] = NET_S["liveness"] = 0.0
            faces = 0
        t1 = time.perf_counter()
        dets = yunet(det, names, frame, size)
        t2 = time.perf_counter()
        if dets:
            box, kps, _ = max(dets, key=lambda d: d[0][2] * d[0][3])
            scores.append(live(frame, box, kps))
            faces += 1
        t3 = time.perf_counter()
        t_read += t1 - t
        t_detect += t2 - t1
        t_live += t3 - t2
    secs = time.perf_counter() - t0
    m = n - a.warmup
    print(json.dumps({"liveness": live.name, "liveness_runtime": "cv2.dnn" if a.liveness == "minifasnet" else
                      f"torch {live.torch.__version__} eager ({live.weights} weights)", "detector_runtime":
                      f"cv2.dnn {cv2.__version__}", "frames": m, "faces": faces, "seconds": round(secs, 2),
                      "fps": round(m / secs, 2), "mean_ms": {"read": round(t_read / m * 1e3, 2),
                      "detect": round(t_detect / m * 1e3, 2), "liveness": round(t_live / m * 1e3, 2)},
                      "net_ms": {k: round(v / m * 1e3, 3) for k, v in NET_S.items()},
                      "threads": cv2.getNumThreads(), "input_size": size,
                      "mean_score": round(float(np.mean(scores)), 4) if scores else None}))


if __name__ == "__main__":
    main()
