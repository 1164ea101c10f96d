"""COMET scoring of a midalign translation output, in its own environment.

unbabel-comet pins transformers<5 and numpy<2, so it cannot share midalign's environment:

    python -m venv .venv-comet && .venv-comet/bin/pip install -r requirements-comet.txt
    .venv-comet/bin/python scripts/score_comet.py cs-en_wmt23.json [--model Unbabel/wmt22-comet-da | /path/ckpt]

Reads the JSON-lines output (fields src, ref, prediction), writes <output>.comet.json and the paper's
<src>-<tgt>_comet.txt next to it. Depends only on the standard library and unbabel-comet.
"""

import argparse
import json
import os
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="JSON-lines output of run_inference_eval_wmt23 (fields src, ref, prediction)")
    p.add_argument("--model", default="Unbabel/wmt22-comet-da", help="hub id or a local checkpoint (.ckpt)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--gpus", type=int, default=0)
    args = p.parse_args(argv)
    try:
        from comet import download_model, load_from_checkpoint
    except ImportError:
        sys.exit(
            "COMET is not installed in this environment. It needs its own (transformers<5, numpy<2):\n"
            "  python -m venv .venv-comet && .venv-comet/bin/pip install -r requirements-comet.txt\n"
            f"  .venv-comet/bin/python scripts/score_comet.py {args.output}"
        )
    rows = [json.loads(line) for line in open(args.output, encoding="utf-8") if line.strip()]
    missing = [i for i, r in enumerate(rows) if not {"src", "ref", "prediction"} <= set(r)]
    if missing:
        sys.exit(f"{args.output}: rows {missing[:5]} lack src/ref/prediction (written by an older version?)")
    rows.sort(key=lambda r: r.get("index", 0))
    if os.path.isfile(args.model):
        path = args.model
    else:
        try:
            path = download_model(args.model)
        except Exception as err:  # offline, unknown id, ...
            sys.exit(f"COMET checkpoint {args.model!r} is not available ({err}); pass --model /path/to/checkpoint.ckpt")
    model = load_from_checkpoint(path)
    data = [{"src": r["src"], "mt": " ".join(str(r["prediction"]).split("\n")).strip(), "ref": r["ref"]} for r in rows]
    result = model.predict(data, batch_size=args.batch_size, gpus=args.gpus)
    summary = {"mean_score": float(result.system_score), "model": args.model, "n": len(data)}
    with open(args.output + ".comet.json", "w") as fh:
        json.dump({**summary, "scores": [float(s) for s in result.scores]}, fh)
    stem = os.path.basename(args.output).split("_")[0]
    with open(os.path.join(os.path.dirname(os.path.abspath(args.output)), f"{stem}_comet.txt"), "w") as fh:
        fh.write(json.dumps(summary) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
