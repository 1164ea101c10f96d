"""The written plan of an experiment, and the provenance every run records against it.

``plan.json`` in the work dir holds what must be fixed before the first confirmatory result: arms, seeds, languages
and their roles, subsets, hyper-parameters, primary endpoint, stopping rule, and the code commit it was written at.
It is written once; a later invocation with another plan is refused naming what differs (a plan that changes after
results exist is no plan). Every run records the plan's hash, its own code commit, dtype, CPU and library versions
and when it finished, so a report can say whether any result predates the plan and refuse to compare runs of two
precisions.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterable, Mapping

from ..data.jsonl import write_json

__all__ = ["plan_hash", "code_version", "environment", "write_plan", "read_plan", "check_one_dtype", "timeline"]


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def plan_hash(plan: Mapping) -> str:
    """sha256 (first 16 hex digits) of the plan's canonical JSON."""
    return hashlib.sha256(_canonical(plan).encode()).hexdigest()[:16]


def code_version() -> dict:
    """``{"commit": HEAD of the checkout this package runs from (None outside git), "dirty": uncommitted changes to
    tracked files}``."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)  # fmt: skip
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment(dtype: str) -> dict:
    """What a run must record to be compared with another: dtype, CPU, library versions, code version."""
    import torch
    import transformers

    from ..models.hardware import cpu_description

    return {"dtype": dtype, "cpu": cpu_description(), "torch": torch.__version__,
            "transformers": transformers.__version__, "threads": torch.get_num_threads(),
            "code": code_version()}  # fmt: skip


def read_plan(work_dir: str) -> dict | None:
    path = os.path.join(work_dir, "plan.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        record["plan"], record["sha"]  # noqa: B018 -- the fields a plan record has
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a plan record (JSON with 'plan' and 'sha'): {e}") from None
    return record


def _differences(old, new, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: plan {old!r} vs now {new!r}"]


def write_plan(work_dir: str, plan: Mapping, *, status: str = "confirmatory") -> dict:
    """Write ``<work_dir>/plan.json`` (or check the one there) and return its record.

    ``status``: ``"confirmatory"`` or ``"exploratory"`` (a pilot or a smoke run; pages label its results so).
    Refused when a plan is there and differs in any field (each difference named).
    """
    if status not in ("confirmatory", "exploratory"):
        raise ValueError(f"plan status must be 'confirmatory' or 'exploratory', got {status!r}")
    plan = json.loads(_canonical(plan))  # tuples as lists, as read back
    record = read_plan(work_dir)
    if record is not None:
        diff = _differences(record["plan"], plan)
        if record.get("status") != status:
            diff.append(f"status: plan {record.get('status')!r} vs now {status!r}")
        if diff:
            raise ValueError(
                f"{os.path.join(work_dir, 'plan.json')}: this experiment's plan is fixed and differs from the "
                f"settings given ({'; '.join(diff[:8])}{' ...' if len(diff) > 8 else ''}); use another --output-dir "
                "for another plan"
            )
        return record
    record = {"plan": plan, "sha": plan_hash(plan), "status": status,
              "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "code": code_version()}  # fmt: skip
    write_json(os.path.join(work_dir, "plan.json"), record)
    return record


def check_one_dtype(runs: Iterable[Mapping], *, allow_mixed: bool = False) -> str:
    """The one dtype of ``runs`` (each records ``env.dtype`` or ``dtype``); runs of two precisions are refused
    unless ``allow_mixed`` (then ``"a/b"`` is returned and every table must say so)."""
    dtypes = sorted({(r.get("env") or {}).get("dtype") or r.get("dtype") or "unknown" for r in runs})
    if len(dtypes) > 1 and not allow_mixed:
        raise ValueError(
            f"the runs mix precisions ({', '.join(dtypes)}): a paired difference across dtypes mixes precision into "
            "the seed spread; rerun them in one dtype (or pass --allow-mixed-dtypes and say so)"
        )
    return "/".join(dtypes)


def timeline(plan_record: Mapping | None, runs: Iterable[Mapping]) -> dict:
    """When the plan was written, and how many runs finished before it (a confirmatory result must not)."""
    runs = list(runs)
    if plan_record is None:
        return {"plan_written": None, "runs_before_plan": None, "n_runs": len(runs)}
    written = plan_record["written"]
    before = [r for r in runs if r.get("finished") and r["finished"] < written]
    return {"plan_written": written, "plan_sha": plan_record["sha"], "status": plan_record.get("status"),
            "runs_before_plan": len(before), "n_runs": len(runs)}  # fmt: skip
