"""``midalign experiment methods``: the survey's cross-lingual transfer methods side by side on one model, one task, one
budget (xSID slot filling, Gemma 3 270M by default).

Every method gets the same English task data (xSID ``en.valid``), the same target-language resources (for each
*aligned* language, its ``x.valid`` sentences minus a dev slice: as plain text for methods that want monolingual
text, paired with their English originals for methods that want parallel text), the same test subsets and seeds:

- ``baseline``: task LoRA (``steps`` optimizer steps);
- ``baseline_2x``: the same with twice the steps: the control for methods that see the task data twice
  (``alignment`` runs twice the micro-batches, ``lt_sft`` two task phases);
- ``alignment``: the paper's alternate schedule (task + alignment micro-batches, twice the steps);
- ``merging``: the paper's merging variant: an alignment-only LoRA (``steps`` alignment steps) added to the
  baseline's task LoRA with ``midalign compose`` (exact ``cat``), its weight chosen on the dev split;
- ``madx``: MAD-X with LoRA: a language LoRA per language (causal-LM loss on its text; one for English), a task LoRA
  trained with the English LoRA merged in and frozen, and at test time the task LoRA composed with the test
  language's LoRA in place of English's (languages without one keep English's);
- ``lt_sft``: composable sparse fine-tuning: language and task sparse differences (two phases each: full fine-tuning
  of the decoder body, keep the ``k`` largest changes, retrain only those from the base), task over the English
  difference, composed by addition; ``k`` = the LoRA adapter's trainable-parameter count (same stored budget);
- ``incline``: training-free: per-layer least-squares maps from the target language's pooled MLP outputs to its
  English translations' (``midalign.inference.incline``), applied to the baseline's model at test time with the
  strength ``σ`` chosen on the dev split.

Language components (MAD-X's language LoRAs, LT-SFT's language differences) do not depend on the task; they are
trained once (seed 0) and shared by every seed, as released language adapters are: the seeds vary the task side.
The dev split (the last ``dev_size`` ``x.valid`` sentences of each aligned language) is used only to pick the merging
weight and INCLINE's ``σ``; no method trains on it. Resumable: each (method, seed) writes ``result.json``; shared
components and generation outputs are reused.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .harness import (
    claim_results,
    claim_work_dir,
    experiment_cli,
    mean_sd,
    publish,
    run_once,
    train,
    train_dtype,
    validate_run,
    write_jsonl,
)
from .plan import check_one_dtype, environment, timeline
from .xsid import (
    XsidBenchConfig,
    evaluate_sentences,
    evaluated_languages,
    paired_intervals,
    test_sentences,
    train_argv,
)

__all__ = ["METHODS", "MethodsBenchConfig", "run_benchmark", "summarize", "markdown_table", "main"]

ADAPTER = "adapter_model"
# Every transfer method of the comparison, registered once by ``@method(name)`` on its runner; the table's rows
# are in registration order. A runner takes (context, seed, out_dir) and returns (scores by language, extra fields).
RUNNERS: dict[str, Callable] = {}


def method(name: str):
    """Register ``fn`` as the comparison's method ``name`` (one place: the rest reads :data:`RUNNERS`)."""

    def register(fn: Callable) -> Callable:
        if name in RUNNERS:
            raise ValueError(f"method {name!r} is registered twice")
        RUNNERS[name] = fn
        return fn

    return register


@dataclass
class MethodsBenchConfig(XsidBenchConfig):
    # The defaults fit about two hours on 2 CPU cores (README: Method comparison): English + the 4 aligned
    # languages + 4 transfer languages, first 24 test sentences each.
    languages: tuple[str, ...] | None = ("en", "de", "zh", "ja", "ar", "da", "it", "sr", "kk")
    test_size: int = 24
    dev_size: int = 16  # last N x.valid sentences per aligned language: dev split (weight / σ choice), never trained on
    language_steps: int = 16  # language LoRA steps; each LT-SFT language phase gets as many
    sft_learning_rate: float = 1e-4  # LT-SFT phase 1: full fine-tuning of the decoder body
    # LT-SFT phase 2: only the k kept entries train; at phase 1's 1e-4 they barely move (seed 0: the task difference
    # never learned the answer format, F1 0.0 everywhere), as with SmolLM2 (README: LT-SFT); the LoRA's rate works
    sft_mask_learning_rate: float = 1e-3
    merge_weights: tuple[float, ...] = (0.25, 0.5, 1.0)  # alignment-adapter weights tried on the dev split
    incline_sigmas: tuple[float, ...] = (0.1, 0.3, 0.5)  # INCLINE strengths tried on the dev split
    methods: tuple[str, ...] = field(default_factory=lambda: tuple(RUNNERS))
    POSITIVE = (*XsidBenchConfig.POSITIVE, "dev_size", "language_steps")

    @classmethod
    def quick(cls, **kw) -> MethodsBenchConfig:
        base = dict(
            seeds=(0,),
            aligned=("de", "zh"),
            languages=("en", "de", "zh", "da"),
            test_size=3,
            dev_size=3,
            steps=2,
            language_steps=2,
            batch_size=4,
            max_new_tokens=8,
            eval_batch_size=4,
            merge_weights=(0.5, 1.0),
            incline_sigmas=(0.1, 0.5),
        )
        return cls(**{**base, **kw})


