"""Write ``data_example/nusax/``: a small sample of NusaX-Senti in the release layout, for the README's task example
and the tests (the full release is read from ``--data-dir``, never vendored).

    python data_example/make_nusax_sample.py RELEASE/datasets/sentiment [--out data_example/nusax]

Per split a seeded sample stratified by label (:func:`midalign.data.subsets.sample_ids`, seed 0) of the English
ids -- 24 train, 9 valid, 24 test -- and the same ids in Indonesian, Javanese and Sundanese, rows in the release's
order and format (``id,text,label``). NusaX (Winata et al., EACL 2023) is CC BY-SA 4.0: the licence is copied
beside the sample, and the sample is shared alike.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil

from midalign.data.subsets import sample_ids
from midalign.tasks.spec import get_label_task, id_order

LANGS = ("english", "indonesian", "javanese", "sundanese")
SIZES = {"train": 24, "dev": 9, "test": 24}
FILES = {"train": "train.csv", "dev": "valid.csv", "test": "test.csv"}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("release", help="the release's datasets/sentiment folder")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "nusax"))
    args = p.parse_args(argv)
    task = get_label_task("nusax")
    for split, size in SIZES.items():
        pivot = task.load("english", split, args.release)
        labels = {it.id: it.label for it in pivot}
        keep = set(sample_ids(id_order(labels), size, 0, labels))
        for lang in LANGS:
            os.makedirs(os.path.join(args.out, lang), exist_ok=True)
            rows = [it for it in task.load(lang, split, args.release) if it.id in keep]
            with open(os.path.join(args.out, lang, FILES[split]), "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["id", "text", "label"])
                writer.writerows([it.id, it.text, it.label] for it in rows)
    shutil.copy(os.path.join(args.release, "..", "LICENSE"), os.path.join(args.out, "LICENSE"))
    print(f"wrote {len(LANGS)} languages x {SIZES} to {args.out}")


if __name__ == "__main__":
    main()
