import json

import numpy as np
import torch

from conftest import REPO
from fghv import preprocess
from fghv.nets import Verifier
from fghv.vectors import alignment_vectors, formula_input, tiny_model


def test_committed_alignment_vectors_reproduce():
    committed = json.loads((REPO / "test/vectors/alignment.json").read_text())
    fresh = alignment_vectors()
    assert committed["crop"] == json.loads(json.dumps(fresh["crop"]))
    for c, f in zip(committed["cases"], fresh["cases"]):
        assert c["name"] == f["name"]
        assert np.allclose(c["matrix"], f["matrix"], atol=1e-9)
        assert c["pixels"] == f["pixels"]
        assert np.allclose([t["value"] for t in c["tensor"]], [t["value"] for t in f["tensor"]], atol=1e-7)
    border = next(c for c in committed["cases"] if c["name"] == "near_border")
    assert border["zero_pixels"] > 0


def test_template_and_identity_alignment():
    assert np.allclose(preprocess.template_for(112, 1.0), preprocess.ARCFACE_112)
    tpl = preprocess.template_for(128)
    m = preprocess.similarity_matrix(tpl, tpl)
    assert np.allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-6)


def test_tiny_model_vectors_match_the_explicit_graph_module():
    vec = json.loads((REPO / "test/vectors/fghv-tiny.json").read_text())
    model = tiny_model()
    v = Verifier(model).eval()
    for c in vec["cases"]:
        x = torch.from_numpy(formula_input(c["input"], vec["size"]))
        with torch.no_grad():
            out = dict(zip(("p_real", "var", "delta_kl", "kl_real", "kl_attack"), v(x)))
        assert abs(float(out["p_real"][0]) - c["p_real"]) <= 1e-5
        assert abs(float(out["var"][0]) - c["var"]) <= 1e-6
        for k in ("delta_kl", "kl_real", "kl_attack"):
            assert abs(float(out[k][0]) - c[k]) <= 1e-4 * max(1.0, abs(c[k])), k