class _Context:
    """Data, paths and shared (seed-independent) components of one benchmark run."""

    def __init__(self, cfg: MethodsBenchConfig, tokenizer, work_dir: str):
        from ..inference.prompts import render_example
        from ..tasks import xsid
        from ..tasks.xsid_cli import write_pairs

        self.cfg, self.tokenizer, self.work_dir = cfg, tokenizer, work_dir
        self.langs = evaluated_languages(cfg)
        self.test = test_sentences(cfg, self.langs)
        os.makedirs(work_dir, exist_ok=True)
        english = xsid.load_xsid("en", "valid", cfg.data_dir)
        self.train_file = os.path.join(work_dir, "train_en_valid.json")
        write_jsonl(
            self.train_file,
            (render_example(tokenizer, s.text, xsid.gold_target(s, cfg.intent), xsid.SYSTEM_PROMPT) for s in english),
        )
        self.dev, self.resource = {}, {}
        for lang in cfg.aligned:
            sents = xsid.load_xsid(lang, "valid", cfg.data_dir)
            if len(sents) <= 2 * cfg.dev_size:
                raise ValueError(f"{lang}.valid has {len(sents)} sentences; --dev-size {cfg.dev_size} leaves too few")
            self.resource[lang], self.dev[lang] = sents[: -cfg.dev_size], sents[-cfg.dev_size :]
        self.pairs_file = os.path.join(work_dir, "pairs_" + "_".join(cfg.aligned) + "_valid_nodev.json")
        write_pairs([s for lang in cfg.aligned for s in self.resource[lang]], self.pairs_file)
        # monolingual text per language (causal LM over the whole sentence): English = the task's own sentences
        eos = tokenizer.eos_token or ""
        texts = {"en": [s.text for s in english], **{x: [s.text for s in self.resource[x]] for x in cfg.aligned}}
        self.text_files = {}
        for lang, lines in texts.items():
            self.text_files[lang] = os.path.join(work_dir, f"text_{lang}.json")
            write_jsonl(self.text_files[lang], ({"prefix": "", "text": t + eos} for t in lines))

    def source_of(self, lang: str) -> str:
        """The language component used for a test language: its own if it has one, else English's."""
        return lang if lang in self.cfg.aligned else "en"

    def evaluate(self, model, sentences, out_dir, name="pred", prefix_cache=True) -> dict[str, dict]:
        cfg = self.cfg
        return evaluate_sentences(
            model,
            self.tokenizer,
            sentences,
            out_dir,
            intent=cfg.intent,
            batch_size=cfg.eval_batch_size,
            max_new_tokens=cfg.max_new_tokens,
            name=name,
            prefix_cache=prefix_cache,
        )

    def evaluate_by_source(self, model_for, out_dir: str) -> dict[str, dict]:
        """Test scores, each language on ``model_for(its language component)`` (one model per component)."""
        scores = {}
        for source in dict.fromkeys(self.source_of(x) for x in self.langs):
            model = model_for(source)
            scores.update(self.evaluate(model, {x: self.test[x] for x in self.langs if self.source_of(x) == source},
                                        out_dir))  # fmt: skip
            del model
        return scores

    def dev_f1(self, scores: dict[str, dict]) -> float:
        return statistics.mean(scores[x]["slot_f1"] for x in self.cfg.aligned)

    # ---- training runs ----
    def train_lora(
        self,
        out_dir: str,
        *,
        seed: int,
        steps: int,
        train_file: str | None = None,
        schedule: str = "task_only",
        pairs: str | None = None,
        extra: list[str] = (),
    ) -> tuple[str, float]:
        """Train a LoRA adapter (skipped when ``out_dir/adapter_model`` exists); returns (path, seconds)."""
        path = os.path.join(out_dir, ADAPTER)
        if os.path.isfile(os.path.join(path, "adapter_config.json")):
            return path, _read_seconds(out_dir)
        t0 = time.time()
        argv = train_argv(
            self.cfg,
            seed=seed,
            train_file=train_file or self.train_file,
            out_dir=out_dir,
            steps=steps,
            schedule=schedule,
            pairs=pairs,
        )
        train(argv + list(extra))
        seconds = time.time() - t0
        _write_seconds(out_dir, seconds)
        return path, seconds

    def train_sparse(
        self, out_path: str, *, seed: int, steps: int, train_file: str, under: list[str] = ()
    ) -> tuple[str, float]:
        """LT-SFT (two phases, ``steps`` each) over the base plus the sparse differences ``under``; writes the
        difference to ``out_path`` (skipped when it exists); returns (path, seconds)."""
        from ..compose import SparseDiff, add_deltas, sparse_diff
        from ..models import load_model

        stem = out_path.removesuffix(".safetensors")
        if os.path.isfile(out_path):
            return out_path, _read_seconds(stem)
        t0 = time.time()
        base = add_deltas(load_model(self.cfg.model), list(under))
        base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
        k = lora_parameter_count(base)
        del base
        common = ["--use_lora", "False", "--freeze_embeddings", "True", *(["--frozen_deltas", *under] if under else [])]
        lr = self.cfg.sft_learning_rate
        scratch = stem + "_run"
        trainer = train(
            train_argv(self.cfg, seed=seed, train_file=train_file, out_dir=scratch, steps=steps, learning_rate=lr)
            + common
        )
        names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
        mask = sparse_diff(base_state, trainer.model.state_dict(), k=k, names=names)
        del trainer
        mask_path = stem + "_mask.safetensors"
        mask.save(mask_path)
        trainer = train(
            train_argv(
                self.cfg,
                seed=seed,
                train_file=train_file,
                out_dir=scratch,
                steps=steps,
                learning_rate=self.cfg.sft_mask_learning_rate,
            )
            + common
            + ["--sparse_mask", mask_path]
        )
        diff = sparse_diff(base_state, trainer.model.state_dict(), mask=SparseDiff.load(mask_path))
        del trainer
        shutil.rmtree(scratch, ignore_errors=True)  # the full fine-tuned weights (1 GB for Gemma 3 270M)
        diff.save(out_path + ".tmp")
        os.replace(out_path + ".tmp", out_path)
        seconds = time.time() - t0
        _write_seconds(stem, seconds)
        return out_path, seconds

    def language_loras(self) -> dict[str, tuple[str, float]]:
        cfg = self.cfg
        return {
            lang: self.train_lora(
                os.path.join(self.work_dir, "shared", f"lora_{lang}"),
                seed=0,
                steps=cfg.language_steps,
                train_file=self.text_files[lang],
            )
            for lang in ("en", *cfg.aligned)
        }

    def language_sfts(self) -> dict[str, tuple[str, float]]:
        cfg = self.cfg
        return {
            lang: self.train_sparse(
                os.path.join(self.work_dir, "shared", f"sft_{lang}.safetensors"),
                seed=0,
                steps=cfg.language_steps,
                train_file=self.text_files[lang],
            )
            for lang in ("en", *cfg.aligned)
        }

    def baseline_adapter(self, seed: int) -> str:
        """The seed's task-only LoRA (trained by the ``baseline`` method; trained here if that has not run)."""
        return self.train_lora(
            os.path.join(self.work_dir, f"seed{seed}", "baseline", "train"), seed=seed, steps=self.cfg.steps
        )[0]


