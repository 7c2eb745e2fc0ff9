"""Importers on tiny releases in each owner's layout (tests/releases.py), and the protocol
command end to end on the imported OULU-NPU and CASIA-FASD fixtures."""

import json
from pathlib import Path

import pytest

from releases import MAKERS
from fghv import data, importers
from fghv.__main__ import main

YUNET = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "models" / "yunet_s_640_640.onnx"


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    return root, {name: make(root / name) for name, make in MAKERS.items()}


@pytest.mark.parametrize("dataset", list(MAKERS))
def test_listing_finds_every_video_with_its_label_type_and_split(releases, dataset):
    root, expect = releases
    vids = importers.list_videos(dataset, str(root / dataset))
    got = {v.rel: (v.attack, v.split) for v in vids}
    assert got == expect[dataset]
    for v in vids:
        assert v.live == (v.attack == "bona_fide")
        assert v.live or v.name.split("_")[0] == v.attack  # spoof folders: type first (data.scan reads it)


def test_listing_refuses_a_folder_of_another_layout(releases, tmp_path):
    root, _ = releases
    with pytest.raises(importers.LayoutError, match="not a CASIA-FASD release"):
        importers.list_videos("casia-fasd", str(root / "oulu-npu"))
    bad = tmp_path / "oulu"
    (bad / "Train_files").mkdir(parents=True)
    (bad / "Protocols" / "Protocol_1").mkdir(parents=True)
    (bad / "Protocols" / "Protocol_1" / "Train.txt").write_text("+1,1_1_01_2\n")  # live label, print file
    with pytest.raises(importers.LayoutError, match="disagrees"):
        importers.list_videos("oulu-npu", str(bad))
    assert main(["import", "msu-mfsd", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2


@pytest.fixture(scope="module")
def imported(releases, tmp_path_factory):
    if not YUNET.exists():
        pytest.skip(f"{YUNET} absent (face detector for the importer)")
    root, _ = releases
    out = tmp_path_factory.mktemp("data")
    sums = {d: importers.run_import(d, str(root / d), str(out), str(YUNET), frames=3, workers=2)
            for d in ("oulu-npu", "casia-fasd")}
    return out, sums


def test_import_writes_the_training_layout_and_reports_corrupt_videos(releases, imported):
    _, expect = releases
    out, sums = imported
    for dataset, domain, corrupt in (("oulu-npu", "oulu", "live/2_1_37_1"), ("casia-fasd", "casia", "live/train_2_2")):
        s = sums[dataset]
        assert s["videos"] == len(expect[dataset]) and s["imported"] == len(expect[dataset]) - 1
        assert [f["video"] for f in s["failed"]] == [corrupt]
        index = json.loads((out / domain / "videos.json").read_text())["videos"]
        samples = data.scan(str(out), [domain])
        by_video = {}
        for smp in samples:
            by_video.setdefault(smp.video.split("/", 1)[1], smp)
        good = {k: v for k, v in expect[dataset].items() if k != corrupt}
        # every good video has frames with landmarks, the right label and attack type, and its split
        assert set(by_video) == set(good), set(good) ^ set(by_video)
        for rel, (attack, split) in good.items():
            assert by_video[rel].attack == attack and by_video[rel].live == (attack == "bona_fide")
            assert index[rel]["split"] == split
            assert by_video[rel].landmarks is not None and len(by_video[rel].landmarks) == 5
        crop = data.load_crop(samples[0], 64)  # aligned with the daemon's code
        assert crop.shape == (64, 64, 3)
    oulu = json.loads((out / "oulu" / "videos.json").read_text())["videos"]
    assert oulu["spoof/print_1_1_01_2"]["protocols"] == ["Protocol_1/Train", "Protocol_3/Train_1"]


def test_import_resumes_without_reading_videos_again(releases, imported):
    root, _ = releases
    out, sums = imported
    again = importers.run_import("casia-fasd", str(root / "casia-fasd"), str(out), str(YUNET), frames=3, workers=1)
    assert again["resumed"] == sums["casia-fasd"]["imported"]
    assert again["frames_with_face"] == sums["casia-fasd"]["frames_with_face"]


@pytest.mark.parametrize("objective", ["fghv", "ce"])
def test_protocol_oulu_to_casia_writes_a_report(imported, tmp_path, objective):
    out, _ = imported
    run = tmp_path / objective
    assert main(["protocol", "--data", str(out), "--train", "oulu", "--test", "casia", "--steps", "20", "--device", "cpu",
                 "--out", str(run), "--objective", objective, "--size", "32", "--width", "0.25", "--gen-hidden", "32",
                 "--batch", "8", "--threads", "1"]) == 0
    rep = json.loads((run / "report.json").read_text())
    m = rep["metrics"]
    assert rep["protocol"] == "O->C" and rep["counts"]["test"]["videos"] > 0
    for k in ("hter", "auc", "eer", "apcer", "bpcer", "acer"):
        assert 0.0 <= m[k] <= 1.0, k
    assert set(m["apcer_per_type"]) == {"print", "replay"}
    if objective == "fghv":
        assert 0.0 <= m["auc_neg_var"] <= 1.0 and 0.0 <= m["auc_neg_delta_kl"] <= 1.0
        man = json.loads((run / "model" / "manifest.json").read_text())
        assert set(man["thresholds"]) == {"p_real_min", "var_max", "delta_kl_max"}
    md = (run / "report.md").read_text()
    assert "O&C&I->M HTER %" in md and "9.17" in md and "O->C HTER %" in md
