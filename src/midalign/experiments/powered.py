"""``midalign experiment powered``: does middle-layer alignment lift zero-shot transfer? Preregistered, powered,
with randomized language roles (issue 30's design), on any parallel label task (default SIB-200).

Phases, each resumable and each a sub-command (``--output-dir`` holds everything):

1. ``screen`` -- base-model retrieval x -> pivot on the *dev* split at the alignment layer, raw and centered, for
   every language on disk (embeddings only). :func:`select_languages` then applies the rule fixed in the config:
   drop languages the model cannot read (centered retrieval below ``screen_low``) and those without headroom (above
   ``screen_high``), then a seeded draw stratified over retrieval quartiles and, within them, over scripts; the
   selected languages are split at random into halves A and B, balanced within each quartile.
2. ``pilot`` -- exploratory seeds outside the confirmatory set choose the remedy, the alignment weight and gradient
   accumulation by English *dev* accuracy and dev retrieval only (:func:`choose_from_pilot`, a rule written here
   before any pilot result); nothing of the test split is read.
3. ``plan`` -- writes ``plan.json`` (arms, seeds, languages and roles, subsets, settings, endpoints, stopping rule,
   code commit); fixed from then on.
4. ``run`` -- the confirmatory units (arm, seed): even seeds align half A, odd seeds half B; every selected language
   and the pivot are evaluated in every seed on the whole test split. ``--run ARM:SEED`` or ``--shard K/N`` runs a
   slice (a job array on a cluster); finished units are skipped.
5. ``report`` -- merges the finished units (one plan, one dtype, one code commit checked), computes the endpoints
   with seed-level t-intervals and a clustered bootstrap, and writes ``<fig-dir>/<name>.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from ..data.jsonl import claim_results, write_json
from ..data.subsets import describe_subset
from ..models.default import file_sha256
from . import plan as planning
from . import stats
from .harness import add_config_flags, config_overrides, read_json
from .leakage import find_leaks
from .protocol import ARMS, TrainSettings, evaluate_labels, retrieval, seed_accuracy, train_unit, validate_unit_result

__all__ = ["PoweredConfig", "select_languages", "assign_roles", "choose_from_pilot", "stopping_rule", "main"]

WORK_DIR = "outputs/experiment_powered"


@dataclass(frozen=True)
class PoweredConfig:
    """Every setting of the powered experiment (all of it goes into ``plan.json``)."""

    task: str = "sib200"
    n_languages: int = 16
    screen_low: float = 0.10  # centered dev retrieval below this: the model cannot read the language
    screen_high: float = 0.90  # above this: no headroom
    screen_bins: int = 4  # retrieval quantile strata of the draw
    selection_seed: int = 2026
    role_seed: int = 2027
    arms: tuple[str, ...] = ("baseline_2x", "alignment", "alignment_center")
    seeds: tuple[int, ...] = tuple(range(30))  # every seed the stopping rule may reach, in the order they run
    first_seeds: int = 10  # the first confirmatory batch (5 per role assignment), run whatever it shows
    max_seeds: int = 30
    target_half_width: float = 0.015  # of the primary endpoint's 95% t-interval (accuracy, fraction)
    pilot_seeds: tuple[int, ...] = (1000, 1001)
    eval_split: str = "test"
    eval_size: int | None = None  # None: the whole split
    subset_seed: int = 0
    screen_split: str = "dev"
    retrieval_split: str = "test"
    dtype: str = "auto"
    eval_batch_size: int = 16
    keep_leaked: bool = False
    # LoRA dropout 0 for every arm (decided before any result): dropout costs ~19% of a training step, the
    # comparison is between arms that share it, and the paper's 0.1 was tuned for 7-8B models, not this budget.
    # With dropout 0 the shared system prompt of every task micro-batch runs once (exact, ~a third less task compute).
    # The alignment arms add their loss to every task micro-batch ("joint"): with the same seed they train on exactly
    # baseline_2x's task batches, so alignment - baseline_2x isolates the alignment term (the paper's "alternate"
    # discards the task examples of its alignment micro-batches: its task data would differ from the baseline's).
    train: TrainSettings = field(
        default_factory=lambda: TrainSettings(lora_dropout=0.0, share_task_prefix=True, alignment_schedule="joint")
    )

    def __post_init__(self):
        if self.n_languages < 2 or self.n_languages % (2 * self.screen_bins):
            raise ValueError(
                f"--n-languages {self.n_languages}: must be a positive multiple of 2 x {self.screen_bins} bins "
                "(each retrieval stratum splits evenly into the two role halves)"
            )
        if not 0 <= self.screen_low < self.screen_high <= 1:
            raise ValueError(f"screen bounds must satisfy 0 <= low < high <= 1, got {self.screen_low}, "
                             f"{self.screen_high}")  # fmt: skip
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ValueError(f"--arms {bad}: choose from {', '.join(ARMS)}")
        if self.eval_size is not None and self.eval_size < 1:
            raise ValueError(f"--eval-size must be >= 1 (or omitted for the whole split), got {self.eval_size}")
        if len(set(self.seeds)) != len(self.seeds) or set(self.seeds) & set(self.pilot_seeds):
            raise ValueError("confirmatory seeds must be distinct and disjoint from the pilot seeds")
        if not 2 <= self.first_seeds <= len(self.seeds) or self.first_seeds % 2:
            raise ValueError(f"--first-seeds {self.first_seeds}: an even number from 2 to the {len(self.seeds)} seeds")
        if self.max_seeds > len(self.seeds):
            raise ValueError(f"--max-seeds {self.max_seeds}: more than the {len(self.seeds)} seeds listed")


# ---- 1. the screen ---------------------------------------------------------------------------------------------------
def run_screen(cfg: PoweredConfig, model_path: str, data_dir: str, work_dir: str, dtype: str) -> dict:
    """Dev retrieval x -> pivot for every language on disk (resumable per language in ``screen.jsonl``)."""
    import json

    from ..alignment import num_decoder_layers
    from ..models import load_model, load_tokenizer
    from ..tasks.spec import get_label_task
    from ..training.arguments import default_alignment_layer

    task = get_label_task(cfg.task)
    langs = [x for x in task.languages(data_dir) if x != task.pivot]
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, "screen.jsonl")
    done = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    row = json.loads(line)
                    done[row["lang"]] = row
                except (ValueError, KeyError):
                    if line.endswith("\n"):
                        raise ValueError(f"{path}:{n}: not a screen row; remove the file to redo the screen") from None
    todo = [x for x in langs if x not in done]
    model = load_model(model_path, torch_dtype=None if dtype == "float32" else dtype)
    tokenizer = load_tokenizer(model_path)
    layer = cfg.train.layer or default_alignment_layer(num_decoder_layers(model))
    ids = [it.id for it in task.load(task.pivot, cfg.screen_split, data_dir)]
    t0 = time.time()
    cache: dict = {}
    with open(path, "a", encoding="utf-8") as fh:
        for i, lang in enumerate(todo):
            got = retrieval(model, tokenizer, task, data_dir, cfg.screen_split, [lang], ids, layer, cfg.train.pooling,
                            cache=cache)  # fmt: skip
            row = {"lang": lang, **got[lang]}
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            done[lang] = row
            print(f"screen {i + 1}/{len(todo)} {lang}: raw {row['raw']:.2f} centered {row['centered']:.2f} "
                  f"({time.time() - t0:.0f}s)", flush=True)  # fmt: skip
    result = {"split": cfg.screen_split, "layer": layer, "pooling": cfg.train.pooling, "n_items": len(ids),
              "languages": {x: {"raw": done[x]["raw"], "centered": done[x]["centered"]} for x in langs},
              "env": planning.environment(dtype)}  # fmt: skip
    write_json(os.path.join(work_dir, "screen.json"), result)
    return result


def _draw(pool: list[str], k: int, rng: random.Random, scripts: dict[str, int], codes: set[str]) -> list[str]:
    """``k`` languages from ``pool``: each draw among those whose script was drawn least often so far and whose
    language code (``zho`` of ``zho_Hans``) was not drawn yet."""
    from ..tasks.spec import language_script

    pool, picked = list(pool), []
    for _ in range(k):
        options = [x for x in pool if x.split("_")[0] not in codes]
        if not options:
            raise ValueError("the screen leaves too few distinct languages in a stratum")
        least = min(scripts.get(language_script(x), 0) for x in options)
        options = [x for x in options if scripts.get(language_script(x), 0) == least]
        pick = options[rng.randrange(len(options))]
        pool.remove(pick)
        picked.append(pick)
        scripts[language_script(pick)] = scripts.get(language_script(pick), 0) + 1
        codes.add(pick.split("_")[0])
    return sorted(picked)


def select_languages(centered: Mapping[str, float], n: int, low: float, high: float, bins: int, seed: int) -> dict:
    """The rule of the screen. Eligible: ``low <= centered retrieval <= high``. Two groups, Latin script and the
    rest, get shares of ``n`` in proportion to their eligible counts (rounded to a multiple of ``2 * bins``, so every
    cell splits evenly into the two role halves). Within a group, the languages are sorted by centered retrieval and
    cut into ``bins`` strata of (nearly) equal size, and the group's share is drawn evenly from the strata with
    ``seed``; each draw is among the stratum's languages whose script has been drawn least often so far, and never a
    second variant of a language already drawn (``zho_Hans`` excludes ``zho_Hant``).

    Returns:
        ``{"selected", "cells": {"Latin/1": [...], ...}, "eligible", "strata", "excluded_low", "excluded_high",
        "latin_share"}``.
    """
    from ..tasks.spec import language_script

    eligible = sorted((x for x, v in centered.items() if low <= v <= high), key=lambda x: (centered[x], x))
    if len(eligible) < n:
        raise ValueError(f"the screen leaves {len(eligible)} languages in [{low}, {high}]; {n} are needed")
    groups = {"Latin": [x for x in eligible if language_script(x) == "Latn"],
              "other": [x for x in eligible if language_script(x) != "Latn"]}  # fmt: skip
    unit = 2 * bins
    n_latin = min(math.floor(n * len(groups["Latin"]) / len(eligible) / unit + 0.5) * unit, n)
    shares = {"Latin": n_latin, "other": n - n_latin}
    rng = random.Random(seed)
    scripts: dict[str, int] = {}
    codes: set[str] = set()
    cells, strata = {}, {}
    for name, members in groups.items():
        if shares[name] == 0:
            continue
        if len(members) < shares[name]:
            raise ValueError(
                f"the screen leaves {len(members)} eligible {name}-script languages; {shares[name]} needed"
            )
        for b in range(bins):
            stratum = members[len(members) * b // bins : len(members) * (b + 1) // bins]
            strata[f"{name}/{b + 1}"] = stratum
            cells[f"{name}/{b + 1}"] = _draw(stratum, shares[name] // bins, rng, scripts, codes)
    return {
        "selected": sorted(x for c in cells.values() for x in c),
        "cells": cells,
        "eligible": eligible,
        "strata": strata,
        "latin_share": [n_latin, n],
        "excluded_low": sorted(x for x, v in centered.items() if v < low),
        "excluded_high": sorted(x for x, v in centered.items() if v > high),
    }


def assign_roles(cells: Mapping[str, Sequence[str]], seed: int) -> dict[str, list[str]]:
    """Halves A and B at random (``seed``), half of every cell (script group x retrieval stratum) in each."""
    rng = random.Random(seed)
    a, b = [], []
    for name in sorted(cells):
        members = sorted(cells[name])
        rng.shuffle(members)
        a += members[: len(members) // 2]
        b += members[len(members) // 2 :]
    return {"A": sorted(a), "B": sorted(b)}


def aligned_half(seed: int) -> str:
    """Even seeds align half A, odd seeds half B."""
    return "A" if seed % 2 == 0 else "B"


# ---- 2. the pilot ----------------------------------------------------------------------------------------------------
PILOT_GRID: tuple[tuple[str, str, dict], ...] = (
    # (name, arm, TrainSettings overrides): the remedy and the weight, one at a time. Gradient accumulation is not
    # piloted: at fp32 on a 2-core CPU a training of 88 steps takes ~15-25 min, and GA 2 doubles it; the plan fixes
    # GA 1 (the alternate schedule then alternates whole optimizer steps, as our earlier runs did).
    ("baseline_2x", "baseline_2x", {}),
    ("center_batch_w1", "alignment_center", {"remedy": "batch", "weight": 1.0}),
    ("center_standardize_w1", "alignment_center", {"remedy": "standardize", "weight": 1.0}),
    ("center_batch_w0.3", "alignment_center", {"remedy": "batch", "weight": 0.3}),
)
PILOT_RULE = (
    "Among the alignment_center configurations, keep those whose English dev accuracy (mean over pilot seeds) is at "
    "most 3 points below the baseline_2x of the same gradient accumulation; pick the one with the highest centered "
    "dev retrieval x->English of the aligned half (mean over pilot seeds); ties go to the earlier entry of the grid. "
    "Its remedy and weight become the plan's settings for the alignment arms (the paper's arm keeps its own loss)."
)


def choose_from_pilot(summary: Mapping[str, Mapping[str, float]], grid=PILOT_GRID) -> tuple[str, str]:
    """Apply :data:`PILOT_RULE` to ``{config name: {"english_dev_accuracy", "aligned_dev_retrieval_centered"}}``;
    returns (chosen name, why)."""
    ga = {name: overrides.get("gradient_accumulation", 1) for name, _, overrides in grid}
    base = {ga[name]: summary[name]["english_dev_accuracy"] for name, arm, _ in grid
            if arm == "baseline_2x" and name in summary}  # fmt: skip
    candidates = [name for name, arm, _ in grid if arm == "alignment_center" and name in summary]
    ok = [c for c in candidates if ga[c] in base and summary[c]["english_dev_accuracy"] >= base[ga[c]] - 0.03]
    if not ok:
        raise ValueError("pilot: no alignment_center configuration within 3 points of its baseline_2x")
    best = max(ok, key=lambda c: (summary[c]["aligned_dev_retrieval_centered"], -candidates.index(c)))
    why = (f"{best}: centered dev retrieval {summary[best]['aligned_dev_retrieval_centered']:.3f}, English dev "
           f"accuracy {summary[best]['english_dev_accuracy']:.3f} (baseline_2x {base[ga[best]]:.3f}); "
           f"{len(ok)} of {len(candidates)} configurations passed the accuracy bound")  # fmt: skip
    return best, why


# ---- the stopping rule -----------------------------------------------------------------------------------------------
STOPPING_RULE = (
    "Run the first {n0} seeds whatever they show. Then take the sample sd s of the per-seed primary differences and "
    "the smallest even n with t(0.975, n-1) * s / sqrt(n) <= {hw:.3f}; if n <= {nmax}, run to n seeds (role balance: "
    "n even) and report there; otherwise stop at {n0}. Report at {n0} in any case. The direction of the result never "
    "enters the rule."
)


def stopping_rule(per_seed: Sequence[float], n0: int, target: float, n_max: int) -> dict:
    """The number of seeds the rule asks for, from the first ``n0`` per-seed primary differences."""
    if len(per_seed) < 2:
        raise ValueError("the stopping rule needs at least 2 seeds")
    sd = statistics.stdev(per_seed)
    need = next((n for n in range(max(n0, 2), n_max + 1, 1) if n % 2 == 0 and
                 stats.t_quantile(0.975, n - 1) * sd / n**0.5 <= target), None)  # fmt: skip
    return {"sd": sd, "seeds_needed": need, "continue_to": need if need is not None and need > n0 else n0,
            "reachable": need is not None}  # fmt: skip


# ---- shared setup ----------------------------------------------------------------------------------------------------
def _setup(args) -> tuple:
    from ..models import GEMMA3_MODEL_NAME, prepared_model_path
    from ..models.hardware import resolve_dtype
    from ..tasks.spec import get_label_task

    task = get_label_task(args.task)
    data_dir = task.resolve_data_dir(args.data_dir)
    model_path = args.model or prepared_model_path(GEMMA3_MODEL_NAME)
    return task, data_dir, model_path, resolve_dtype(args.dtype)


def _selection(work_dir: str, cfg: PoweredConfig) -> dict:
    path = os.path.join(work_dir, "screen.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: run `midalign experiment powered screen` first")
    screen = read_json(path)
    centered = {x: v["centered"] for x, v in screen["languages"].items()}
    sel = select_languages(centered, cfg.n_languages, cfg.screen_low, cfg.screen_high, cfg.screen_bins,
                           cfg.selection_seed)  # fmt: skip
    sel["roles"] = assign_roles(sel["cells"], cfg.role_seed)
    sel["screen_sha"] = planning.plan_hash(screen["languages"])
    sel["layer"] = screen["layer"]
    return sel


def _data(task, tokenizer, data_dir: str, work_dir: str, roles: Mapping[str, list[str]],
          expected: Mapping[str, str] | None = None) -> dict:  # fmt: skip
    """The training rows and each half's pairs (written into ``<work_dir>/data``) with their sha256; with
    ``expected`` (the plan's hashes) a file that came out different is refused: the data a plan fixed cannot drift."""
    from .protocol import write_training_files

    files = {}
    for half, langs in roles.items():
        files[half] = write_training_files(task, tokenizer, data_dir, work_dir, langs, f"half{half}")
    hashes = {
        "train": file_sha256(files["A"]["train"]),
        **{f"pairs_{h}": file_sha256(files[h]["pairs"]) for h in roles},
    }
    if expected is not None and dict(expected) != hashes:
        differ = sorted(k for k in hashes if hashes[k] != expected.get(k))
        raise ValueError(f"the training data rebuilt from {data_dir} differs from the plan's ({', '.join(differ)}): "
                         "another release, tokenizer or code; the plan's data cannot change")  # fmt: skip
    files["sha256"] = hashes
    return files


def _leaks(task, data_dir: str, split: str, langs: Sequence[str], ids: Sequence[str], files: Mapping) -> dict:
    wanted = set(ids)
    items = {lang: [(it.id, it.text) for it in task.load(lang, split, data_dir) if it.id in wanted]
             for lang in [task.pivot, *langs]}  # fmt: skip
    sources = {"task rows": (files["A"]["train_ids"], files["A"]["train_texts"])}
    for half in ("A", "B"):
        sources[f"pairs half {half}"] = (files[half]["pair_ids"], files[half]["pair_texts"])
    return find_leaks(items, sources)


def _eval_ids(task, data_dir: str, cfg: PoweredConfig) -> dict:
    items = task.load(task.pivot, cfg.eval_split, data_dir)
    from ..data.subsets import check_representative, sample_ids

    labels = {it.id: it.label for it in items}
    ids = sample_ids([it.id for it in items], cfg.eval_size, cfg.subset_seed, labels)
    check_representative([labels[i] for i in ids], list(labels.values()), f"{task.name} {cfg.eval_split}")
    return describe_subset(ids, len(items), cfg.subset_seed, "stratified by label" if cfg.eval_size else "whole split",
                           [labels[i] for i in ids], task.labels(data_dir))  # fmt: skip


# ---- units -----------------------------------------------------------------------------------------------------------
def _unit(task, data_dir, model_path, dtype, settings: TrainSettings, arm_name: str, seed: int, files: Mapping,
          langs: Sequence[str], roles, eval_ids, retrieval_ids, split: str, out_dir: str, plan_sha: str, layer: int,
          eval_batch_size: int, eval_langs: Sequence[str] | None = None,
          code_note: dict | None = None) -> dict:  # fmt: skip
    """Train and evaluate one unit into ``out_dir`` (``result.json`` written last, atomically)."""
    from ..models import load_model_with_adapters, load_tokenizer
    from ..models.loading import adapter_fingerprint

    done = os.path.join(out_dir, "result.json")
    if os.path.isfile(done):
        result = read_json(done)
        validate_unit_result(result, done)
        return result
    arm = ARMS[arm_name]
    half = aligned_half(seed)
    t0 = time.time()
    train_seconds, logs = train_unit(arm, seed, settings, model_path, files[half], os.path.join(out_dir, "train"),
                                     dtype)  # fmt: skip
    adapter = os.path.join(out_dir, "train")
    tokenizer = load_tokenizer(model_path)
    model = load_model_with_adapters(model_path, [adapter], torch_dtype=None if dtype == "float32" else dtype)
    t1 = time.time()
    prov = {"model": model_path, "adapter": adapter_fingerprint(adapter), "dtype": dtype}
    result = {"arm": arm_name, "seed": seed, "aligned_half": half, "aligned": roles[half],
              "train_seconds": train_seconds, "first_logs": logs[:2], "final_logs": logs[-2:]}  # fmt: skip
    if arm.evaluates_task:
        result["eval"] = evaluate_labels(model, tokenizer, task, data_dir, split, eval_langs or [task.pivot, *langs],
                                         eval_ids, out_dir, prov, eval_batch_size)  # fmt: skip
    result["retrieval"] = retrieval(model, tokenizer, task, data_dir, split, langs, retrieval_ids, layer,
                                    settings.pooling)  # fmt: skip
    result.update(eval_seconds=time.time() - t1, seconds=time.time() - t0, env=planning.environment(dtype),
                  plan_sha=plan_sha, finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # fmt: skip
    if code_note:
        result["code_change_accepted"] = code_note
    write_json(done, result)
    return result


def _base_retrieval(task, data_dir, model_path, dtype, langs, ids, layer, pooling, split, out_dir) -> dict:
    from ..models import load_model, load_tokenizer

    done = os.path.join(out_dir, "result.json")
    if os.path.isfile(done):
        return read_json(done)
    model = load_model(model_path, torch_dtype=None if dtype == "float32" else dtype)
    result = {"retrieval": retrieval(model, load_tokenizer(model_path), task, data_dir, split, langs, ids, layer,
                                     pooling), "env": planning.environment(dtype)}  # fmt: skip
    write_json(done, result)
    return result


# ---- phases ----------------------------------------------------------------------------------------------------------
def cmd_screen(cfg: PoweredConfig, args) -> dict:
    task, data_dir, model_path, dtype = _setup(args)
    screen = run_screen(cfg, model_path, data_dir, args.work_dir, dtype)
    sel = _selection(args.work_dir, cfg)
    write_json(os.path.join(args.work_dir, "selection.json"), sel)
    _plot_screen(screen, sel, os.path.join(args.work_dir, "screen.png"))
    print(f"selected {len(sel['selected'])} of {len(sel['eligible'])} eligible languages: A {sel['roles']['A']}, "
          f"B {sel['roles']['B']}")  # fmt: skip
    return sel


def _pilot_dev_ids(
    pilot_dir: str, pivot: str, checked: list[str], file_order: list[str]
) -> tuple[list[str], str | None]:
    """The pilot's dev items: those its finished units were scored on, when there are any (every seed must be scored
    on one set, whatever a later version of the leak check would drop), else ``checked`` (the current leak check's
    survivors). Returns the ids and, when they differ from ``checked``, a sentence saying how."""
    import glob

    done = sorted(glob.glob(os.path.join(pilot_dir, "seed*", "*", "result.json")))
    if not done:
        return checked, None
    sets = {path: set(read_json(path)["eval"][pivot]["correct"]) for path in done}
    first = sets[done[0]]
    odd = [p for p, ids in sets.items() if ids != first]
    if odd:
        raise ValueError(f"pilot units scored on different dev items: {odd[0]} vs {done[0]}; remove one of them")
    fixed = [i for i in file_order if i in first]
    if set(fixed) == set(checked):
        return fixed, None
    extra, missing = sorted(set(fixed) - set(checked)), sorted(set(checked) - set(fixed))
    return fixed, (f"dev items fixed by the pilot's first finished unit ({len(fixed)}); the current leak check would "
                   f"drop {extra or 'none'} and add {missing or 'none'}; every pilot seed is scored on the same "
                   "items")  # fmt: skip


def cmd_pilot(cfg: PoweredConfig, args) -> dict:
    from ..models import load_tokenizer

    task, data_dir, model_path, dtype = _setup(args)
    sel = _selection(args.work_dir, cfg)
    pilot_dir = os.path.join(args.work_dir, "pilot")
    planning.write_plan(pilot_dir, {"phase": "pilot", "config": asdict(cfg), "grid": PILOT_GRID, "rule": PILOT_RULE,
                                    "selection": sel["roles"]}, status="exploratory")  # fmt: skip
    tokenizer = load_tokenizer(model_path)
    files = _data(task, tokenizer, data_dir, args.work_dir, sel["roles"])
    dev_ids = [it.id for it in task.load(task.pivot, "dev", data_dir)]
    leaks = _leaks(task, data_dir, "dev", sel["selected"], dev_ids, files)
    if leaks["leaked_ids"] and not cfg.keep_leaked:
        dev_ids = [i for i in dev_ids if i not in set(leaks["leaked_ids"])]
    dev_ids, dev_note = _pilot_dev_ids(
        pilot_dir, task.pivot, dev_ids, [it.id for it in task.load(task.pivot, "dev", data_dir)]
    )
    grid = [g for g in PILOT_GRID if not args.only or g[0] in args.only.split(",")]
    results = {}
    for seed in cfg.pilot_seeds:
        half = aligned_half(seed)
        for name, arm, overrides in grid:
            settings = replace(cfg.train, **overrides)
            out = os.path.join(pilot_dir, f"seed{seed}", name)
            r = _unit(task, data_dir, model_path, dtype, settings, arm, seed, files, sel["roles"][half],
                      sel["roles"], dev_ids, dev_ids, "dev", out, "pilot", sel["layer"], cfg.eval_batch_size,
                      eval_langs=[task.pivot])  # fmt: skip
            results[(name, seed)] = r
            print(f"pilot seed {seed} {name}: English dev {r['eval'][task.pivot]['accuracy']:.3f}, aligned centered "
                  f"retrieval {statistics.fmean(v['centered'] for v in r['retrieval'].values()):.3f} "
                  f"({r['seconds']:.0f}s)", flush=True)  # fmt: skip
    summary = {}
    for name, _, _ in grid:
        rs = [results[(name, s)] for s in cfg.pilot_seeds]
        summary[name] = {
            "english_dev_accuracy": statistics.fmean(r["eval"][task.pivot]["accuracy"] for r in rs),
            "aligned_dev_retrieval_centered": statistics.fmean(
                statistics.fmean(v["centered"] for v in r["retrieval"].values()) for r in rs),
            "aligned_dev_retrieval_raw": statistics.fmean(
                statistics.fmean(v["raw"] for v in r["retrieval"].values()) for r in rs),
            "seconds": statistics.fmean(r["seconds"] for r in rs),
            "train_seconds": statistics.fmean(r["train_seconds"] for r in rs),
        }  # fmt: skip
    dev_items = {it.id: it.label for it in task.load(task.pivot, "dev", data_dir)}
    out = {"seeds": list(cfg.pilot_seeds), "grid": [list(g) for g in grid], "rule": PILOT_RULE, "summary": summary,
           "dev_subset": describe_subset(dev_ids, len(dev_items), 0, "whole split", [dev_items[i] for i in dev_ids],
                                         task.labels(data_dir)),
           "dev_leaks": {k: v for k, v in leaks.items() if k != "by_source"} | {"by_source": {
               k: {n: c for n, c in v.items() if n != "ids"} for k, v in leaks["by_source"].items()}},
           **({"dev_note": dev_note} if dev_note else {}),
           "env": planning.environment(dtype)}  # fmt: skip
    if len(grid) == len(PILOT_GRID):
        out["choice"], out["why"] = choose_from_pilot(summary)
    write_json(os.path.join(args.work_dir, "pilot.json"), out)
    print(out.get("why", "pilot: partial grid, no choice made"))
    return out


def _plan_body(cfg: PoweredConfig, task, data_dir, sel, settings: TrainSettings, settings_source: str,
               eval_subset, leaks, pilot, model: dict, data_sha: dict) -> dict:  # fmt: skip
    return {
        "question": "Does middle-layer alignment (the paper's loss, and the centered remedy) raise zero-shot accuracy "
        "of the languages it aligns, and of those it does not, over task-only training on the same task batches?",
        "task": task.name,
        "data_dir": os.path.abspath(data_dir),
        "data_sha256": data_sha,
        "model": model,
        "config": asdict(cfg),
        "settings": asdict(settings),
        "settings_source": settings_source,
        "layer": sel["layer"],
        "languages": {
            "pivot": task.pivot,
            "selected": sel["selected"],
            "cells": sel["cells"],
            "roles": sel["roles"],
            "rule": f"centered {cfg.screen_split} retrieval in [{cfg.screen_low}, {cfg.screen_high}]; Latin-script "
            f"and other languages in proportion to their eligible counts ({sel['latin_share'][0]} of {cfg.n_languages} "
            f"Latin); within each, {cfg.screen_bins} retrieval strata drawn evenly, script-spread, one variant per "
            f"language code, seed {cfg.selection_seed}; halves A/B split every cell, seed {cfg.role_seed}",
            "screen_sha": sel["screen_sha"],
            "excluded_low": sel["excluded_low"],
            "excluded_high": sel["excluded_high"],
        },  # fmt: skip
        "roles_by_seed": "even seeds align half A, odd seeds half B",
        "pairs": f"{task.pivot} <-> each aligned language, from the train split: translations of the task's own "
        "training sentences, so an alignment arm also sees in-domain target-language text (the effect measured "
        "includes that exposure)",
        "arms": list(cfg.arms),
        "arm_schedules": f"baseline_2x: task only, {2 * settings.steps} steps; alignment and alignment_center: "
        f"{settings.alignment_schedule} schedule, {2 * settings.steps} steps (the same task batches as baseline_2x "
        f"under the same seed), alignment weight {settings.paper_weight} (paper) / {settings.weight} (remedy "
        f"{settings.remedy})",
        "seeds": list(cfg.seeds),
        "evaluation": {
            "split": cfg.eval_split,
            "subset": eval_subset,
            "retrieval": f"the evaluated {cfg.eval_split} items, x -> {task.pivot}, raw and centered",
            "leakage": leaks,
            "keep_leaked": cfg.keep_leaked,
            "batch_size": cfg.eval_batch_size,
        },  # fmt: skip
        "endpoints": {
            "primary": "per seed, mean over that seed's aligned half of accuracy(alignment_center) - "
            "accuracy(baseline_2x); 95% t-interval over seeds",
            "secondary": [
                "the same for alignment (the paper's loss)",
                "both on the unaligned half",
                "both on the pivot (English)",
                "per-language differences (forest plot)",
            ],
            "sensitivity": "bootstrap over seeds (drawn within each role assignment: even and odd seeds) and item "
            "clusters (one id in every language); the means of the even and odd seeds reported separately. Drawing "
            "within the assignments leaves out the variance between them, which the primary t-interval includes: "
            "the bootstrap can be the narrower of the two, and it falls back to unstratified draws while an "
            "assignment has fewer than 2 seeds",
        },  # fmt: skip
        "caveats": [
            "the pairs are translations of the task's own training sentences (train split): a lift may come from "
            "seeing the task sentences in translation rather than from aligning representations as such; no arm "
            "with pairs of other sentences is run (cost: a fourth arm per seed), so a positive result is read as "
            "'alignment on task-sentence translations', not 'alignment per se'",
            f"one model ({model['path'].rstrip('/').rsplit('/', 1)[-1]}), one task ({task.name}), one precision "
            f"({cfg.dtype}): no claim beyond them",
            f"languages are fixed effects: the result is about these {len(sel['selected'])}, not a population of "
            "languages",
        ],
        "stopping_rule": STOPPING_RULE.format(n0=cfg.first_seeds, hw=cfg.target_half_width, nmax=cfg.max_seeds),
        "pilot": pilot,
        "precision": "one dtype for every unit (the report refuses a mix)",
        "code_rule": "units run at the plan's commit; a unit at another commit whose src/midalign differs is refused "
        "unless the run names the change (--accept-code-change REASON, recorded in the unit)",
    }


def _pilot_settings(cfg: PoweredConfig, work_dir: str, from_flags: bool) -> tuple[TrainSettings, str, dict | None]:
    """The plan's training settings: the pilot's choice applied to the config (its remedy, weight, accumulation),
    or -- only when asked -- the flags as given, said so in the plan."""
    path = os.path.join(work_dir, "pilot.json")
    pilot = read_json(path) if os.path.isfile(path) else None
    record = {"choice": pilot.get("choice"), "why": pilot.get("why"), "summary": pilot["summary"]} if pilot else None
    if from_flags:
        return cfg.train, "flags (--settings-from-flags: no pilot choice applied)", record
    if not pilot or not pilot.get("choice"):
        raise FileNotFoundError(f"{path}: the pilot has not chosen yet (run `midalign experiment powered pilot` to the "
                                "end), or pass --settings-from-flags to fix the settings as given")  # fmt: skip
    overrides = next(o for name, _, o in PILOT_GRID if name == pilot["choice"])
    return replace(cfg.train, **overrides), f"pilot choice {pilot['choice']}", record


def cmd_plan(cfg: PoweredConfig, args) -> dict:
    from ..models import load_tokenizer
    from ..models.loading import model_fingerprint

    task, data_dir, model_path, dtype = _setup(args)
    sel = _selection(args.work_dir, cfg)
    settings, source, pilot_record = _pilot_settings(cfg, args.work_dir, args.settings_from_flags)
    files = _data(task, load_tokenizer(model_path), data_dir, args.work_dir, sel["roles"])
    drawn = _eval_ids(task, data_dir, cfg)
    leaks = _leaks(task, data_dir, cfg.eval_split, sel["selected"], drawn["ids"], files)
    kept = drawn["ids"] if cfg.keep_leaked else [i for i in drawn["ids"] if i not in set(leaks["leaked_ids"])]
    labels = {it.id: it.label for it in task.load(task.pivot, cfg.eval_split, data_dir)}
    subset = describe_subset(kept, drawn["of"], cfg.subset_seed, drawn["method"] + (
        f", {len(drawn['ids']) - len(kept)} leaked item(s) dropped" if len(kept) < len(drawn["ids"]) else ""),
        [labels[i] for i in kept], task.labels(data_dir))  # fmt: skip
    model = {"path": os.path.abspath(model_path) if os.path.isdir(model_path) else model_path,
             "fingerprint": model_fingerprint(model_path)}  # fmt: skip
    body = _plan_body(cfg, task, data_dir, sel, settings, source, subset, leaks, pilot_record, model, files["sha256"])
    body["dtype"] = dtype
    record = planning.write_plan(args.work_dir, body)
    print(f"plan {record['sha']} written {record['written']} at commit {record['code']['commit']}: "
          f"{os.path.join(args.work_dir, 'plan.json')}")  # fmt: skip
    return record


def active_seeds(plan: Mapping, work_dir: str) -> list[int]:
    """The seeds to run now: the first batch, or as many as the stopping rule decided (``stopping.json``, written
    once by the report when the first batch is complete)."""
    path = os.path.join(work_dir, "stopping.json")
    n = read_json(path)["continue_to"] if os.path.isfile(path) else plan["config"]["first_seeds"]
    return list(plan["seeds"][:n])


def _units(plan: Mapping, seeds: Sequence[int], only: str | None, shard: str | None) -> list[tuple[str, int]]:
    units = [("base", -1)] + [(arm, seed) for seed in seeds for arm in plan["arms"]]
    if only:
        wanted = []
        for spec in only.split(","):
            arm, _, seed = spec.partition(":")
            if arm not in plan["arms"] or not seed.lstrip("-").isdigit() or int(seed) not in seeds:
                raise ValueError(f"--run {spec!r}: expected ARM:SEED with ARM in {plan['arms']} and SEED among the "
                                 f"seeds to run now {list(seeds)}")  # fmt: skip
            wanted.append((arm, int(seed)))
        return [("base", -1)] + wanted
    if shard:
        k, _, n = shard.partition("/")
        if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
            raise ValueError(f"--shard {shard!r}: expected K/N with 1 <= K <= N, e.g. 3/8")
        return [u for i, u in enumerate(units) if i % int(n) == int(k) - 1]
    return units


def _code_changes(plan_commit: str | None) -> list[str]:
    """Files of ``src/midalign`` that differ between the plan's commit and the working tree (uncommitted edits
    included); ``["unknown"]`` when git cannot tell."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    if not plan_commit:
        return ["unknown (the plan has no commit)"]
    try:
        root = subprocess.run(["git", "-C", here, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()  # fmt: skip
        out = subprocess.run(["git", "-C", root, "diff", "--name-only", plan_commit, "--", "src/midalign"],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ["unknown (git failed)"]
    if out.returncode != 0:
        return [f"unknown (git diff failed: {out.stderr.strip()[:200]})"]
    return [line for line in out.stdout.splitlines() if line.strip()]


def cmd_run(cfg: PoweredConfig, args) -> None:
    from ..models import load_tokenizer
    from ..models.loading import model_fingerprint

    task, data_dir, model_path, dtype = _setup(args)
    record = planning.read_plan(args.work_dir)
    if record is None:
        raise FileNotFoundError(f"{args.work_dir}/plan.json: write the plan first (`midalign experiment powered plan`)")
    plan = record["plan"]
    if plan["dtype"] != dtype:
        raise ValueError(
            f"this machine computes in {dtype}; the plan fixes {plan['dtype']} (one precision per comparison): run it "
            f"where that dtype is native, or pass --dtype {plan['dtype']}"
        )
    if model_fingerprint(model_path) != plan["model"]["fingerprint"]:
        raise ValueError(f"--model {model_path}: not the weights the plan fixed ({plan['model']['path']}, fingerprint "
                         f"{plan['model']['fingerprint'][:12]})")  # fmt: skip
    changed = _code_changes(record["code"].get("commit"))
    if changed and not args.accept_code_change:
        raise ValueError(f"src/midalign differs from the plan's commit {str(record['code'].get('commit'))[:10]} in "
                         f"{', '.join(changed[:6])}{' ...' if len(changed) > 6 else ''}: run at that commit, or name "
                         "the change with --accept-code-change REASON (recorded in every unit)")  # fmt: skip
    settings = TrainSettings(**plan["settings"])
    roles = plan["languages"]["roles"]
    langs = plan["languages"]["selected"]
    files = _data(task, load_tokenizer(model_path), data_dir, args.work_dir, roles, expected=plan["data_sha256"])
    eval_ids = plan["evaluation"]["subset"]["ids"]  # leaked items were dropped when the plan was written
    code_note = {"changed_files": changed, "reason": args.accept_code_change} if changed else None
    for arm, seed in _units(plan, active_seeds(plan, args.work_dir), args.run, args.shard):
        if arm == "base":
            _base_retrieval(task, data_dir, model_path, dtype, langs, eval_ids, plan["layer"], settings.pooling,
                            plan["evaluation"]["split"], os.path.join(args.work_dir, "runs", "base"))  # fmt: skip
            continue
        out = os.path.join(args.work_dir, "runs", f"seed{seed}", arm)
        r = _unit(task, data_dir, model_path, dtype, settings, arm, seed, files, langs, roles, eval_ids, eval_ids,
                  plan["evaluation"]["split"], out, record["sha"], plan["layer"], plan["evaluation"]["batch_size"],
                  code_note=code_note)  # fmt: skip
        print(f"unit {arm}:{seed} done ({r['seconds']:.0f}s)", flush=True)


# ---- the report ------------------------------------------------------------------------------------------------------
def _diff_items(a: Mapping, b: Mapping, langs: Sequence[str]) -> dict:
    return {x: {i: a["eval"][x]["correct"][i] - b["eval"][x]["correct"][i] for i in a["eval"][x]["correct"]}
            for x in langs}  # fmt: skip


def endpoint(by: Mapping, arm: str, ref: str, seeds: Sequence[int], langs_of) -> dict:
    """Per seed, the mean over ``langs_of(seed)`` of accuracy(arm) - accuracy(ref); t-interval over seeds and the
    clustered bootstrap."""
    seeds = [s for s in seeds if (arm, s) in by and (ref, s) in by]
    if not seeds:
        return {"n_seeds": 0}
    a = {s: seed_accuracy(by[(arm, s)], langs_of(s)) for s in seeds}
    b = {s: seed_accuracy(by[(ref, s)], langs_of(s)) for s in seeds}
    out = stats.paired_seed_interval(a, b)
    # the bootstrap needs the same languages in every seed: resample within the seeds' own halves by relabelling
    # languages as positions (their order in the half), which keeps the item clusters intact
    values = {s: {f"slot{j}": d for j, (_, d) in enumerate(sorted(_diff_items(by[(arm, s)], by[(ref, s)],
              langs_of(s)).items()))} for s in seeds}  # fmt: skip
    # seeds drawn within their role assignment (even: half A aligned, odd: half B), each keeping its count
    strata = {s: aligned_half(s) for s in seeds}
    if min(sum(1 for v in strata.values() if v == h) for h in set(strata.values())) < 2:
        strata = None  # a stratum of one seed would have no seed variance at all: unstratified until each has two
    out["bootstrap"] = stats.cluster_bootstrap(values, resamples=2000, strata=strata)
    # each role assignment on its own (even seeds align half A, odd seeds half B): a missing unit cannot tilt the
    # mean towards one half unseen
    out["by_role"] = {h: statistics.fmean(d for s, d in zip(out["seeds"], out["per_seed"]) if aligned_half(s) == h)
                      for h in ("A", "B") if any(aligned_half(s) == h for s in out["seeds"])}  # fmt: skip
    out["verdict"] = stats.verdict(out)
    out["caveat"] = stats.seed_caveat(len(seeds))
    return out


def summarize(plan: Mapping, runs: Sequence[Mapping], base: Mapping | None) -> dict:
    pivot = plan["languages"]["pivot"]
    roles = plan["languages"]["roles"]
    selected = plan["languages"]["selected"]
    by = {(r["arm"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})

    def half(s, aligned=True):
        h = aligned_half(s)
        return roles[h] if aligned else roles["B" if h == "A" else "A"]

    out: dict = {"seeds_done": seeds, "endpoints": {}, "per_language": {}, "english": {}, "retrieval": {}}
    ref = "baseline_2x"
    for arm in ("alignment_center", "alignment"):
        if arm not in plan["arms"]:
            continue
        key = "primary" if arm == "alignment_center" else "secondary_paper"
        out["endpoints"][f"{key}: {arm} - {ref}, aligned half"] = endpoint(by, arm, ref, seeds, lambda s: half(s))
        out["endpoints"][f"{arm} - {ref}, unaligned half"] = endpoint(by, arm, ref, seeds, lambda s: half(s, False))
        out["english"][f"{arm} - {ref}"] = endpoint(by, arm, ref, seeds, lambda s: [pivot])
        per_lang = {}
        for x in selected:
            for state, is_aligned in (("aligned", True), ("unaligned", False)):
                ss = [s for s in seeds if (x in half(s)) == is_aligned and (arm, s) in by and (ref, s) in by]
                if ss:
                    per_lang.setdefault(x, {})[state] = stats.paired_seed_interval(
                        {s: by[(arm, s)]["eval"][x]["accuracy"] for s in ss},
                        {s: by[(ref, s)]["eval"][x]["accuracy"] for s in ss})  # fmt: skip
        out["per_language"][f"{arm} - {ref}"] = per_lang
    accuracy = {}
    for arm in plan["arms"]:
        rs = [by[(arm, s)] for s in seeds if (arm, s) in by and "eval" in by[(arm, s)]]
        if rs:
            accuracy[arm] = {x: stats.t_interval([r["eval"][x]["accuracy"] for r in rs]) for x in [pivot, *selected]}
            out["retrieval"][arm] = {
                "aligned": stats.t_interval([statistics.fmean(r["retrieval"][x]["centered"] for x in half(r["seed"]))
                                             for r in rs]),
                "unaligned": stats.t_interval([statistics.fmean(r["retrieval"][x]["centered"]
                                                                for x in half(r["seed"], False)) for r in rs]),
            }  # fmt: skip
    out["accuracy"] = accuracy
    if base is not None:
        out["retrieval"]["base"] = {x: base["retrieval"][x] for x in selected}
        if ref in accuracy:
            xs = [base["retrieval"][x]["centered"] for x in selected]
            ys = [accuracy[ref][x]["mean"] for x in selected]
            out["correlation_base_retrieval_vs_baseline_accuracy"] = stats.correlation_summary(xs, ys, selected)
    out["compute_seconds"] = {arm: stats.t_interval([by[(arm, s)]["seconds"] for s in seeds if (arm, s) in by])
                              for arm in plan["arms"] if any((arm, s) in by for s in seeds)}  # fmt: skip
    return out


PRIMARY = "primary: alignment_center - baseline_2x, aligned half"


def _decide_stopping(plan: Mapping, work_dir: str, by: Mapping) -> dict | None:
    """Once the first batch is complete, apply the stopping rule to its per-seed primary differences (in plan order)
    and write ``stopping.json`` -- once: later reports and runs read it, never recompute it."""
    path = os.path.join(work_dir, "stopping.json")
    if os.path.isfile(path):
        return read_json(path)
    first = list(plan["seeds"][: plan["config"]["first_seeds"]])
    if not all((arm, s) in by for s in first for arm in ("alignment_center", "baseline_2x")):
        return None
    roles = plan["languages"]["roles"]
    diffs = [seed_accuracy(by[("alignment_center", s)], roles[aligned_half(s)])
             - seed_accuracy(by[("baseline_2x", s)], roles[aligned_half(s)]) for s in first]  # fmt: skip
    decision = {**stopping_rule(diffs, len(first), plan["config"]["target_half_width"], plan["config"]["max_seeds"]),
                "from_seeds": first, "decided": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    write_json(path, decision)
    return decision


def cmd_report(cfg: PoweredConfig, args) -> dict:
    record = planning.read_plan(args.work_dir)
    if record is None:
        raise FileNotFoundError(f"{args.work_dir}/plan.json: no plan, nothing to report")
    plan = record["plan"]
    claim_results(args.fig_dir, args.name, args.overwrite)
    seeds = active_seeds(plan, args.work_dir)
    runs = []
    for seed in seeds:
        for arm in plan["arms"]:
            path = os.path.join(args.work_dir, "runs", f"seed{seed}", arm, "result.json")
            if os.path.isfile(path):
                r = read_json(path)
                where = f"{path} ({arm}:{seed})"
                validate_unit_result(r, where)
                if r["plan_sha"] != record["sha"]:
                    raise ValueError(f"{where}: made under plan {r['plan_sha']}, not this work dir's {record['sha']}")
                code = r["env"]["code"]
                if (code.get("commit") != record["code"].get("commit") or code.get("dirty")) and not r.get(
                        "code_change_accepted"):  # fmt: skip
                    raise ValueError(
                        f"{where}: ran at commit {str(code.get('commit'))[:10]} (dirty {code.get('dirty')}), not the "
                        "plan's, without a recorded code change"
                    )
                runs.append(r)
    if not runs:
        raise FileNotFoundError(f"{args.work_dir}/runs: no finished unit yet")
    dtype = planning.check_one_dtype(runs)
    commits = sorted({str(r["env"]["code"].get("commit")) for r in runs})
    base_path = os.path.join(args.work_dir, "runs", "base", "result.json")
    base = read_json(base_path) if os.path.isfile(base_path) else None
    by = {(r["arm"], r["seed"]): r for r in runs}
    stopping = _decide_stopping(plan, args.work_dir, by)
    summary = summarize(plan, runs, base)
    result = {"plan": record, "dtype": dtype, "code_commits": commits, "timeline": planning.timeline(record, runs),
              "stopping": stopping, "summary": summary, "units_done": sorted(f"{r['arm']}:{r['seed']}" for r in runs),
              "seeds_now": seeds, "units_planned": len(seeds) * len(plan["arms"]),
              "code_changes": sorted({json.dumps(r["code_change_accepted"]) for r in runs
                                      if r.get("code_change_accepted")}),
              "runs": runs, "base": base}  # fmt: skip
    write_json(os.path.join(args.fig_dir, f"{args.name}.json"), result)
    print(f"{len(runs)} of {result['units_planned']} units; wrote {os.path.join(args.fig_dir, args.name + '.json')}")
    for name, e in summary["endpoints"].items():
        if e.get("seeds"):
            print(f"  {name}: {e['verdict']} ({len(e['seeds'])} seeds)")
    return result


def _plot_screen(screen: Mapping, sel: Mapping, path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        print("screen figure skipped: matplotlib is not installed (pip install 'midalign[analysis]')")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted(screen["languages"], key=lambda x: screen["languages"][x]["centered"])
    cen = [100 * screen["languages"][x]["centered"] for x in langs]
    raw = [100 * screen["languages"][x]["raw"] for x in langs]
    fig, ax = plt.subplots(figsize=(16, 4.5))
    colors = ["tab:red" if x in sel["roles"]["A"] else "tab:blue" if x in sel["roles"]["B"] else "lightgrey"
              for x in langs]  # fmt: skip
    ax.bar(range(len(langs)), cen, color=colors, width=0.9, label="centered")
    ax.plot(range(len(langs)), raw, "k.", ms=3, label="raw")
    for i, x in enumerate(langs):
        if x in sel["selected"]:
            ax.annotate(x, (i, cen[i]), rotation=90, fontsize=6, ha="center", va="bottom")
    ax.axhline(100 * screen.get("low", 0.1), color="grey", lw=0.6, ls=":")
    ax.set_xlim(-1, len(langs))
    ax.set_xticks([])
    ax.set_ylabel("dev retrieval x -> English acc@1 (%)")
    ax.set_title(f"Language screen: {len(langs)} languages, layer {screen['layer']} (red: half A, blue: half B)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- command line ----------------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from ..alignment import CENTERING, POOLING

    p = argparse.ArgumentParser(prog="midalign experiment powered", description=__doc__.split("\n\n")[0],
                                allow_abbrev=False)  # fmt: skip
    p.add_argument("phase", choices=["screen", "pilot", "plan", "run", "report"])
    p.add_argument("--task", default=PoweredConfig.task)
    p.add_argument("--data-dir", default=None, help="the task's data folder (SIB-200: data/annotated)")
    p.add_argument("--model", default=None, help="model directory (default: the embedded gemma-3-270m)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--output-dir", dest="work_dir", default=WORK_DIR, help="everything (default: %(default)s)")
    p.add_argument("--fig-dir", default="outputs/fig")
    p.add_argument("--name", default="sib200_powered")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--run", default=None, help="report/run: comma-separated ARM:SEED units only")
    p.add_argument("--shard", default=None, help="run: the K-th of N interleaved slices of the units (K/N)")
    p.add_argument("--only", default=None, help="pilot: comma-separated grid entries only")
    p.add_argument("--accept-code-change", default=None, metavar="REASON",
                   help="run: src/midalign differs from the plan's commit; REASON (recorded in every unit) says why "
                   "the numbers cannot change")  # fmt: skip
    p.add_argument(
        "--settings-from-flags",
        action="store_true",
        help="plan: fix the training settings as given instead of the pilot's choice (said in the plan)",
    )
    p.set_defaults(config_fields=add_config_flags(p, PoweredConfig, skip=("task", "dtype", "train")),
                   train_fields=add_config_flags(p, TrainSettings, defaults=PoweredConfig().train, choices={
                       "remedy": [c for c in CENTERING if c != "none"], "pooling": sorted(POOLING)}))  # fmt: skip
    return p


def config_from_args(args, parser: argparse.ArgumentParser | None = None) -> PoweredConfig:
    """The configuration the flags give: PoweredConfig's and TrainSettings' defaults, overridden by what was set."""
    p = parser or _parser()
    train = asdict(PoweredConfig().train) | config_overrides(p, TrainSettings, args, args.train_fields)
    top = config_overrides(p, PoweredConfig, args, args.config_fields) | {"task": args.task, "dtype": args.dtype}
    return PoweredConfig(**top, train=TrainSettings(**train))


def main(argv: list[str] | None = None):
    parser = _parser()
    args = parser.parse_args(argv)
    cfg = config_from_args(args, parser)
    return {"screen": cmd_screen, "pilot": cmd_pilot, "plan": cmd_plan, "run": cmd_run,
            "report": cmd_report}[args.phase](cfg, args)  # fmt: skip