def _write_seconds(stem: str, seconds: float) -> None:
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    with open(stem + ".seconds.json", "w") as fh:
        json.dump({"seconds": seconds}, fh)


def _read_seconds(stem: str) -> float:
    try:
        with open(stem + ".seconds.json") as fh:
            return json.load(fh)["seconds"]
    except FileNotFoundError:
        return float("nan")


def lora_parameter_count(model, lora_config: dict | None = None) -> int:
    """Trainable parameters of the default LoRA adapter on ``model`` (``r · (in + out)`` per adapted Linear)."""
    import torch

    from ..models.loading import load_lora_config

    cfg = lora_config or load_lora_config(None)
    targets = set(cfg["target_modules"])
    return sum(
        cfg["r"] * (m.in_features + m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets
    )


def _file_bytes(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".safetensors"))
    return os.path.getsize(path)


def _adapter_params(path: str) -> int:
    from safetensors import safe_open

    with safe_open(os.path.join(path, "adapter_model.safetensors"), framework="pt") as fh:
        return sum(fh.get_slice(k).get_shape()[0] * fh.get_slice(k).get_shape()[1] for k in fh.keys())


def _diff_entries(path: str) -> int:
    from ..compose import SparseDiff

    return len(SparseDiff.load(path))


# ---- the methods: each returns (scores per test language, extra result fields) ----


