"""JSON-lines readers for the paper's data format, with validation that names file and line.

Task rows: ``{"prefix": <fully rendered prompt>, "text": <target>}``.
Alignment rows add ``{"text_parallel_0": <sentence>, "text_parallel_1": <its translation>}`` (raw, no template).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
from collections.abc import Iterable, Iterator, Sequence

__all__ = [
    "TASK_FIELDS",
    "PAIR_FIELDS",
    "DataFormatError",
    "ContrastiveDataMode",
    "split_files",
    "json_lines",
    "iter_rows",
    "read_rows",
    "count_rows",
    "write_jsonl",
    "write_json",
    "write_text",
    "claim_results",
]

TASK_FIELDS = ("prefix", "text")
PAIR_FIELDS = ("text_parallel_0", "text_parallel_1")
# Fields that must not be empty (a prompt may legitimately be empty; a target or a sentence may not).
_NON_EMPTY = {"text", "text_parallel_0", "text_parallel_1"}


class DataFormatError(ValueError):
    """A data file does not follow the expected format. The message starts with ``path:line:``."""


class ContrastiveDataMode(enum.IntEnum):
    """What each training row carries (the paper's ``--contrastive_data_mode``)."""

    TASK = 0  # {"prefix", "text"}
    PAIRS = 1  # {"text_parallel_0", "text_parallel_1"}
    TASK_AND_PAIRS = 2  # all four fields

    @property
    def fields(self) -> tuple[str, ...]:
        return {0: TASK_FIELDS, 1: PAIR_FIELDS, 2: TASK_FIELDS + PAIR_FIELDS}[int(self)]

    @property
    def has_task(self) -> bool:
        return self in (ContrastiveDataMode.TASK, ContrastiveDataMode.TASK_AND_PAIRS)

    @property
    def has_pairs(self) -> bool:
        return self in (ContrastiveDataMode.PAIRS, ContrastiveDataMode.TASK_AND_PAIRS)


def split_files(spec: str | Iterable[str] | None) -> list[str]:
    """``"a.json,b.json"`` or a list of such strings -> list of existing paths (error names the missing one)."""
    if spec is None:
        return []
    parts = [spec] if isinstance(spec, str) else list(spec)
    files = [f.strip() for part in parts for f in part.split(",") if f.strip()]
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError(f"data file not found: {f}")
    return files


def _validate(row: object, fields: tuple[str, ...], where: str, keep: tuple[str, ...] = ()) -> dict:
    if not isinstance(row, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in fields:
        if key not in row:
            raise DataFormatError(f"{where}: missing field {key!r} (rows need {list(fields)})")
        value = row[key]
        if not isinstance(value, str):
            raise DataFormatError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
        if key in _NON_EMPTY and not value.strip():
            raise DataFormatError(f"{where}: field {key!r} is empty")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise DataFormatError(
                f"{where}: field {key!r} holds a lone surrogate ({value[err.start]!r} at character {err.start}), "
                "which no tokenizer can encode; fix the escape sequence (e.g. \\ud83d without its pair)"
            ) from None
    out = {key: row[key] for key in fields}
    for key in keep:  # optional fields, kept when they are strings (e.g. a pair's "lang")
        if isinstance(row.get(key), str):
            out[key] = row[key]
    return out


def json_lines(path: str, lines: Iterable[str] | None = None) -> Iterator[tuple[str, object]]:
    """``("<path>:<line>", parsed row)`` for each non-blank line of a JSON-lines file (or of ``lines`` read from
    it), lazily; a malformed line is a :class:`DataFormatError` naming file, line and column."""
    if lines is None:
        with open(path, "rb") as raw:
            if raw.read(2) == b"\x1f\x8b":
                raise DataFormatError(f"{path}: a gzip file; decompress it first (JSON lines are read as UTF-8 text)")
        yield from json_lines(path, _utf8_lines(path))
        return
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{where}: malformed JSON ({err.msg} at column {err.colno})") from None
        yield where, row


def _utf8_lines(path: str) -> Iterator[str]:
    """Lines of ``path`` decoded as UTF-8; a byte that is not UTF-8 is an error naming its line."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    f"{path}:{lineno}: not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}); save the file "
                    "as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None


def iter_located_rows(
    files: str | Iterable[str], fields: tuple[str, ...], keep: tuple[str, ...] = ()
) -> Iterator[tuple[str, dict]]:
    """``("<file>:<line>", validated row)`` from JSON-lines files, lazily (see :func:`iter_rows`)."""
    for path in split_files(files):
        for where, row in json_lines(path):
            yield where, _validate(row, fields, where, keep)


def iter_rows(files: str | Iterable[str], fields: tuple[str, ...], keep: tuple[str, ...] = ()) -> Iterator[dict]:
    """Yield validated rows (only ``fields``, and the optional string fields ``keep`` where present) from
    JSON-lines files, lazily. Blank lines are skipped."""
    for _, row in iter_located_rows(files, fields, keep):
        yield row


def read_rows(files: str | Iterable[str], fields: tuple[str, ...], keep: tuple[str, ...] = ()) -> list[dict]:
    rows = list(iter_rows(files, fields, keep))
    if not rows:
        raise DataFormatError(f"{','.join(split_files(files))}: no data rows")
    return rows


def count_rows(files: str | Iterable[str]) -> int:
    """Number of non-blank lines, without parsing them (for the length of a streamed dataset)."""
    n = 0
    for path in split_files(files):
        with open(path, encoding="utf-8") as fh:
            n += sum(1 for line in fh if line.strip())
    return n


def _parent_exists(path: str) -> None:
    """A missing output directory named as the user gave it (not the temp file written first)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{path}: no such directory {os.path.dirname(path) or parent}; create it first")


def _atomic_write(path: str, write) -> None:
    """``write(fh)`` into a temp file of this process renamed over ``path``: a failure (or a refused value)
    leaves ``path`` as it was and no temp file; shards writing the same file never share a temp file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            write(fh)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_jsonl(path: str, rows) -> None:
    """All of ``rows`` to ``path`` atomically (a temp file renamed over it): a failure while ``rows`` are produced
    leaves ``path`` as it was, and no temp file."""
    _parent_exists(path)
    _atomic_write(path, lambda fh: fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_json(path: str, obj) -> None:
    """``obj`` to ``path`` atomically; NaN/inf are refused (they are not JSON)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _atomic_write(path, lambda fh: json.dump(obj, fh, indent=1, ensure_ascii=False, allow_nan=False))


def write_text(path: str, text: str) -> None:
    """``text`` to ``path`` atomically (a results table, a YAML task)."""
    _atomic_write(path, lambda fh: fh.write(text))


def claim_results(
    out_dir: str,
    name: str,
    overwrite: bool = False,
    exts: Sequence[str] = (".json", ".md", ".png"),
    flag: str = "--fig-dir",
) -> None:
    """Refuse, before anything runs, to replace an earlier run's results (``<out_dir>/<name><ext>``) unless
    ``overwrite`` (``--overwrite``): a run never silently replaces another's results."""
    existing = [p for p in (os.path.join(out_dir, name + e) for e in exts) if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(
            f"{flag} {out_dir}: {existing[0]} holds an earlier run's results; give another {flag} or --name, "
            "or --overwrite to replace them"
        )
