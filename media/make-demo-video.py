#!/usr/bin/python3
"""Render media/demo-kiosk.mp4: a simulated kiosk camera looking at public-domain portraits.

Run with Debian's Python (python3-opencv, python3-numpy, python3-skimage for the astronaut,
facedetect for Grace Hopper, ffmpeg with libx264):

    /usr/bin/python3 media/make-demo-video.py            # writes media/demo-kiosk.mp4
    /usr/bin/python3 media/make-demo-video.py --check    # also reads it back and runs a Haar check

The scene is static; a simulated camera pans, zooms and rolls slowly over it, with blur,
sensor noise and a brightness drift. Everything random comes from one seeded generator, so
the raw frames are identical on every run. The timeline (SEGMENTS) is documented in
media/README.md; daemon tests rely on it, so change both together.
"""

import argparse
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

HOPPER = '/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg'
ASTRONAUT = '/usr/lib/python3/dist-packages/skimage/data/astronaut.png'
OUT_W, OUT_H, FPS = 640, 480, 15
SCENE_W, SCENE_H = 800, 600  # the camera sees a moving 640x480 window of this
SEED = 20240611
HAAR = '/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml'  # libopencv-objdetect

# Face boxes [x, y, w, h] in the source portraits (Haar frontal-face detections on the
# originals), used to scale each portrait to a target face size.
FACE_BOX = {'hopper': (153, 85, 228, 228), 'astronaut': (177, 66, 95, 95)}
# Square source crops (x, y, side) that show head and shoulders.
CROP = {'hopper': (0, 0, 512), 'astronaut': (96, 0, 256)}

# (start s, end s, subjects as (name, scene centre x of the face, target face px)).
SEGMENTS = [
    (0.0, 7.0, [('hopper', 400, 200)]),
    (7.0, 9.0, []),
    (9.0, 16.0, [('astronaut', 400, 200)]),
    (16.0, 18.0, []),
    (18.0, 21.0, [('hopper', 250, 140), ('astronaut', 550, 140)]),
    (21.0, 24.0, []),
]
FACE_CENTRE_Y = 250  # scene y of face centres


def background(rng: np.random.Generator) -> np.ndarray:
    """A plain room: graded wall, door, floor, a few posters without faces, fine texture."""
    y = np.linspace(0, 1, SCENE_H, dtype=np.float32)[:, None, None]
    wall = np.array([182, 190, 196], np.float32) * (1.05 - 0.25 * y)
    img = np.broadcast_to(wall, (SCENE_H, SCENE_W, 3)).copy()
    img[470:, :] = (88, 104, 120)  # floor
    cv2.rectangle(img, (40, 150), (170, 470), (70, 92, 120), -1)  # door
    cv2.circle(img, (150, 320), 6, (40, 170, 200), -1)
    for _ in range(4):
        x0, y0 = int(rng.integers(220, 700)), int(rng.integers(40, 300))
        colour = tuple(float(c) for c in rng.integers(60, 230, 3))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(40, 90)), y0 + int(rng.integers(50, 110))), colour, -1)
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255)


def feather_mask(side: int) -> np.ndarray:
    """Soft-edged square so a pasted portrait blends into the room instead of a hard border."""
    m = np.zeros((side, side), np.float32)
    pad = side // 14
    cv2.rectangle(m, (pad, pad), (side - pad, side - pad), 1.0, -1)
    return cv2.GaussianBlur(m, (0, 0), side / 40)[..., None]