def _one_adapter(ctx: _Context, seed: int, out_dir: str, **train):
    """Train one LoRA (``train``: steps, schedule, pairs) and evaluate it on every test language."""
    from ..models import load_model_with_adapters

    adapter, seconds = ctx.train_lora(os.path.join(out_dir, "train"), seed=seed, **train)
    model = load_model_with_adapters(ctx.cfg.model, [adapter])
    scores = ctx.evaluate(model, ctx.test, out_dir)
    return scores, {
        "train_seconds": seconds,
        "trainable_params": _adapter_params(adapter),
        "stored_bytes_per_language": 0,
        "task_bytes": _file_bytes(adapter),
    }


@method("baseline")
def _run_baseline(ctx: _Context, seed: int, out_dir: str):
    return _one_adapter(ctx, seed, out_dir, steps=ctx.cfg.steps)


@method("baseline_2x")
def _run_baseline_2x(ctx: _Context, seed: int, out_dir: str):
    return _one_adapter(ctx, seed, out_dir, steps=2 * ctx.cfg.steps)


@method("alignment")
def _run_alignment(ctx: _Context, seed: int, out_dir: str):
    return _one_adapter(ctx, seed, out_dir, steps=2 * ctx.cfg.steps, schedule="alternate", pairs=ctx.pairs_file)


@method("merging")
def _run_merging(ctx: _Context, seed: int, out_dir: str):
    from ..compose import combine_adapters
    from ..models import load_model_with_adapters

    task = ctx.baseline_adapter(seed)
    align, seconds = ctx.train_lora(
        os.path.join(out_dir, "align"), seed=seed, steps=ctx.cfg.steps, train_file=ctx.pairs_file, schedule="align_only"
    )
    t0 = time.time()
    dev = {}
    for w in ctx.cfg.merge_weights:
        composed = os.path.join(out_dir, f"composed_w{w:g}")
        combine_adapters([task, align], [1.0, w], composed, method="cat")
        model = load_model_with_adapters(ctx.cfg.model, [composed])
        dev[w] = ctx.dev_f1(ctx.evaluate(model, ctx.dev, out_dir, name=f"dev_w{w:g}"))
        del model
    best = max(ctx.cfg.merge_weights, key=lambda w: (dev[w], -w))  # ties: the smaller weight
    model = load_model_with_adapters(ctx.cfg.model, [os.path.join(out_dir, f"composed_w{best:g}")])
    scores = ctx.evaluate(model, ctx.test, out_dir)
    return scores, {
        "train_seconds": seconds,
        "selection_seconds": time.time() - t0,
        "trainable_params": _adapter_params(align),
        "stored_bytes_per_language": 0,
        "task_bytes": _file_bytes(align),
        "chosen": {"weight": best},
        "dev_f1": {f"{w:g}": v for w, v in dev.items()},
    }


@method("madx")
def _run_madx(ctx: _Context, seed: int, out_dir: str):
    from ..compose import combine_adapters
    from ..models import load_model_with_adapters

    languages = ctx.language_loras()
    task, seconds = ctx.train_lora(
        os.path.join(out_dir, "train"), seed=seed, steps=ctx.cfg.steps, extra=["--frozen_deltas", languages["en"][0]]
    )

    def model_for(source):  # the task LoRA composed with the language's, one exact adapter (cat)
        composed = os.path.join(out_dir, f"composed_{source}")
        combine_adapters([languages[source][0], task], [1.0, 1.0], composed, method="cat")
        return load_model_with_adapters(ctx.cfg.model, [composed])

    scores = ctx.evaluate_by_source(model_for, out_dir)
    return scores, {
        "train_seconds": seconds,
        "shared_seconds": sum(s for _, s in languages.values()),
        "trainable_params": _adapter_params(task) + _adapter_params(languages["en"][0]),
        "stored_bytes_per_language": _file_bytes(languages["en"][0]),
        "task_bytes": _file_bytes(task),
    }


