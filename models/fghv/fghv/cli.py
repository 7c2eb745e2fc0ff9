"""The command line's options, one place: the parser of `python3 -m fghv` and `options()`, which
gives library callers (ablation, protocol) the same defaults as keyword arguments, without going
through CLI strings or importing the entry point."""

import argparse
from types import SimpleNamespace


def _csv(s: str) -> list[str]:
    return [x for x in s.split(",") if x]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fghv")
    sub = ap.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("complexity", help="MACs and parameters per backbone family and size")
    c.add_argument("--family", action="append")
    c.add_argument("--size", type=int, action="append")
    c.add_argument("--width", type=float, default=None)

    t = sub.add_parser("train", help="train on ROOT/<domain>/<live|spoof>/<video>/<frame>")
    t.add_argument("--data", required=True)
    t.add_argument("--train-domains", type=_csv, required=True)
    t.add_argument("--val-domains", type=_csv, default=[])
    t.add_argument("--val-data", default=None, help="root of the validation domains (default --data)")
    t.add_argument("--out", required=True)
    t.add_argument("--family", default="lite")
    t.add_argument("--size", type=int, default=None)
    t.add_argument("--width", type=float, default=None)
    t.add_argument("--gen-hidden", type=int, default=512, help="hidden width of the generator MLPs")
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--hypotheses", type=int, default=8)
    t.add_argument("--lr-backbone", type=float, default=1e-4)
    t.add_argument("--lr-gen", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--lambda-v", type=float, default=1.0)
    t.add_argument("--lambda-d", type=float, default=1.0)
    t.add_argument("--var-margin", type=float, default=0.01, help="attack-side VAR hinge margin v_a")
    t.add_argument("--lambda-a", type=float, default=10.0, help="weight of the attack-side VAR hinge")
    t.add_argument("--ddc-margin", type=float, default=0.9, help="within-set similarity above this is penalised")
    t.add_argument("--ddc-weight", type=float, default=2.0, help="weight w of the DDC within-set hinge")
    t.add_argument("--objective", choices=["fghv", "ce"], default="fghv", help="ce: plain binary classifier (baseline)")
    t.add_argument("--tt-step", type=float, default=0.05, help="test-time latent step used for logs and validation")
    t.add_argument("--tt-rule", choices=["joint", "plain"], default="joint")
    t.add_argument("--simulate-p", type=float, default=0.0, help="turn this share of live crops into simulated attacks")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--val-every", type=int, default=500)
    t.add_argument("--save-every", type=int, default=500)
    t.add_argument("--cache-limit", type=int, default=20000)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--workers", type=int, default=0,
                   help="DataLoader worker processes making batches (0: in this process, exactly resumable)")
    t.add_argument("--bf16", choices=["auto", "off"], default="auto", help="bf16 autocast of the backbone on CUDA")

    for name in ("evaluate", "calibrate"):
        e = sub.add_parser(name, help="metrics, ROC and report" if name == "evaluate" else "fit thresholds into a manifest")
        e.add_argument("--checkpoint")
        e.add_argument("--data")
        e.add_argument("--domains", type=_csv, default=None)
        e.add_argument("--scores", help="JSON from a previous evaluate (its 'scores' key) instead of a model")
        e.add_argument("--out", default=None, help="folder for report.json, roc.png and scores.json")
        e.add_argument("--target", default="eer", help="'eer' or a target BPCER such as 0.01")
        e.add_argument("--var-quantile", type=float, default=0.99, help="share of bona fide var kept under var_max")
        e.add_argument("--kl-quantile", type=float, default=0.99, help="share of bona fide delta_kl kept under its max")
        e.add_argument("--device", default="auto")
        if name == "evaluate":
            e.add_argument("--record", default=None, help="also store the metrics under provenance.metrics.<KEY> of --manifest")
        e.add_argument("--manifest", required=name == "calibrate",
                       help="calibrate: manifest to write thresholds into; evaluate: use its thresholds")

    w = sub.add_parser("sweep", help="choose the test-time latent step on validation data")
    w.add_argument("--checkpoint", required=True)
    w.add_argument("--data", required=True)
    w.add_argument("--domains", type=_csv, default=None)
    w.add_argument("--out", default=None, help="JSON with the rows and the chosen setting (export --test-time)")
    w.add_argument("--device", default="auto")

    x = sub.add_parser("export", help="one ONNX graph (+fp16) and its manifest")
    x.add_argument("--checkpoint", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--name", default=None)
    x.add_argument("--file", default="model.onnx")
    x.add_argument("--purpose", default="production")
    x.add_argument("--description", default="")
    x.add_argument("--provenance", default=None, help="JSON file merged into the manifest's provenance")
    x.add_argument("--test-time", default=None, help="sweep JSON (python3 -m fghv sweep --out): its chosen step rule and size")

    v = sub.add_parser("make-vectors", help="write test/vectors/alignment.json")
    v.add_argument("--out", default="../../test/vectors/alignment.json")
    v.add_argument("--checkpoint", help="also write reference outputs of this model's exported graph")
    v.add_argument("--onnx", help="the exported graph of --checkpoint")
    v.add_argument("--name", default="fghv-demo", help="vector file name for --checkpoint")
    v.add_argument("--crops", default=None, help="dataset root: also add a few of its aligned crops as parity inputs")

    r = sub.add_parser("real-samples", help="per-frame outputs on ../shared/data/images T1/F1/F2")
    r.add_argument("--manifest", required=True)
    r.add_argument("--images", default="../../../shared/data/images")
    r.add_argument("--yunet", default="../../../shared/data/models/yunet_s_640_640.onnx")
    r.add_argument("--out", default=None)

    d = sub.add_parser("demo-data", help="synthetic live/print/replay crops from Debian's portraits")
    d.add_argument("--out", required=True)
    d.add_argument("--size", type=int, default=128)
    d.add_argument("--per-domain", default="camA=2000,camB=2000,camC=600")
    d.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("prepare", help="detect and align faces of raw frames into the training layout")
    p.add_argument("--src", required=True, help="ROOT/<domain>/<live|spoof>/<video>/<frame> of raw frames")
    p.add_argument("--yunet", required=True)
    p.add_argument("--min-score", type=float, default=0.5)

    i = sub.add_parser("import", help="a public dataset as shipped -> the training layout (importers.py)")
    i.add_argument("dataset", choices=["oulu-npu", "casia-fasd", "replay-attack", "msu-mfsd"])
    i.add_argument("--root", required=True, help="the release folder as extracted from its archive")
    i.add_argument("--out", required=True, help="DATA: writes DATA/<domain>/<live|spoof>/<video>/")
    i.add_argument("--yunet", default="../../../shared/data/models/yunet_s_640_640.onnx")
    i.add_argument("--frames", type=int, default=10, help="evenly spaced frames sampled per video")
    i.add_argument("--workers", type=int, default=2, help="worker processes")
    i.add_argument("--min-score", type=float, default=0.5)
    i.add_argument("--max-side", type=int, default=640, help="frames stored with their longer side at most this")
    i.add_argument("--domain", default=None, help="domain name (default oulu, casia, replay, msu)")

    b = sub.add_parser("ablation", help="cross-domain ablation on the simulator (EXPERIMENTS.md)")
    b.add_argument("--out", default="runs/ablation")
    b.add_argument("--seeds", default="0,1,2")
    b.add_argument("--steps", type=int, default=1500)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--scale", type=float, default=1.0, help="scale the data set sizes (tests use a small one)")
    b.add_argument("--crop", type=int, default=64, help="crop side in pixels (the simulated scene is twice that)")

    o = sub.add_parser("protocol", help="train, sweep, export, calibrate and evaluate one cross-dataset protocol")
    o.add_argument("--data", required=True, help="DATA written by `import` (domains oulu, casia, replay, msu)")
    o.add_argument("--train", type=_csv, required=True, help="source domains, e.g. oulu,casia,replay")
    o.add_argument("--test", required=True, help="target domain, e.g. msu")
    o.add_argument("--out", required=True)
    o.add_argument("--steps", type=int, default=20000)
    o.add_argument("--device", default="auto")
    o.add_argument("--objective", choices=["fghv", "ce"], default="fghv")
    o.add_argument("--family", default="lite")
    o.add_argument("--size", type=int, default=None)
    o.add_argument("--width", type=float, default=None)
    o.add_argument("--gen-hidden", type=int, default=512)
    o.add_argument("--batch", type=int, default=32)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--workers", type=int, default=0)
    o.add_argument("--threads", type=int, default=0)
    o.add_argument("--test-split", choices=["test", "all"], default="test", help="target videos: its test split or all")
    o.add_argument("--target", default="eer", help="calibration target on the source validation split: eer or a BPCER")
    o.add_argument("--purpose", default="production", help="manifest purpose of the exported model")
    return ap


def options(cmd: str, **kw) -> SimpleNamespace:
    """The namespace `python3 -m fghv CMD ...` would parse: every option at its CLI default,
    overridden by kw (option names with underscores). Unknown names and missing required ones raise."""
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction)).choices.get(cmd)
    if sub is None:
        raise ValueError(f"fghv: no command {cmd!r}")
    acts = {a.dest: a for a in sub._actions if a.dest != "help"}
    unknown = sorted(set(kw) - set(acts))
    if unknown:
        raise ValueError(f"fghv {cmd}: unknown option(s) {', '.join(unknown)}")
    missing = sorted(d for d, a in acts.items() if a.required and d not in kw)
    if missing:
        raise ValueError(f"fghv {cmd}: missing required option(s) {', '.join(missing)}")
    return SimpleNamespace(cmd=cmd, **{d: kw.get(d, a.default) for d, a in acts.items()})