def paste(scene: np.ndarray, src: np.ndarray, name: str, cx: float, face_px: float, tilt_deg: float) -> None:
    """Place the portrait so its face is face_px wide and centred at (cx, FACE_CENTRE_Y)."""
    x0, y0, side = CROP[name]
    crop = src[y0 : y0 + side, x0 : x0 + side].astype(np.float32)
    fx, fy, fw, fh = FACE_BOX[name]
    face_c = (fx + fw / 2 - x0, fy + fh / 2 - y0)
    scale = face_px / fw
    m = cv2.getRotationMatrix2D(face_c, tilt_deg, scale)
    m[0, 2] += cx - face_c[0]
    m[1, 2] += FACE_CENTRE_Y - face_c[1]
    size = (SCENE_W, SCENE_H)
    warped = cv2.warpAffine(crop, m, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(feather_mask(side), m, size, flags=cv2.INTER_LINEAR)[..., None]
    scene *= 1 - alpha
    scene += warped * alpha


def camera(scene: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    """Slow pan/zoom/roll, slight blur, noise and brightness drift, like a cheap fixed camera."""
    zoom = 1.0 + 0.05 * math.sin(2 * math.pi * t / 11.0)
    roll = 3.0 * math.sin(2 * math.pi * t / 9.0)
    pan_x = 40.0 * math.sin(2 * math.pi * t / 13.0)
    pan_y = 20.0 * math.sin(2 * math.pi * t / 7.0)
    centre = (SCENE_W / 2 + pan_x, SCENE_H / 2 + pan_y)
    m = cv2.getRotationMatrix2D(centre, roll, zoom)
    m[0, 2] += OUT_W / 2 - centre[0]
    m[1, 2] += OUT_H / 2 - centre[1]
    frame = cv2.warpAffine(scene, m, (OUT_W, OUT_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    frame = cv2.GaussianBlur(frame, (0, 0), 0.7 + 0.3 * math.sin(t))
    gain = 1.0 + 0.15 * math.sin(2 * math.pi * t / 17.0)
    frame = frame * gain + rng.normal(0, 2.5, frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def render(out_path: Path) -> int:
    rng = np.random.default_rng(SEED)
    sources = {'hopper': cv2.imread(HOPPER), 'astronaut': cv2.imread(ASTRONAUT)}
    for name, img in sources.items():
        if img is None:
            sys.exit(f'cannot read the {name} portrait; install the Debian package named in media/README.md')
    room = background(rng)
    total = round(SEGMENTS[-1][1] * FPS)
    # Constant quality H.264 in yuv420p: small, and decoded by OpenCV's FFmpeg backend.
    ffmpeg = subprocess.Popen(
        ['ffmpeg', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'bgr24',
         '-s', f'{OUT_W}x{OUT_H}', '-r', str(FPS), '-i', '-', '-c:v', 'libx264', '-preset', 'slow',
         '-crf', '27', '-g', str(2 * FPS), '-pix_fmt', 'yuv420p', '-threads', '1', '-map_metadata', '-1',
         '-fflags', '+bitexact', '-flags:v', '+bitexact', '-movflags', '+faststart', str(out_path)],
        stdin=subprocess.PIPE,
    )
    for i in range(total):
        t = i / FPS
        scene = room.copy()
        subjects = next(s for (a, b, s) in SEGMENTS if a <= t < b)
        for k, (name, cx, face_px) in enumerate(subjects):
            sway = 12.0 * math.sin(2 * math.pi * t / 5.0 + k)  # people never stand still
            tilt = 4.0 * math.sin(2 * math.pi * t / 6.0 + 2 * k)
            paste(scene, sources[name], name, cx + sway, face_px, tilt)
        ffmpeg.stdin.write(camera(scene, t, rng).tobytes())
    ffmpeg.stdin.close()
    if ffmpeg.wait() != 0:
        sys.exit('ffmpeg failed')
    return total


def check(path: Path) -> None:
    """Read the video back and report per segment how often a Haar cascade finds faces."""
    cap = cv2.VideoCapture(str(path))
    cascade = cv2.CascadeClassifier(HAAR)
    per_seg = {i: [] for i in range(len(SEGMENTS))}
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        t = n / FPS
        seg = next(i for i, (a, b, _) in enumerate(SEGMENTS) if a <= t < b)
        faces = cascade.detectMultiScale(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60))
        per_seg[seg].append([int(w) for (_, _, w, _) in faces])
        n += 1
    print(f'read {n} frames')
    for i, (a, b, subjects) in enumerate(SEGMENTS):
        counts = [len(f) for f in per_seg[i]]
        widths = [w for f in per_seg[i] for w in f]
        med = int(np.median(widths)) if widths else None
        names = '+'.join(s[0] for s in subjects) or 'empty'
        print(f'{a:5.1f}-{b:5.1f}s {names:18s} frames={len(counts)} faces/frame: '
              f'min={min(counts)} max={max(counts)} mean={np.mean(counts):.2f} median width={med}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path(__file__).resolve().parent / 'demo-kiosk.mp4')
    parser.add_argument('--check', action='store_true', help='read the result back and run a Haar face check')
    args = parser.parse_args()
    frames = render(args.out)
    print(f'wrote {args.out} ({frames} frames, {args.out.stat().st_size} bytes)')
    if args.check:
        check(args.out)


if __name__ == '__main__':
    main()