@method("lt_sft")
def _run_lt_sft(ctx: _Context, seed: int, out_dir: str):
    from ..compose import SparseDiff, apply_sparse_diffs
    from ..models import load_model

    languages = ctx.language_sfts()
    task, seconds = ctx.train_sparse(
        os.path.join(out_dir, "task.safetensors"),
        seed=seed,
        steps=ctx.cfg.steps,
        train_file=ctx.train_file,
        under=[languages["en"][0]],
    )

    def model_for(source):  # base + the language's difference + the task's
        diffs = [SparseDiff.load(languages[source][0]), SparseDiff.load(task)]
        return apply_sparse_diffs(load_model(ctx.cfg.model), diffs).eval()

    scores = ctx.evaluate_by_source(model_for, out_dir)
    return scores, {
        "train_seconds": seconds,
        "shared_seconds": sum(s for _, s in languages.values()),
        "trainable_params": _diff_entries(task) + _diff_entries(languages["en"][0]),
        "stored_bytes_per_language": _file_bytes(languages["en"][0]),
        "task_bytes": _file_bytes(task),
    }


@method("incline")
def _run_incline(ctx: _Context, seed: int, out_dir: str):
    import torch
    from safetensors.torch import load_file, save_file

    from ..inference.incline import fit_incline, incline
    from ..models import load_model_with_adapters

    model = load_model_with_adapters(ctx.cfg.model, [ctx.baseline_adapter(seed)])
    t0 = time.time()
    maps_path = os.path.join(out_dir, "incline_maps.safetensors")
    if os.path.isfile(maps_path):
        maps = load_file(maps_path)
    else:
        maps = {
            x: fit_incline(
                model,
                ctx.tokenizer,
                [s.text for s in ctx.resource[x]],
                [s.text_en for s in ctx.resource[x]],
                pooling=ctx.cfg.pooling,
            )
            for x in ctx.cfg.aligned
        }
        os.makedirs(out_dir, exist_ok=True)
        save_file({x: m.contiguous() for x, m in maps.items()}, maps_path)
    fit_seconds = time.time() - t0

    def run(sentences, sigma, name):
        out = {}
        for x, sents in sentences.items():
            with incline(model, maps[x], sigma):  # the whole prompt runs through the hooks: no prefix cache
                out.update(ctx.evaluate(model, {x: sents}, out_dir, name=name, prefix_cache=False))
        return out

    dev = {s: ctx.dev_f1(run(ctx.dev, s, f"dev_s{s:g}")) for s in ctx.cfg.incline_sigmas}
    best = max(ctx.cfg.incline_sigmas, key=lambda s: (dev[s], -s))
    scores = run({x: ctx.test[x] for x in ctx.langs if x in ctx.cfg.aligned}, best, "pred")
    # languages without a map are not intervened on: their outputs are the baseline's (same model, same prompts),
    # read from the baseline's result when it has run
    others = [x for x in ctx.langs if x not in ctx.cfg.aligned]
    baseline = os.path.join(ctx.work_dir, f"seed{seed}", "baseline", "result.json")
    if os.path.isfile(baseline):
        with open(baseline) as fh:
            stored = json.load(fh)["scores"]
        scores.update({x: stored[x] for x in others})
    else:
        scores.update(ctx.evaluate(model, {x: ctx.test[x] for x in others}, out_dir))
    n = next(iter(maps.values())).numel()
    return scores, {
        "train_seconds": fit_seconds,
        "selection_seconds": time.time() - t0 - fit_seconds,
        "trainable_params": 0,
        "stored_bytes_per_language": n * torch.finfo(torch.float32).bits // 8,
        "task_bytes": 0,
        "chosen": {"sigma": best},
        "dev_f1": {f"{s:g}": v for s, v in dev.items()},
    }


METHODS = tuple(RUNNERS)  # the registered methods, in order


