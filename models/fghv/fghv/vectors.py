"""Shared test vectors: alignment (landmarks -> 2x3 matrix -> crop pixels -> tensor values) and
reference outputs of exported graphs, checked by pytest and by the TypeScript daemon's tests."""

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from . import preprocess
from .reference import verify

IMAGE_W, IMAGE_H, CROP = 320, 240, 128


def formula_image(w: int = IMAGE_W, h: int = IMAGE_H) -> np.ndarray:
    """BGR uint8 image both languages build from the same formula."""
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    return np.stack([(x * 7 + y * 13) % 256, (x * 3 + y * 5 + 50) % 256, (x * 11 + y * 2 + 100) % 256], -1).astype(np.uint8)


def formula_input(spec: dict, size: int) -> np.ndarray:
    """Float32 [1,3,S,S] input: v_i = ((i*a + b) mod m) / (m/2) - 1, computed in float64 then rounded."""
    i = np.arange(3 * size * size, dtype=np.int64)
    v = ((i * spec["a"] + spec["b"]) % spec["m"]).astype(np.float64) / (spec["m"] / 2.0) - 1.0
    return v.astype(np.float32).reshape(1, 3, size, size)


INPUTS = [{"a": 7919, "b": 13, "m": 2001}, {"a": 1, "b": 0, "m": 16384}, {"a": 3, "b": 5, "m": 256}, {"a": 0, "b": 0, "m": 1},
          {"a": 104729, "b": 7, "m": 509}, {"a": 17, "b": 3, "m": 97}]


def _landmark_sets() -> dict:
    frontal = np.array([[140.0, 100.0], [180.0, 100.5], [160.5, 125.0], [145.0, 150.0], [176.0, 149.5]])
    c = frontal.mean(0)
    a = np.deg2rad(20)
    rot = (frontal - c) @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) + c
    noisy = frontal + np.array([[1.5, -0.7], [-0.9, 1.2], [2.1, 0.4], [-1.3, -1.1], [0.6, 1.7]])
    return {
        "frontal": frontal,
        "rotated_20deg": rot,
        "small_face": (frontal - c) * 0.4 + [250.0, 60.0],
        "near_border": frontal - c + [22.0, 205.0],
        "noisy_least_squares": noisy,
    }


def alignment_vectors(seed: int = 0) -> dict:
    img = formula_image()
    tpl = preprocess.template_for(CROP)
    rng = np.random.default_rng(seed)
    cases = []
    for name, lm in _landmark_sets().items():
        lm = np.round(lm, 3)
        m = preprocess.similarity_matrix(lm, tpl)
        crop = preprocess.warp_crop(img, m, CROP)
        t = preprocess.to_tensor(crop)
        pts = np.c_[rng.integers(0, CROP, 18), rng.integers(0, CROP, 18)].tolist() + [[0, 0], [CROP - 1, CROP - 1]]
        idx = sorted(rng.choice(t.size, 10, replace=False).tolist())
        cases.append({
            "name": name,
            "landmarks": lm.tolist(),
            "matrix": m.reshape(-1).tolist(),
            "pixels": [{"x": int(x), "y": int(y), "bgr": crop[y, x].tolist()} for x, y in pts],
            "tensor": [{"index": int(i), "value": float(t.reshape(-1)[i])} for i in idx],
            "zero_pixels": int((crop.reshape(-1, 3).sum(1) == 0).sum()),
        })
    return {
        "description": "python3 -m fghv make-vectors; image B=(x*7+y*13)%256, G=(x*3+y*5+50)%256, R=(x*11+y*2+100)%256",
        "image": {"width": IMAGE_W, "height": IMAGE_H, "formula": "bgr"},
        "crop": {"size": CROP, "template": tpl.tolist(), "template_name": preprocess.template_name(CROP)},
        "tensor": {"color": "RGB", "normalize": {"mean": preprocess.MEAN, "std": preprocess.STD}, "layout": "CHW"},
        "tolerance": {"matrix": 1e-4, "pixel": 0, "tensor": 1e-6},
        "cases": cases,
    }


