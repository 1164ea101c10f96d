"""Loading parallel sentences in several languages: a JSON-lines file with one field per language, aligned
plain-text files, or FLORES+ from the hub (``openlanguagedata/flores_plus``)."""

from __future__ import annotations

__all__ = ["FLORES_HUB_ID", "load_parallel"]

FLORES_HUB_ID = "openlanguagedata/flores_plus"


def _from_jsonl(path: str, langs: list[str] | None, split: str | None) -> dict[str, list[str]]:
    from ..data.jsonl import json_lines

    rows = list(json_lines(path))
    for where, row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a row must be a JSON object with one field per language")
    if split is not None:
        rows = [(w, r) for w, r in rows if r.get("split") == split]
    if not rows:
        raise ValueError(f"{path}: no rows" + (f" with split={split!r}" if split else ""))
    available = [k for k, v in rows[0][1].items() if isinstance(v, str) and k not in ("split", "id")]
    langs = langs or available
    missing = [lang for lang in langs if lang not in rows[0][1]]
    if missing:
        raise ValueError(f"{path}: no field for languages {missing}; the file has {available}")
    for where, row in rows:  # every row, not the first only: a sentence per language, as text
        for lang in langs:
            if not isinstance(row.get(lang), str):
                problem = "missing" if lang not in row else f"{row[lang]!r}, not a string"
                raise ValueError(f"{where}: field {lang!r} is {problem} (every row needs a sentence per language)")
    return {lang: [r[lang] for _, r in rows] for lang in langs}


def _from_files(spec: str) -> dict[str, list[str]]:
    out = {}
    for item in spec.split(","):
        if "=" not in item:
            raise ValueError(f"--files expects lang=path[,lang=path...], got {item!r}")
        lang, path = item.split("=", 1)
        with open(path, encoding="utf-8") as fh:
            out[lang.strip()] = [line.rstrip("\n") for line in fh]
    lengths = {lang: len(v) for lang, v in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"--files must be line-aligned, but their line counts differ: {lengths}")
    return out


def _from_flores(langs: list[str], split: str, revision: str | None) -> dict[str, list[str]]:
    from datasets import load_dataset

    out = {}
    for lang in langs:  # FLORES+ codes, e.g. eng_Latn, deu_Latn, zho_Hans
        ds = load_dataset(FLORES_HUB_ID, lang, split=split, revision=revision)
        if "id" in ds.column_names:  # sentence i of every language = the row with id i
            ds = ds.sort("id")
        out[lang] = list(ds["text"])
    return out


def load_parallel(
    path: str | None = None,
    *,
    langs: list[str] | None = None,
    split: str | None = None,
    files: str | None = None,
    flores: list[str] | None = None,
    flores_split: str = "devtest",
    revision: str | None = None,
    limit: int | None = None,
) -> dict[str, list[str]]:
    """{lang: sentences}, row i of every language being translations of each other."""
    if sum(x is not None for x in (path, files, flores)) != 1:
        raise ValueError("give exactly one of --input (JSON lines), --files or --flores")
    if path is not None:
        data = _from_jsonl(path, langs, split)
    elif files is not None:
        data = _from_files(files)
    else:
        data = _from_flores(flores, flores_split, revision)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"--limit must be an integer >= 1 (the first N sentences; omit it for all), got {limit!r}")
    if len(data) < 2:
        raise ValueError(f"need sentences in at least 2 languages, got {list(data)}")
    if not any(data.values()):
        source = path or files or ",".join(flores or ())
        raise ValueError(f"{source}: no sentences (every language is empty)")
    if limit is not None:
        data = {k: v[:limit] for k, v in data.items()}
    return data