def run_benchmark(
    cfg: MethodsBenchConfig,
    work_dir: str,
    fig_dir: str,
    name: str = "methods",
    report_only: bool = False,
    overwrite: bool = False,
) -> dict:
    """Run every (seed, method) not done yet, then write the table, JSON and figure. ``report_only``: run nothing;
    report the (seed, method) results already in ``work_dir`` (e.g. while a long run is still going).
    ``overwrite``: replace results already in ``fig_dir`` (refused otherwise, before anything runs)."""
    from ..models import GEMMA3_MODEL_NAME, load_tokenizer, prepared_model_path
    from ..tasks.xsid import resolve_data_dir

    cfg.data_dir = resolve_data_dir(cfg.data_dir)
    cfg.model = cfg.model or prepared_model_path(GEMMA3_MODEL_NAME)
    bad = [m for m in cfg.methods if m not in RUNNERS]
    if bad:
        raise ValueError(f"unknown methods {bad}; choose from {', '.join(METHODS)}")
    claim_results(fig_dir, name, overwrite)
    plan_record = claim_work_dir(work_dir, asdict(cfg))
    dtype = train_dtype(cfg.extra_train_args)
    tokenizer = load_tokenizer(cfg.model)
    ctx = _Context(cfg, tokenizer, work_dir)
    t_start = time.time()
    runs = []
    for seed in cfg.seeds:
        for method in cfg.methods:
            out_dir = os.path.join(work_dir, f"seed{seed}", method)
            fresh = not os.path.isfile(os.path.join(out_dir, "result.json"))
            if fresh and report_only:
                continue

            def one(method=method, seed=seed, out_dir=out_dir):
                t0 = time.time()
                scores, extra = RUNNERS[method](ctx, seed, out_dir)
                return {
                    "seed": seed,
                    "method": method,
                    "dtype": dtype,
                    "f1": {lang: scores[lang]["slot_f1"] for lang in ctx.langs},
                    "scores": {lang: scores[lang] for lang in ctx.langs},
                    "seconds": time.time() - t0,
                    **extra,
                }

            result = run_once(
                out_dir, f"seed {seed} {method}", one,
                check=lambda r, where: validate_run(r, where, METHODS, lambda m: ("f1", "scores", "seconds")),
            )  # fmt: skip
            runs.append(result)
            if fresh:
                print(
                    f"seed {seed} {method}: {result['seconds']:.0f}s  F1 "
                    + " ".join(f"{k}={v:.3f}" for k, v in result["f1"].items()),
                    flush=True,
                )
    summary = summarize(runs, cfg, ctx.langs)
    summary["dtype"] = check_one_dtype(runs)
    summary["wall_clock_seconds_this_invocation"] = time.time() - t_start
    result = {
        "config": asdict(cfg),
        "env": environment(dtype),
        "plan": plan_record,
        "timeline": timeline(plan_record, runs),
        "runs": runs,
        "summary": summary,
    }
    publish(fig_dir, name, result, table=markdown_table(summary, cfg, ctx.langs),
            plot=lambda path: _plot(summary, cfg, ctx.langs, path))  # fmt: skip
    return result


def summarize(runs: list[dict], cfg: MethodsBenchConfig, langs: list[str]) -> dict:
    """Per method: F1 mean/sd per language and group (group mean per seed, then over seeds), and its costs."""
    groups = {
        "english": [x for x in langs if x == "en"],
        "aligned": [x for x in langs if x in cfg.aligned],
        "transfer": [x for x in langs if x != "en" and x not in cfg.aligned],
    }
    out: dict = {"methods": {}, "groups": groups}
    for method in cfg.methods:
        sub = [r for r in runs if r["method"] == method]
        if not sub:
            continue
        entry: dict = {"n_seeds": len(sub), "f1": {}, "groups": {}}
        for lang in langs:
            entry["f1"][lang] = mean_sd([r["f1"][lang] for r in sub])
        for g, members in groups.items():
            if members:
                entry["groups"][g] = mean_sd([statistics.mean(r["f1"][x] for x in members) for r in sub])
        for key in ("train_seconds", "selection_seconds", "seconds"):
            if all(key in r for r in sub):
                entry[key] = statistics.mean(r[key] for r in sub)
        for key in ("shared_seconds", "trainable_params", "stored_bytes_per_language", "task_bytes"):
            if key in sub[0]:
                entry[key] = sub[0][key]
        if "chosen" in sub[0]:
            entry["chosen"] = [r["chosen"] for r in sub]
        out["methods"][method] = entry
    # paired differences against the task-only controls: seed-level t-intervals over per-seed group means (primary)
    # and the bootstrap over seeds and sentence clusters (sensitivity)
    pairs = [(m, ref) for ref in ("baseline", "baseline_2x") for m in cfg.methods if m != ref]
    paired_intervals(out, runs, {g: m for g, m in groups.items() if m}, pairs)
    return out


