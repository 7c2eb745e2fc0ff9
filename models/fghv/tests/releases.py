"""Tiny releases of the public datasets in their owners' layouts, built at test time: a few .avi
files per release, each a few frames of a face rendered by the demo-data simulator (live, print
or replay of a Debian public-domain portrait), plus one corrupt file per release."""

from pathlib import Path

import cv2
import numpy as np

from fghv import data

KIND = {"bona_fide": "live", "print": "print", "replay": "replay"}


def write_video(path: Path, kind: str, seed: int, frames: int = 4, side: int = 256) -> None:
    portraits = data.load_portraits(side)
    rng = np.random.default_rng(seed)
    portrait, lm = portraits[seed % len(portraits)]
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (side, side))
    if not w.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    for _ in range(frames):
        frame, _ = data.render(portrait, lm, KIND[kind], data.PROFILES["camA"], rng, side)
        w.write(frame)
    w.release()


def corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + np.random.default_rng(0).bytes(2000))


OULU_FILE = {1: "bona_fide", 2: "print", 3: "print", 4: "replay", 5: "replay"}


def make_oulu(root: Path) -> dict:
    """Users 01-02 train, 21 dev, 36 test; phone 1 session 1; every file type 1-5; Protocol_1 lists
    and a Protocol_3 list (its per-phone files); plus a corrupt Test_files video."""
    expect, seed = {}, 0
    lists = {"Train": [], "Dev": [], "Test": []}
    for folder, split, users in (("Train_files", "Train", ["01", "02"]), ("Dev_files", "Dev", ["21"]),
                                 ("Test_files", "Test", ["36"])):
        for u in users:
            for f, attack in OULU_FILE.items():
                name = f"1_1_{u}_{f}"
                write_video(root / folder / f"{name}.avi", attack, seed)
                (root / folder / f"{name}.txt").write_text("0, 100, 100, 150, 100\n")  # eye positions (unused)
                seed += 1
                lists[split].append(f"{'+1' if f == 1 else '-1' if f in (2, 3) else '-2'},{name}")
                rel = f"live/{name}" if f == 1 else f"spoof/{attack}_{name}"
                expect[rel] = (attack, split.lower())
    for split, lines in lists.items():
        p = root / "Protocols" / "Protocol_1" / f"{split}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + "\n")
    p3 = root / "Protocols" / "Protocol_3" / "Train_1.txt"
    p3.parent.mkdir(parents=True, exist_ok=True)
    p3.write_text("\n".join(lists["Train"]) + "\n")
    corrupt(root / "Test_files" / "2_1_37_1.avi")
    expect["live/2_1_37_1"] = ("bona_fide", "test")
    return expect


CASIA_FILES = {"1": "bona_fide", "HR_1": "bona_fide", "3": "print", "HR_2": "print", "6": "print", "7": "replay",
               "HR_4": "replay"}


def make_casia(root: Path) -> dict:
    """Subject 1 of train_release and of test_release with live, warped and cut print and replay
    videos in normal and high quality; plus a corrupt train_release/2/2.avi."""
    expect, seed = {}, 100
    for folder, split in (("train_release", "train"), ("test_release", "test")):
        for stem, attack in CASIA_FILES.items():
            write_video(root / folder / "1" / f"{stem}.avi", attack, seed)
            seed += 1
            base = f"{split}_1_{stem}"
            expect[f"live/{base}" if attack == "bona_fide" else f"spoof/{attack}_{base}"] = (attack, split)
    corrupt(root / "train_release" / "2" / "2.avi")
    expect["live/train_2_2"] = ("bona_fide", "train")
    return expect


def make_replay(root: Path) -> dict:
    expect, seed = {}, 200
    for folder, split, client in (("train", "train", "001"), ("devel", "dev", "003"), ("test", "test", "002")):
        live = f"client{client}_session01_webcam_authenticate_adverse_1"
        write_video(root / folder / "real" / f"{live}.mov", "bona_fide", seed)
        expect[f"live/{split}_{live}"] = ("bona_fide", split)
        for support, kind, medium, attack in (("fixed", "print", "highdef_photo", "print"),
                                              ("hand", "mobile", "mobile_video", "replay"),
                                              ("fixed", "highdef", "highdef_video", "replay")):
            stem = f"attack_{kind}_client{client}_session01_{medium}_adverse"
            seed += 1
            write_video(root / folder / "attack" / support / f"{stem}.mov", attack, seed)
            expect[f"spoof/{attack}_{support}_{split}_{stem}"] = (attack, split)
    return expect


def make_msu(root: Path) -> dict:
    expect, seed = {}, 300
    root.mkdir(parents=True, exist_ok=True)
    (root / "train_sub_list.txt").write_text("002\n")
    (root / "test_sub_list.txt").write_text("001\n")
    for client, split in (("002", "train"), ("001", "test")):
        live = f"real_client{client}_android_SD_scene01"
        write_video(root / "scene01" / "real" / f"{live}.mp4", "bona_fide", seed)
        expect[f"live/{live}"] = ("bona_fide", split)
        for medium, attack in (("printed_photo", "print"), ("ipad_video", "replay"), ("iphone_video", "replay")):
            stem = f"attack_client{client}_laptop_SD_{medium}_scene01"
            seed += 1
            write_video(root / "scene01" / "attack" / f"{stem}.mov", attack, seed)
            expect[f"spoof/{attack}_{stem}"] = (attack, split)
    return expect


MAKERS = {"oulu-npu": make_oulu, "casia-fasd": make_casia, "replay-attack": make_replay, "msu-mfsd": make_msu}
