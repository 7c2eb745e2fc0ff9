"""Attack simulator: turns a bona fide image into a simulated print or replay presentation as the
camera would see it. Used to build the demo dataset and, on crops, as a training augmentation.

All functions take a uint8 BGR image and a numpy Generator and return uint8 BGR. Functions that
move pixels also return the 2x3 or 3x3 matrix so landmarks can follow.
"""

import cv2
import numpy as np


def _u8(x) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


# ---------------- print ----------------
def halftone(img, rng):
    """Ordered (Bayer) dither per channel at a random dot pitch: the printer's dot pattern."""
    h, w = img.shape[:2]
    pitch = int(rng.integers(1, 4))
    bayer = np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], np.float32) / 16.0
    cell = np.kron(bayer, np.ones((pitch, pitch), np.float32))
    reps = (h // cell.shape[0] + 1, w // cell.shape[1] + 1)
    thr = np.tile(cell, reps)[:h, :w, None]
    levels = float(rng.integers(2, 6))
    x = img.astype(np.float32) / 255.0 * (levels - 1)
    q = np.floor(x) + (x - np.floor(x) > thr)
    out = q / (levels - 1) * 255.0
    mix = rng.uniform(0.35, 0.85)  # ink spread and the camera's blur hide part of the pattern
    return _u8(mix * out + (1 - mix) * img)


def gamut_compress(img, rng):
    """Paper and ink cannot reach screen gamut: lower saturation and contrast, lift black."""
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] *= rng.uniform(0.5, 0.85)
    img = cv2.cvtColor(_u8(hsv), cv2.COLOR_HSV2BGR).astype(np.float32)
    lo, hi = rng.uniform(15, 45), rng.uniform(200, 240)
    return _u8(lo + img * (hi - lo) / 255.0)


def paper_texture(img, rng):
    h, w = img.shape[:2]
    grain = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
    grain = cv2.resize(grain, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    fine = rng.normal(0, 1, (h, w, 1)).astype(np.float32)
    tint = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.95, 1.0), 1.0], np.float32)
    return _u8(img.astype(np.float32) * tint * (1 + 0.04 * grain + 0.03 * fine))


def print_medium(img, rng):
    out = gamut_compress(img, rng)
    out = halftone(out, rng)
    out = paper_texture(out, rng)
    k = int(rng.choice([1, 3, 5]))
    return cv2.GaussianBlur(out, (k, k), 0) if k > 1 else out


# ---------------- replay ----------------
def screen_grid(img, rng):
    """RGB sub-pixel stripes plus moire: the screen's pixel grid resampled by the camera."""
    h, w = img.shape[:2]
    up = int(rng.integers(3, 5))
    big = cv2.resize(img, (w * up, h * up), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    mask = np.full((h * up, w * up, 3), rng.uniform(0.25, 0.5), np.float32)
    cols = np.arange(w * up) % up
    for c, bgr in enumerate((2, 1, 0)):  # R, G, B stripes left to right
        mask[:, cols == min(c, up - 1), bgr] = 1.0
    mask[np.arange(h * up) % up == up - 1] *= rng.uniform(0.5, 0.9)
    big *= mask
    # Resampling with a slightly wrong scale and a small rotation creates moire bands.
    ang, s = rng.uniform(-4, 4), rng.uniform(0.97, 1.03) / up
    m = cv2.getRotationMatrix2D((w * up / 2, h * up / 2), ang, 1.0)
    big = cv2.warpAffine(big, m, (w * up, h * up), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    small = cv2.resize(big, (int(w * up * s), int(h * up * s)), interpolation=cv2.INTER_NEAREST)
    small = cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA)
    gain = 255.0 / max(1.0, float(np.percentile(small, 99)))
    mix = rng.uniform(0.15, 0.5)  # the camera's optics and focus wash out most of the grid
    return _u8(mix * np.minimum(small * gain, 255) + (1 - mix) * img)


def gamma_shift(img, rng):
    g = rng.uniform(0.6, 1.6)
    lut = _u8(255.0 * (np.arange(256) / 255.0) ** g)
    return cv2.LUT(img, lut)


def glare(img, rng):
    h, w = img.shape[:2]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    sx, sy = rng.uniform(0.1, 0.4) * w, rng.uniform(0.1, 0.4) * h
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))[..., None]
    return _u8(img.astype(np.float32) + rng.uniform(40, 160) * blob)


def replay_medium(img, rng):
    out = gamma_shift(screen_grid(img, rng), rng)
    return glare(out, rng) if rng.random() < 0.7 else out