def markdown_table(summary: dict, cfg: MethodsBenchConfig, langs: list[str]) -> str:
    def cell(v):
        return f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}"

    aligned = [x for x in langs if x in cfg.aligned]
    lines = [
        f"Compute dtype: {summary.get('dtype', 'not recorded')}.",
        "",
        "| method | English | " + " | ".join(aligned) + " | aligned avg | transfer avg | train s/seed | "
        "shared s (once) | trainable params | stored per language |",
        "|---|---|" + "---|" * len(aligned) + "---|---|---|---|---|---|",
    ]
    full = max((e["n_seeds"] for e in summary["methods"].values()), default=0)

    def label(method: str, e: dict) -> str:  # a method with fewer seeds than the others says so
        return method if e["n_seeds"] == full else f"{method} (n={e['n_seeds']})"

    for method, e in summary["methods"].items():
        g = e["groups"]
        lines.append(
            f"| {label(method, e)} | {cell(g['english']) if 'english' in g else '-'} | "
            + "".join(f"{cell(e['f1'][x])} | " for x in aligned)
            + f"{cell(g['aligned']) if 'aligned' in g else '-'} | {cell(g['transfer']) if 'transfer' in g else '-'} | "
            f"{e.get('train_seconds', float('nan')):.0f} | "
            + (f"{e['shared_seconds']:.0f}" if e.get("shared_seconds") else "-")
            + f" | {e.get('trainable_params', 0):,} | {_human(e.get('stored_bytes_per_language', 0))} |"
        )
    transfer = [x for x in langs if x != "en" and x not in cfg.aligned]
    if transfer:
        lines += [
            "",
            "Transfer languages (no method saw them in any form):",
            "",
            "| method | " + " | ".join(transfer) + " |",
            "|---|" + "---|" * len(transfer),
        ]
        for method, e in summary["methods"].items():
            lines.append(f"| {label(method, e)} | " + " | ".join(cell(e["f1"][x]) for x in transfer) + " |")
    chosen = {m: e["chosen"] for m, e in summary["methods"].items() if "chosen" in e}
    if chosen:
        lines += [
            "",
            "Chosen on the dev split, per seed: "
            + "; ".join(f"{m} {', '.join(str(c) for c in v)}" for m, v in chosen.items()),
        ]
    return "\n".join(lines) + "\n"


def _human(n: int) -> str:
    if not n:
        return "0"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _plot(summary: dict, cfg: MethodsBenchConfig, langs: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary["methods"])
    cols = ["english", "aligned", "transfer"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        g = summary["methods"][method]["groups"]
        ax.bar(
            [i + width * j for i in range(len(cols))],
            [100 * g[c][0] if c in g else 0 for c in cols],
            width,
            yerr=[100 * g[c][1] if c in g else 0 for c in cols],
            label=method,
            capsize=2,
        )
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(cols))])
    ax.set_xticklabels(["English (supervised)", f"aligned ({', '.join(cfg.aligned)})", "transfer (unseen)"])
    ax.set_ylabel("slot F1 (mean ± sd over seeds)")
    ax.set_title("xSID, zero-shot from English: transfer methods on one model and budget")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    from ..alignment import CENTERING

    cfg, args = experiment_cli(
        argv,
        prog="midalign experiment methods",
        description=__doc__.split("\n\n")[0],
        cfg_cls=MethodsBenchConfig,
        methods=METHODS,
        languages_help="comma-separated evaluated languages (default en, the aligned ones, da,it,sr,kk)",
        quick_help="a minutes-long smoke run (1 seed, 4 languages, 2 steps)",
        work_dir="outputs/bench_methods",
        skip=("remedy",),  # the comparison has no remedy arm: its alignment run's centering is --paper-arm-center
        choices={"center": list(CENTERING)},
        switches={
            "report-only": "run nothing: write the table, JSON and figure from the results already in --output-dir"
        },
    )
    name = args.name or ("methods_quick" if args.quick else "methods")
    return run_benchmark(cfg, args.work_dir, args.fig_dir, name, report_only=args.report_only, overwrite=args.overwrite)
