"""The experiment harness shared by the real-data and synthetic experiments (xSID, methods, SIB-200, transfer).

What every experiment needs and nothing task-specific: atomic JSON/JSON-lines writes, resumable runs (a run is
skipped when its ``result.json`` exists), training through the real entry point, summary statistics with intervals
(bootstrap over items and seeds, paired differences), Pearson r, and the shared command-line flags.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence

from ..data.jsonl import claim_results, write_json, write_jsonl, write_text

__all__ = [
    "write_json",
    "write_jsonl",
    "read_json",
    "run_once",
    "reuse_results",
    "validate_run",
    "claim_work_dir",
    "claim_results",
    "publish",
    "train",
    "mean_sd",
    "pearson",
    "bootstrap_f1_ci",
    "train_dtype",
    "experiment_cli",
]

# Results go here unless --fig-dir says otherwise; the committed ``fig/`` is written only on purpose
# (``--fig-dir fig --overwrite``, the Makefile's regeneration targets), never by a user's first run.
FIG_DIR = "outputs/fig"


def read_json(path: str):
    """The JSON in ``path``; a file that is not JSON (empty, cut short) is a ValueError naming it."""
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e}); remove it (or rerun what wrote it)") from None


def run_once(
    out_dir: str, label: str, fn: Callable[[], dict], check: Callable[[dict, str], None] | None = None
) -> dict:
    """``<out_dir>/result.json`` if an earlier invocation wrote it, else ``fn()`` written there (atomically) once
    done: an interrupted experiment resumes at the first unfinished run. ``check(result, where)``: raises on a
    finished result that is not one (e.g. :func:`validate_run`), before it counts."""
    done = os.path.join(out_dir, "result.json")
    if os.path.isfile(done):
        print(f"{label}: done earlier ({done})", flush=True)
        result = read_json(done)
        if check is not None:
            check(result, done)
        return result
    t0 = time.time()
    result = fn()
    result.setdefault("seconds", time.time() - t0)
    result.setdefault("finished", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # vs the plan's time
    write_json(done, result)
    return result


def reuse_results(
    results_file: str,
    work_dir: str,
    config: dict,
    run_dir: Callable[[dict], str],
    *,
    free: tuple[str, ...] = ("seeds", "methods"),
    per_run: tuple[str, ...] = (),
    check: Callable[[dict, str], None] | None = None,
) -> list[str]:
    """Put the finished runs of an earlier invocation's results file (``fig/<name>.json``, committed where the work
    dir is not) back into ``work_dir`` as ``result.json`` files, so that :func:`run_once` skips them and only the
    runs missing from the file are run.

    Refused unless the file was written by the same settings: every key of its ``config`` other than ``free`` (the
    seeds and methods, which may grow) must equal ``config``'s. A run already finished in ``work_dir`` is kept as it
    is. The file's ``base`` entry, if any, goes to ``<work_dir>/base``. Each reused result records ``reused_from``.
    ``per_run``: settings that may differ too because each run records its own (e.g. the compute dtype, which
    depends on the machine); a reused run without one takes the file's value. ``check(run, where)``: raises on a run
    that is not a finished one (:func:`validate_run`); every run is checked, and must land inside ``work_dir``,
    before anything is written.

    Returns:
        The directories written.
    """
    if not os.path.isfile(results_file):
        raise FileNotFoundError(f"--reuse-results {results_file}: no such file")
    try:
        old = read_json(results_file)
        old_config, runs = old["config"], old["runs"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"--reuse-results {results_file}: not an experiment results file (JSON with 'config' and 'runs'): {e}"
        ) from None
    detail = _settings_differ(old_config, config, (*free, *per_run))
    if detail:
        raise ValueError(f"--reuse-results {results_file}: written with other settings ({detail}); rerun instead")
    if not isinstance(runs, list):
        raise ValueError(f"--reuse-results {results_file}: 'runs' is not a list")
    root = os.path.realpath(work_dir)
    entries = []
    for i, run in enumerate(runs):
        where = f"--reuse-results {results_file}: runs[{i}]"
        if check is not None:
            check(run, where)
        else:
            _finite_numbers(run, where)
        out_dir = os.path.join(work_dir, run_dir(run))
        if os.path.commonpath([root, os.path.realpath(out_dir)]) != root or os.path.realpath(out_dir) == root:
            raise ValueError(f"{where}: its directory {run_dir(run)!r} is not inside --output-dir {work_dir}")
        entries.append((out_dir, {k: old_config.get(k) for k in per_run} | run))
    if "base" in old:
        if not isinstance(old["base"], dict):
            raise ValueError(f"--reuse-results {results_file}: 'base' is not a JSON object")
        _finite_numbers(old["base"], f"--reuse-results {results_file}: base")
        entries.insert(0, (os.path.join(work_dir, "base"), old["base"]))
    written = []
    for out_dir, result in entries:
        done = os.path.join(out_dir, "result.json")
        if os.path.isfile(done):
            continue
        write_json(done, {**result, "reused_from": os.path.abspath(results_file)})
        written.append(out_dir)
    return written


def _finite_numbers(obj, where: str) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where}: non-finite number {obj}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite_numbers(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _finite_numbers(v, f"{where}[{i}]")


def validate_run(
    run, where: str, methods: Sequence[str], needed: Callable[[str], Sequence[str]], *, key: str = "method"
) -> None:
    """Refuse a finished run's record that is not one, naming ``where`` (file and run): not a JSON object, a
    ``key`` (``method``, or ``arm`` for the protocol's units) not in ``methods``, a ``seed`` that is not an integer, a
    field of ``needed(method)`` missing, or a non-finite number. The one check of every experiment's reused
    (``--reuse-results``) and resumed runs."""
    if not isinstance(run, dict):
        raise ValueError(f"{where}: a run must be a JSON object, got {type(run).__name__}")
    method = run.get(key)
    if not isinstance(method, str) or method not in methods:
        raise ValueError(f"{where}: unknown {key} {method!r} (known: {', '.join(methods)})")
    seed = run.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"{where}: seed {seed!r} is not an integer")
    missing = [k for k in needed(method) if k not in run]
    if missing:
        raise ValueError(f"{where}: not a finished {method} run (missing {', '.join(missing)})")
    _finite_numbers(run, where)


def _settings_differ(old: dict, new: dict, free: Sequence[str]) -> str:
    """``"key: file X vs now Y, ..."`` for every setting outside ``free`` that differs ("" if none)."""
    norm = json.loads(json.dumps(new))  # tuples as lists, as in a JSON file
    differ = sorted(k for k in set(norm) | set(old) if k not in free and norm.get(k) != old.get(k))
    return ", ".join(f"{k}: file {old.get(k)!r} vs now {norm.get(k)!r}" for k in differ)


def claim_work_dir(
    work_dir: str, config: dict, *, free: tuple[str, ...] = ("seeds", "methods"), per_run: tuple[str, ...] = ()
) -> dict:
    """Record ``config`` in ``<work_dir>/experiment.json``, or check it against the one there, and return the work
    dir's plan record (``plan.json``: every setting but ``free`` and ``per_run``, the code commit and when it was
    written; status ``exploratory``, since these experiments are not preregistered -- ``experiment powered`` is).

    Finished runs in a work dir are reused by :func:`run_once`; reusing runs of *other* settings would mix two
    experiments in one table. So a work dir written with other settings is refused (naming each one that differs);
    only ``free`` (the seeds and methods, which may grow) and ``per_run`` (settings each run records itself) may
    change. A work dir of an older version (runs but no ``experiment.json``) is adopted.
    """
    path = os.path.join(work_dir, "experiment.json")
    if os.path.isfile(path):
        try:
            old = read_json(path)["config"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not an experiment record (JSON with 'config'): {e}; remove it") from None
        detail = _settings_differ(old, config, (*free, *per_run))
        if detail:
            raise ValueError(
                f"--output-dir {work_dir}: its finished runs were made with other settings ({detail}); give another "
                "--output-dir, or the same settings to resume"
            )
    write_json(path, {"config": config})
    from .plan import write_plan

    fixed = {k: v for k, v in config.items() if k not in (*free, *per_run)}
    return write_plan(work_dir, {"settings": fixed}, status="exploratory")


def publish(fig_dir: str, name: str, result: dict, *, table: str | None = None, plot: Callable | None = None):
    """Write ``<name>.json`` (atomically; NaN refused), ``<name>.md`` (``table``, also printed) and ``<name>.png``
    (``plot(path)``) under ``fig_dir``; :func:`claim_results` checked them at the start."""
    write_json(os.path.join(fig_dir, f"{name}.json"), result)
    if table is not None:
        write_text(os.path.join(fig_dir, f"{name}.md"), table)
        print(table)
    if plot is not None:
        try:
            import matplotlib  # noqa: F401  (the ``analysis`` extra)
        except ImportError:
            # the results are the JSON and the table; a missing figure never costs them (nor blocks a rerun)
            print(f"{name}.png skipped: matplotlib is not installed (pip install 'midalign[analysis]')", flush=True)
            return
        plot(os.path.join(fig_dir, f"{name}.png"))


def train(argv: list[str]):
    """Run the training command (``run_training``) on ``argv``; returns the trainer."""
    from ..training.run import parse_args, run_training

    return run_training(*parse_args(argv))


def mean_sd(values: Sequence[float]) -> list[float]:
    """``[mean, sample sd]`` (sd 0 for one value), a list as in JSON."""
    return [statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0]


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or statistics.pstdev(x) == 0 or statistics.pstdev(y) == 0:
        return None
    return statistics.correlation(x, y)


def _percentile(sorted_values: list[float], q: float) -> float:
    i = min(max(int(round(q * (len(sorted_values) - 1))), 0), len(sorted_values) - 1)
    return sorted_values[i]


def _seed_item_interval(seeds: list, sizes: dict, stat: Callable, resamples: int, seed: int, level: float):
    """``[low, high]``: the percentile interval of ``stat(drawn seeds, {key: item indices})`` over ``resamples``
    draws of the seeds with replacement and, per key of ``sizes`` (its item count), of the items with replacement
    (the same indices for every drawn seed: items are shared across seeds)."""
    rng = random.Random(seed)
    stats = []
    for _ in range(resamples):
        drawn = [seeds[rng.randrange(len(seeds))] for _ in seeds]
        stats.append(stat(drawn, {k: [rng.randrange(n) for _ in range(n)] for k, n in sizes.items()}))
    stats.sort()
    alpha = (1 - level) / 2
    return [_percentile(stats, alpha), _percentile(stats, 1 - alpha)]


def _group_f1(counts: dict, seeds: list, langs: list, idx: dict) -> float:
    """Mean over ``seeds`` of the mean over ``langs`` of micro-F1 ``2c / (p + g)`` of the sentences ``idx[lang]``."""
    total = 0.0
    for s in seeds:
        f1s = []
        for lang in langs:
            rows = counts[s][lang]
            c = sum(rows[i][0] for i in idx[lang])
            pg = sum(rows[i][1] + rows[i][2] for i in idx[lang])
            f1s.append(2 * c / pg if pg else 0.0)
        total += sum(f1s) / len(f1s)
    return total / len(seeds)


def train_dtype(extra_args: Sequence[str]) -> str:
    """The compute dtype a bench's training runs in: ``bfloat16`` when its extra training flags ask for it
    (``--bf16 True`` or ``--torch_dtype bfloat16``), else ``float32`` (the default of ``midalign train``)."""
    args = [a for arg in extra_args for a in str(arg).split("=", 1)]
    dtype = "float32"
    for flag, value in zip(args, args[1:]):
        if flag == "--bf16" and value.lower() in ("true", "1", "yes"):
            dtype = "bfloat16"
        elif flag == "--torch_dtype" and value not in ("auto",):
            dtype = value
    return dtype


def bootstrap_f1_ci(
    a: dict[int, dict[str, list]],
    b: dict[int, dict[str, list]] | None = None,
    *,
    langs: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[float]:
    """Span micro-F1 averaged over ``langs`` and seeds (``a``), or the paired difference ``a - b`` (same seeds,
    languages and sentences), with a percentile bootstrap interval that resamples seeds and, per language, sentences
    (the same sentence indices for every seed and both sides). Sentence ``i`` is the same parallel sentence in every
    language, so one drawn index counts in every language at once (a cluster), which needs the same number of
    sentences in every language. F1 is a ratio of sums, not a mean of per-sentence scores, so each resample
    recomputes it from the per-sentence ``[correct, predicted, gold]`` span counts.

    Args:
        a: ``{seed: {lang: [[correct, predicted, gold] per sentence]}}``.
        b: the other side of a paired difference, the same shape (None: ``a``'s own F1).
        langs: the languages averaged.
    Returns:
        ``[value, low, high]``.
    """
    seeds = sorted(a)
    if b is not None and sorted(b) != seeds:
        raise ValueError(f"paired bootstrap needs the same seeds on both sides; got {seeds} and {sorted(b)}")
    sizes = {lang: len(a[seeds[0]][lang]) for lang in langs}
    for side in (a, b) if b is not None else (a,):
        if any(len(side[s][lang]) != sizes[lang] for s in seeds for lang in langs) or 0 in sizes.values():
            raise ValueError("bootstrap: every seed and side needs the same non-zero number of sentences per language")
    if len(set(sizes.values())) != 1:
        raise ValueError(f"clustered bootstrap: the languages hold different numbers of sentences ({sizes}); "
                         "sentence i must be the same parallel sentence in every language")  # fmt: skip
    n = next(iter(sizes.values()))

    def stat(drawn, idx):
        shared = {lang: idx[None] for lang in langs}
        value = _group_f1(a, drawn, list(langs), shared)
        return value - _group_f1(b, drawn, list(langs), shared) if b is not None else value

    point = stat(seeds, {None: range(n)})
    return [point, *_seed_item_interval(seeds, {None: n}, stat, resamples, seed, level)]


def add_config_flags(p: argparse.ArgumentParser, cfg_cls, *, skip: Sequence[str] = (),
                     choices: dict[str, Sequence[str]] | None = None, defaults=None,
                     helps: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """One flag per field of the config dataclass ``cfg_cls`` (but ``skip``), spelled in the one vocabulary
    (:func:`midalign.vocabulary.flag`: ``steps`` -> ``--max-steps``), typed from the field's annotation: numbers,
    strings (``choices`` restrict a field's values), booleans (``--x`` / ``--no-x``) and tuples (comma-separated).
    Every flag defaults to None (= the config's own default, shown in the help unless ``helps`` gives a field its
    own text, or ``defaults``'s). Returns the
    field names given flags: what was set is then ``{f: v for f in names if (v := getattr(args, f)) is not None}``
    (tuples still comma-separated text: :func:`config_overrides` splits them)."""
    from dataclasses import MISSING, fields

    from ..vocabulary import flag

    names = []
    for f in fields(cfg_cls):
        if f.name in skip or f.name.isupper() or str(f.type).startswith(("list", "dict")):
            continue
        typ = str(f.type)
        default = getattr(defaults, f.name) if defaults is not None else (
            f.default if f.default is not MISSING else f.default_factory())  # fmt: skip
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        kw = {"dest": f.name, "default": None, "help": (helps or {}).get(f.name, f"default: {shown}")}
        if typ == "bool":
            p.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, **kw)
            names.append(f.name)
            continue
        if typ.startswith("tuple"):
            kw["metavar"] = "A,B,..."
        elif typ.startswith("int"):
            kw["type"] = int
        elif typ.startswith("float"):
            kw["type"] = float
        if f.name in (choices or {}):
            kw["choices"] = list(choices[f.name])
        p.add_argument(flag(f.name), **kw)
        names.append(f.name)
    return names


def config_overrides(p: argparse.ArgumentParser, cfg_cls, args, names: Sequence[str]) -> dict:
    """The fields the user set (``add_config_flags``'s names), tuples split at commas and typed from their
    annotation (``tuple[int, ...]`` -> ints); a bad list is one parser error naming the flag."""
    from dataclasses import fields

    from ..vocabulary import flag

    types = {f.name: str(f.type) for f in fields(cfg_cls)}
    out = {}
    for name in names:
        value = getattr(args, name)
        if value is None:
            continue
        if types[name].startswith("tuple") and isinstance(value, str):
            items = tuple(x for x in value.split(",") if x)
            conv = int if "tuple[int" in types[name] else float if "tuple[float" in types[name] else str
            try:
                value = tuple(conv(x) for x in items)
            except ValueError:
                kind = {"int": "integers, e.g. 0,1,2", "float": "numbers, e.g. 0.5,1.0"}[conv.__name__]
                p.error(f"{flag(name)} {getattr(args, name)!r}: expected comma-separated {kind}")
        out[name] = value
    return out


def experiment_cli(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    cfg_cls,
    methods: tuple[str, ...],
    languages_help: str,
    quick_help: str,
    work_dir: str,
    switches: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
    data_help: str = "the xSID release folder (default $MIDALIGN_XSID_DIR)",
    aligned_help: str = "comma-separated aligned languages (default de,zh,ja,ar)",
    choices: dict[str, Sequence[str]] | None = None,
    skip: Sequence[str] = (),
):
    """Parse an experiment's flags into ``(config, args)``: one flag per field of ``cfg_cls``
    (:func:`add_config_flags`; ``pooling`` restricted to the library's poolings, ``methods`` to ``methods``), plus
    the run options (``switches``, ``options``, ``--output-dir``, ``--fig-dir``, ``--name``, ``--overwrite``);
    ``--quick`` starts from ``cfg_cls.quick``; ``skip``: fields the experiment does not read (no flag)."""
    from ..alignment import POOLING

    p = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
    p.add_argument("--quick", action="store_true", help=quick_help)
    helps = {"model": "model directory (default: the embedded gemma-3-270m)", "data_dir": data_help,
             "seeds": "comma-separated (default 0,1,2)", "aligned": aligned_help, "languages": languages_help,
             "methods": f"comma-separated subset of {','.join(methods)}"}  # fmt: skip
    names = add_config_flags(p, cfg_cls, skip=("extra_train_args", *skip), helps=helps,
                             choices={"pooling": sorted(POOLING), **(choices or {})})  # fmt: skip
    for switch, help_ in (switches or {}).items():  # run options, not config fields: read from the returned args
        p.add_argument(f"--{switch}", action="store_true", help=help_)
    for option, help_ in (options or {}).items():  # run options taking a value, likewise
        p.add_argument(f"--{option}", default=None, metavar="FILE", help=help_)
    p.add_argument("--output-dir", dest="work_dir", default=None,
                   help=f"the runs (resumable; default: {work_dir}, {work_dir}_quick with --quick)")  # fmt: skip
    p.add_argument("--fig-dir", default=FIG_DIR, help="results JSON, table and figure (default: %(default)s)")
    p.add_argument("--name", default=None, help="results file name (default: the experiment's)")
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --fig-dir")
    args = p.parse_args(argv)
    # a smoke run never shares the full run's work dir (its finished runs would block or pollute the real one)
    args.work_dir = args.work_dir or (f"{work_dir}_quick" if args.quick else work_dir)
    overrides = config_overrides(p, cfg_cls, args, names)
    bad = [m for m in overrides.get("methods", ()) if m not in methods]
    if bad:
        p.error(f"--methods {bad}: choose from {', '.join(methods)}")
    return (cfg_cls.quick(**overrides) if args.quick else cfg_cls(**overrides)), args
