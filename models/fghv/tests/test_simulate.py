import numpy as np

from fghv import data, simulate


def _img():
    y, x = np.mgrid[0:96, 0:96]
    return np.stack([x * 2, y * 2, (x + y)], -1).astype(np.uint8)


def test_attacks_change_the_image_and_are_seeded():
    img = _img()
    for kind in ("print", "replay"):
        a = simulate.simulate_attack(img, kind, np.random.default_rng(3))
        b = simulate.simulate_attack(img, kind, np.random.default_rng(3))
        assert a.shape == img.shape and a.dtype == np.uint8
        assert np.array_equal(a, b)
        assert np.abs(a.astype(int) - img).mean() > 2


def test_render_tracks_landmarks_through_the_scene():
    img = _img()
    lm = np.array([[30.0, 40], [66, 40], [48, 55], [35, 70], [61, 70]])
    for kind in ("live", "print", "replay"):
        frame, pts = data.render(img, lm, kind, data.PROFILES["camA"], np.random.default_rng(0), scene=128)
        assert frame.shape == (128, 128, 3)
        eye_dist = np.linalg.norm(pts[1] - pts[0])
        assert 5 < eye_dist < 120 and pts[0][0] < pts[1][0] + 40