# ---------------- cut-out print worn as a mask ----------------
def mask_overlay(img, lm, rng):
    """A printed face, cut out along the face oval with holes at the eyes, worn over the live
    subject's face: the print covers the face, the real eyes, hair, neck and background show.
    Used only as an attack type never seen in training (the ablation's unseen attack)."""
    lm = np.asarray(lm, np.float64)
    printed = print_medium(img, rng)
    h, w = img.shape[:2]
    eye = float(np.linalg.norm(lm[1] - lm[0]))
    centre = (lm[:2].mean(0) + lm[3:].mean(0)) / 2 + rng.uniform(-0.05, 0.05, 2) * eye
    axes = (int(eye * rng.uniform(0.95, 1.15)), int(eye * rng.uniform(1.3, 1.5)))
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, 0, 0, 360, 255, -1)
    r = max(2, int(eye * rng.uniform(0.14, 0.2)))
    for p in lm[:2]:
        cv2.circle(mask, (int(p[0]), int(p[1])), r, 0, -1)
    m = (cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32) / 255.0)[..., None]
    shade = rng.uniform(0.75, 0.95)  # the paper sits in front of the face and catches less light
    return _u8(m * printed.astype(np.float32) * shade + (1 - m) * img.astype(np.float32))


# ---------------- presentation in a scene ----------------
def random_background(h, w, rng):
    base = rng.uniform(20, 235, 3).astype(np.float32)
    grad = rng.uniform(-60, 60, 3).astype(np.float32)
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    bg = base + grad * t + rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(bg, (x0, y0), (x0 + int(rng.integers(10, w)), y0 + int(rng.integers(10, h))),
                      rng.uniform(0, 255, 3).tolist(), -1)
    return _u8(bg)


def frame_medium(medium, kind, rng):
    """Surround the picture with a paper margin or a device bezel; returns image and offset."""
    h, w = medium.shape[:2]
    if kind == "print":
        m = int(rng.uniform(0.02, 0.15) * w)
        colour = rng.uniform(200, 250) * np.array([rng.uniform(0.92, 1), rng.uniform(0.96, 1), 1.0])
    else:
        m = int(rng.uniform(0.04, 0.12) * w)
        colour = np.full(3, rng.uniform(5, 60))
    out = np.empty((h + 2 * m, w + 2 * m, 3), np.uint8)
    out[:] = _u8(colour)
    out[m:m + h, m:m + w] = medium
    return out, m


def place_in_scene(medium, rng, out_size):
    """Perspective-warp the medium into a background; returns image and the 3x3 homography."""
    h, w = medium.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    side = out_size * rng.uniform(0.75, 1.15)
    cx, cy = out_size / 2 + rng.uniform(-0.1, 0.1) * out_size, out_size / 2 + rng.uniform(-0.1, 0.1) * out_size
    ang = np.deg2rad(rng.uniform(-15, 15))
    corners = np.float32([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * side
    corners += rng.uniform(-0.06, 0.06, (4, 2)).astype(np.float32) * side  # tilt of the sheet or tablet
    rot = np.float32([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = corners @ rot.T + np.float32([cx, cy])
    hm = cv2.getPerspectiveTransform(src, dst)
    bg = random_background(out_size, out_size, rng)
    warped = cv2.warpPerspective(medium, hm, (out_size, out_size), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.full((h, w), 255, np.uint8), hm, (out_size, out_size)) > 127
    bg[cover] = warped[cover]
    return bg, hm


def move_live(img, rng, out_size):
    """A bona fide subject moving in front of the camera: similarity warp, mirrored border."""
    h, w = img.shape[:2]
    ang, s = rng.uniform(-15, 15), out_size / w * rng.uniform(0.85, 1.2)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, s)
    m[:, 2] += (out_size - w) / 2 + rng.uniform(-0.08, 0.08, 2) * out_size
    out = cv2.warpAffine(img, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out, np.vstack([m, [0, 0, 1]])


# ---------------- camera ----------------
def camera(img, rng, profile: dict | None = None):
    """Sensor and lighting: colour cast, light gradient, blur, noise, JPEG."""
    p = profile or {}
    h, w = img.shape[:2]
    x = img.astype(np.float32)
    cast = np.array(p.get("cast", [1.0, 1.0, 1.0]), np.float32) * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.35) * (np.cos(a) * (xx / w - 0.5) + np.sin(a) * (yy / h - 0.5))
    x = x * cast * light[..., None] * rng.uniform(0.7, 1.25) + rng.uniform(-20, 20)
    k = int(rng.choice([1, 1, 3, 5]))
    if k > 1:
        x = cv2.GaussianBlur(x, (k, k), 0)
    x += rng.normal(0, rng.uniform(1, p.get("noise", 6.0)), x.shape).astype(np.float32)
    out = _u8(x)
    q = int(rng.uniform(p.get("jpeg_min", 40), 95))
    return cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)


def simulate_attack(img, kind, rng):
    """Attack appearance only, no geometry: the training augmentation applied to aligned crops."""
    return print_medium(img, rng) if kind == "print" else replay_medium(img, rng)