def pick_crops(root: str, size: int, per_kind: dict | None = None) -> list[tuple[str, np.ndarray]]:
    """The first crops of each kind (live, then each attack type) of a dataset root, as uint8 BGR."""
    from . import data

    want = dict(per_kind or {"bona_fide": 2, "print": 1, "replay": 1})
    out = []
    for s in data.scan(root):
        if want.get(s.attack, 0) > 0:
            want[s.attack] -= 1
            out.append((f"{s.attack}:{Path(s.video).name}/{Path(s.path).name}", data.load_crop(s, size)))
    return out


def crop_case(name: str, crop: np.ndarray) -> dict:
    """A real-crop parity input: the aligned crop as a lossless PNG (base64); both languages decode it
    and apply their own to_tensor."""
    import base64

    import cv2

    ok, png = cv2.imencode(".png", crop)
    assert ok
    return {"name": name, "png_base64": base64.b64encode(png.tobytes()).decode()}


def reference_vectors(model, onnx_path: str, rel_onnx: str, tt: dict | None = None, crops=None) -> dict:
    """Autograd-reference outputs (reference.py) for the formula inputs of an exported graph (and
    for real crops, when given), with the test-time settings the graph was exported with."""
    from .nets import TEST_TIME

    t = {**TEST_TIME, **(tt or {})}
    inputs = [({"input": spec}, formula_input(spec, model.size)) for spec in INPUTS]
    for name, crop in crops or []:
        inputs.append(({"crop": crop_case(name, crop)}, preprocess.to_tensor(crop)[None]))
    rows = []
    for key, arr in inputs:
        x = torch.from_numpy(arr)
        out = verify(model, x, t["hypotheses"], t["steps"], t["step"], t["latent_seed"], t["rcc_scale"], t["step_rule"])
        rows.append({**key, **{k: float(v[0]) for k, v in out.items()}})
    sha = hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()
    return {"onnx": rel_onnx, "sha256": sha, "size": model.size, "input_formula": "((i*a+b)%m)/(m/2)-1", "test_time": t,
            "tolerance": {"abs": {"p_real": 1e-4, "var": 1e-6}, "rel": {"var": 1e-3, "delta_kl": 1e-3, "kl_real": 1e-3, "kl_attack": 1e-3}},
            "cases": rows}


def tiny_model(seed: int = 0):
    """A small randomly initialised model (random BatchNorm statistics too, so folding matters)."""
    from .nets import FGHV

    torch.manual_seed(seed)
    m = FGHV("lite", 64, 0.25, gen_hidden=64)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.1, 0.1)
    return m.eval()


def _dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


def write_vectors(out: str, checkpoint: str | None = None, onnx_path: str | None = None, name: str = "fghv-demo",
                  crops_root: str | None = None) -> None:
    from .export import export_onnx

    out_dir = Path(out).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    _dump(Path(out), alignment_vectors())
    tiny = tiny_model()
    tiny_onnx = out_dir / "fghv-tiny.onnx"
    export_onnx(tiny, str(tiny_onnx))
    _dump(out_dir / "fghv-tiny.json", reference_vectors(tiny, str(tiny_onnx), "test/vectors/fghv-tiny.onnx"))
    if checkpoint and onnx_path:
        from .train import load_model

        model, _ = load_model(checkpoint)
        rel = str(Path(onnx_path).resolve().relative_to(out_dir.resolve().parent.parent))
        man = Path(onnx_path).with_name("manifest.json")
        tt = json.loads(man.read_text())["provenance"]["test_time"] if man.exists() else None
        crops = pick_crops(crops_root, model.size) if crops_root else None
        _dump(out_dir / f"{name}.json", reference_vectors(model, onnx_path, rel, tt, crops))
