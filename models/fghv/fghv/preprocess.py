"""Face alignment exactly as the daemon does it (daemon/align/aligner.ts).

Both sides use Debian's OpenCV 4.6: a least-squares similarity from the 5 landmarks to the
template (RANSAC with a huge threshold, so every point is an inlier), a bilinear warp with a
black border, BGR->RGB, (p - 127.5) / 127.5, HWC->CHW.
"""

from functools import lru_cache

import cv2
import numpy as np

# ArcFace's 112x112 template (subject's right eye, left eye, nose, right and left mouth corner).
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
# Anti-spoofing needs context around the face (paper or screen edges, moire on the cheeks), so
# the face is shrunk to this fraction of the ArcFace layout, centred on the same point.
CONTEXT_SCALE = 0.75
MEAN = [127.5, 127.5, 127.5]
STD = [127.5, 127.5, 127.5]


def template_for(size: int, scale: float = CONTEXT_SCALE) -> np.ndarray:
    """5x2 template in crop pixels for a size x size crop, rounded to 4 decimals (manifest value)."""
    t = (ARCFACE_112 - 56.0) * scale * (size / 112.0) + size / 2.0
    return np.round(t, 4)


def template_name(size: int, scale: float = CONTEXT_SCALE) -> str:
    return f"arcface112-x{scale:g}-{size}px"


def similarity_matrix(landmarks, template) -> np.ndarray:
    src = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    dst = np.asarray(template, dtype=np.float32).reshape(-1, 2)
    m, _ = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=1000.0, maxIters=2000, confidence=0.99, refineIters=10
    )
    if m is None:
        raise ValueError("estimateAffinePartial2D found no transform (degenerate landmarks)")
    return m


def warp_crop(bgr: np.ndarray, matrix, size: int) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    return cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def to_tensor(bgr_crop: np.ndarray, color: str = "RGB", mean=MEAN, std=STD) -> np.ndarray:
    """uint8 HxWx3 BGR -> float32 3xHxW (no batch axis)."""
    img = bgr_crop[:, :, ::-1] if color == "RGB" else bgr_crop
    x = (img.astype(np.float32) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def normalize_batch(bgr_u8):
    """to_tensor for a batch on any device: uint8 [B,H,W,3] BGR torch tensor -> float32 [B,3,H,W]
    RGB, the same float32 arithmetic as to_tensor (training moves uint8 batches to the GPU, a
    quarter of the bytes, and normalises there)."""
    x = bgr_u8.flip(-1).permute(0, 3, 1, 2).float()
    return (x - 127.5) / 127.5


def align(bgr: np.ndarray, landmarks, size: int) -> np.ndarray:
    return warp_crop(bgr, similarity_matrix(landmarks, template_for(size)), size)


@lru_cache(maxsize=2)
def _yunet(path: str):
    """One network per model file and process (reading the ONNX file costs more than a frame)."""
    return cv2.dnn.readNetFromONNX(path)


def detect_landmarks(bgr: np.ndarray, yunet_path: str, score_threshold: float = 0.6):
    """Best face's 5 landmarks (pixels) and score from a YuNet "2023mar" ONNX model, or None.

    OpenCV 4.6's cv2.FaceDetectorYN only reads the older YuNet outputs, so the 2023 layout
    (cls/obj/bbox/kps per stride 8/16/32, anchor-free) is decoded here as OpenCV 4.8 does it.
    """
    net = _yunet(yunet_path)
    side = 640 if "640" in yunet_path else 320
    h, w = bgr.shape[:2]
    r = side / max(h, w)  # letterbox: scale to fit, pad right and bottom with black
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[: int(round(h * r)), : int(round(w * r))] = cv2.resize(bgr, (int(round(w * r)), int(round(h * r))))
    net.setInput(cv2.dnn.blobFromImage(canvas))
    names = net.getUnconnectedOutLayersNames()
    out = dict(zip(names, net.forward(names)))
    best = None
    for stride in (8, 16, 32):
        n = side // stride
        cls, obj = out[f"cls_{stride}"][0, :, 0], out[f"obj_{stride}"][0, :, 0]
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        i = int(np.argmax(score))
        if score[i] >= score_threshold and (best is None or score[i] > best[0]):
            row, col = divmod(i, n)
            kps = out[f"kps_{stride}"][0, i].reshape(5, 2)
            pts = (kps + np.array([col, row])) * stride / r
            best = (float(score[i]), pts)
    if best is None:
        return None
    return best[1].astype(float).tolist(), best[0]
