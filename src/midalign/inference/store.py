"""The resumable output store of generation and scoring, and the distributed setup: JSON-lines rows appended a batch
at a time, a torn last line dropped on reading, provenance beside the file (resume refused when it differs), per-rank
part files folded into the output, and the final rewrite in input order."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch

__all__ = [
    "read_done",
    "write_in_input_order",
    "provenance_path",
    "stored_provenance",
    "init_distributed_from_env",
    "part_path",
]


def read_done(path: str) -> dict[str, dict]:
    """Rows already written to ``path`` by id. Rows of a batch that was not written whole (a run killed while
    writing) are dropped from the file, so that the resumed run re-forms exactly the same batches."""
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    if lines and lines[-1].strip():  # torn last line
        lines = lines[:-1]
    rows = []
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{lineno}: not a JSON line; remove the file to start over") from None
    counts: dict[int, int] = {}
    for r in rows:
        if "_batch" in r:
            counts[r["_batch"]] = counts.get(r["_batch"], 0) + 1
    keep = [r for r in rows if "_batch" not in r or counts[r["_batch"]] == r["_batch_len"]]
    if len(keep) != len(rows) or not data.endswith(b"\n") and data:
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
    return {str(r["id"]): r for r in keep}


def write_in_input_order(output_path: str, done: dict[str, dict], ids: Sequence[str]) -> list[dict]:
    """Rewrite ``output_path`` atomically with the rows of ``ids`` in that order, without the resume bookkeeping
    (``_batch``, ``_batch_len``); returns those rows."""
    ordered = [{k: v for k, v in done[i].items() if k not in ("_batch", "_batch_len")} for i in ids]
    tmp = output_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered)
    os.replace(tmp, output_path)
    return ordered


def provenance_path(output_path: str) -> str:
    return output_path + ".run.json"


def stored_provenance(output_path: str) -> dict | None:
    """The provenance recorded beside ``output_path`` (its ``.run.json``), or None when there is none."""
    meta = provenance_path(output_path)
    if not os.path.isfile(meta):
        return None
    with open(meta, encoding="utf-8") as fh:
        try:
            record = json.load(fh)
        except ValueError as err:  # a torn or hand-edited record: one line naming it, not a bare JSON error
            raise ValueError(
                f"{meta}: not a provenance record ({err}); remove it and its output to start over"
            ) from None
    if not isinstance(record, dict):
        raise ValueError(f"{meta}: not a provenance record (expected a JSON object)")
    return record.get("provenance")


def _check_resume(output_path: str, done: dict[str, dict], rows: list[dict], provenance: dict | None) -> None:
    """Refuse to finish a file that another run (other prompts, model, adapters or settings) started."""
    start_over = f"remove {output_path} (and {provenance_path(output_path)}) to start over, or choose another path"
    if done:
        prompts = {str(r["id"]): r["prompt"] for r in rows}
        changed = [i for i, r in done.items() if "prompt" in r and r["prompt"] != prompts[i]]
        if changed:
            raise ValueError(
                f"{output_path}: {len(changed)} stored row(s) were generated from other prompts (first id "
                f"{changed[0]}): another template, task or data; {start_over}"
            )
    if provenance is None:
        return
    meta = provenance_path(output_path)
    stored = stored_provenance(output_path)
    if done and stored != provenance:
        if stored is None:
            raise ValueError(f"{output_path}: holds rows of a run that recorded no provenance; {start_over}")
        diff = sorted(k for k in set(stored) | set(provenance) if stored.get(k) != provenance.get(k))
        detail = "; ".join(f"{k}: {stored.get(k)!r} -> {provenance.get(k)!r}" for k in diff)
        raise ValueError(f"{output_path}: its rows were made by another run ({detail}); {start_over}")
    tmp = meta + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"provenance": provenance}, fh, indent=1, ensure_ascii=False)
    os.replace(tmp, meta)


def init_distributed_from_env() -> tuple[int, int]:
    """Join the process group a launcher (``torchrun``, ``accelerate launch``) describes in the environment, when it
    describes more than one process; returns (rank, world size). gloo on CPU, nccl on GPUs."""
    import datetime

    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        # ranks meet only at the start and the end: allow a long generation in between
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=24))
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


def _distributed():
    """(process group module, rank, world size) when running under torch.distributed with > 1 process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist, dist.get_rank(), dist.get_world_size()
    return None, 0, 1


def part_path(output_path: str, rank: int, world_size: int) -> str:
    """Where rank ``rank`` of a ``world_size``-process run writes its share (folded into the output at the end)."""
    return f"{output_path}.part-{rank}-of-{world_size}"


def _fold_parts(output_path: str) -> None:
    """Append the complete rows of every part file a multi-process run left (a killed one included, any number of
    processes) to ``output_path``, then remove the parts."""
    import glob

    parts = sorted(glob.glob(glob.escape(output_path) + ".part-*-of-*"))
    if not parts:
        return
    read_done(output_path)  # repair a torn last line before appending
    with open(output_path, "a", encoding="utf-8") as fh:
        for part in parts:
            for row in read_done(part).values():
                row = {k: v for k, v in row.items() if k not in ("_batch", "_batch_len")}  # complete rows
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    for part in parts:
        os.remove(part)
