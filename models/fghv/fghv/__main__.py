"""python3 -m fghv {complexity,train,evaluate,calibrate,export,make-vectors,demo-data,prepare}"""

import json
import sys

from .cli import build_parser


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if a.cmd == "complexity":
        from .complexity import table

        print(json.dumps(table(a.family, a.size, a.width), indent=1))
    elif a.cmd == "train":
        from .train import train

        train(a)
    elif a.cmd in ("evaluate", "calibrate"):
        from .evaluate import run

        print(json.dumps(run(a), indent=1))
    elif a.cmd == "import":
        from .importers import run_import

        try:
            print(json.dumps(run_import(a.dataset, a.root, a.out, a.yunet, a.frames, a.workers, a.min_score,
                                        a.max_side, a.domain), indent=1))
        except (FileNotFoundError, ValueError) as e:  # wrong folder or layout: say so, no traceback
            print(f"fghv import: {e}", file=sys.stderr)
            return 2
    elif a.cmd == "protocol":
        from .protocol import run as protocol

        try:
            rep = protocol(a)
        except (FileNotFoundError, ValueError) as e:
            print(f"fghv protocol: {e}", file=sys.stderr)
            return 2
        print(json.dumps({k: rep[k] for k in ("protocol", "objective", "metrics")}, indent=1))
    elif a.cmd == "ablation":
        from .ablation import run as ablation

        ablation(a)
    elif a.cmd == "sweep":
        from .sweep import markdown, run

        res = run(a)
        print(markdown(res["rows"]))
        print(json.dumps(res["chosen"]))
    elif a.cmd == "export":
        from .export import export_cli

        print(json.dumps(export_cli(a), indent=1))
    elif a.cmd == "make-vectors":
        from .vectors import write_vectors

        write_vectors(a.out, a.checkpoint, a.onnx, a.name, a.crops)
    elif a.cmd == "real-samples":
        from .realsamples import run_real

        print(json.dumps(run_real(a), indent=1))
    elif a.cmd == "demo-data":
        from .data import make_demo_data

        per = {k: int(v) for k, v in (kv.split("=") for kv in _csv(a.per_domain))}
        print(json.dumps(make_demo_data(a.out, a.size, per, a.seed)))
    elif a.cmd == "prepare":
        from .prepare import prepare

        print(json.dumps(prepare(a.src, a.yunet, a.min_score)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
