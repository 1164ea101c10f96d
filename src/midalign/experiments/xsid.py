"""``midalign experiment xsid``: the paper's experiment on real data, at laptop scale.

Per seed, a pretrained multilingual model (default: the embedded Gemma 3 270M) is fine-tuned with LoRA on English
slot filling (xSID ``en.valid``, 300 sentences) and evaluated zero-shot on the ``test`` files of every xSID language
(English test = supervised):

- ``baseline``: task loss only;
- ``baseline_2x``: task loss only, with the alignment run's optimizer steps (twice the task micro-batches);
- ``alignment``: the paper's alternate schedule, with en<->x pairs from the ``x.valid`` files of the *aligned*
  languages at the middle layer (the alignment run gets twice the steps, so it sees as many task micro-batches as
  the baseline). The other languages are *transfer* languages: no run sees them in any form;
- ``alignment_center``: the same with the remedy (``--alignment_center`` = ``remedy``, default ``batch``).

Reported: slot F1 per language (mean ± sd over seeds) and the averages English / aligned / transfer; held-out
retrieval accuracy (en.test <-> x.test) at the aligned layer for the base model and each fine-tuned one; over
languages, Pearson r between the base model's retrieval accuracy and the baseline's F1 (the paper: r = 0.56); the
paired differences of :data:`PAIRS` per group with seed-level t-intervals (primary) and 95% bootstrap intervals over
seeds and test sentences (sensitivity; F1 recomputed from per-sentence span counts in each resample).

The evaluated items are held out of every training file: ``en.test`` and ``en.valid`` share sentences, and an
aligned language's ``valid`` file holds translations of some test sentences, so :func:`xsid_subsets` drops every
test item whose English original or any rendering occurs (normalized) in the task rows or the pairs, then draws a
seeded random sample -- the same items in every language -- and records the counts in the results file
(``subset``).

Everything goes through the library's real entry points (``run_training``, ``run_generation``, the xSID reader and
scorer). Resumable: each (method, seed) writes ``result.json`` when done and is skipped on a rerun; generation
outputs are resumable files per language.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field

from ..vocabulary import flag
from .harness import (
    bootstrap_f1_ci,
    claim_results,
    claim_work_dir,
    experiment_cli,
    mean_sd,
    pearson,
    publish,
    read_json,
    run_once,
    train,
    train_dtype,
    validate_run,
    write_json,
    write_jsonl,
)
from .plan import check_one_dtype, environment, timeline
from .stats import paired_seed_interval

__all__ = ["XsidBenchConfig", "evaluated_languages", "METHODS", "run_benchmark", "summarize", "main"]

METHODS = ("baseline", "baseline_2x", "alignment", "alignment_center")
ALIGNMENT_METHODS = ("alignment", "alignment_center")  # the alternate schedule: task + alignment micro-batches
# Paired differences reported (a - b, same seeds and sentences), when both rows ran.
PAIRS = (("alignment", "baseline_2x"), ("alignment_center", "baseline_2x"), ("alignment_center", "alignment"),
         ("alignment", "baseline"), ("baseline_2x", "baseline"))  # fmt: skip
ALIGNED = ("de", "zh", "ja", "ar")


def check_run(run, where: str) -> None:
    """A finished (seed, method) run of this experiment, or a ValueError naming ``where`` (:func:`validate_run`)."""
    validate_run(run, where, METHODS, lambda m: ("f1", "scores", "retrieval_at_layer", "train_seconds", "eval_seconds"))


@dataclass
class XsidBenchConfig:
    model: str | None = None  # default: the embedded gemma-3-270m (``midalign prepare-model --model gemma-3-270m``)
    data_dir: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    aligned: tuple[str, ...] = ALIGNED
    languages: tuple[str, ...] | None = None  # evaluated languages; default every xSID language
    # The defaults fit ~90 min on 2 CPU cores per seed set (README: Real data): 15 languages x 32 test sentences,
    # 32 baseline steps of 8 sentences (256 of the 300 English sentences).
    # N test items per language: a seeded random sample (subset_seed) of the English test sentences that no
    # training file holds in any language, each evaluated in every language through its translation (never a
    # prefix of the file; see xsid_subsets)
    test_size: int = 32
    retrieval_size: int = 100  # held-out en.test <-> x.test pairs for retrieval accuracy, drawn the same way
    subset_seed: int = 0
    keep_leaked: bool = False  # True: evaluate items that also occur in the training rows or pairs (counted)
    steps: int = 32  # baseline optimizer steps; baseline_2x and alignment get twice as many
    batch_size: int = 8
    learning_rate: float = 1e-3
    layer: int | None = None  # default: the library's default (L // 2)
    pooling: str = "mean_skip_first"
    center: str = "none"  # --alignment_center of the paper's row "alignment" (default: the paper's loss)
    remedy: str = "batch"  # --alignment_center of the row "alignment_center" (docs: Remedies)
    temperature: float = 0.1
    weight: float = 1.0
    intent: bool = False
    max_new_tokens: int = 32
    eval_batch_size: int = 32
    methods: tuple[str, ...] = METHODS
    extra_train_args: list[str] = field(default_factory=list)
    # settings that count something: checked >= 1 before any run (a subclass adds its own)
    POSITIVE = ("test_size", "retrieval_size", "steps", "batch_size", "max_new_tokens", "eval_batch_size")

    def __post_init__(self):
        # every setting checked before any run: a recorded setting is always the one used
        for name in self.POSITIVE:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{flag(name)} must be an integer >= 1, got {value!r}")
        if self.layer is not None and self.layer < 1:
            raise ValueError(f"--alignment-layer must be >= 1 (a decoder layer, 1-based), got {self.layer}")

    @classmethod
    def quick(cls, **kw) -> XsidBenchConfig:
        base = dict(
            seeds=(0,),
            aligned=("de", "zh"),
            languages=("en", "de", "zh", "da", "ja"),
            test_size=4,
            retrieval_size=8,
            steps=2,
            batch_size=4,
            max_new_tokens=8,
            eval_batch_size=4,
        )
        return cls(**{**base, **kw})


def prepare_data(cfg: XsidBenchConfig, tokenizer, work_dir: str) -> dict[str, str]:
    """Training rows (English task) and alignment pairs (en <-> aligned x), written once per work dir."""
    from ..inference.prompts import render_example
    from ..tasks import xsid
    from ..tasks.xsid_cli import write_pairs

    os.makedirs(work_dir, exist_ok=True)
    train = os.path.join(work_dir, "train_en_valid.json")
    pairs = os.path.join(work_dir, "pairs_" + "_".join(cfg.aligned) + "_valid.json")
    english = xsid.load_xsid("en", "valid", cfg.data_dir)
    write_jsonl(
        train,
        (render_example(tokenizer, s.text, xsid.gold_target(s, cfg.intent), xsid.SYSTEM_PROMPT) for s in english),
    )
    sentences = [s for lang in cfg.aligned for s in xsid.load_xsid(lang, "valid", cfg.data_dir)]
    write_pairs(sentences, pairs)
    return {"train": train, "pairs": pairs}


def train_argv(
    cfg: XsidBenchConfig,
    *,
    seed: int,
    train_file: str,
    out_dir: str,
    steps: int,
    schedule: str = "task_only",
    pairs: str | None = None,
    learning_rate: float | None = None,
    center: str | None = None,
) -> list[str]:
    """The ``run_training`` flags of one bench run (LoRA by default; callers add e.g. ``--use_lora False``)."""
    argv = [
        "--model_name_or_path", cfg.model,
        "--train_file", train_file,
        "--output_dir", out_dir,
        "--overwrite_output_dir", "True",
        "--max_steps", str(steps),
        "--per_device_train_batch_size", str(cfg.batch_size),
        "--learning_rate", str(learning_rate or cfg.learning_rate),
        "--lr_scheduler_type", "cosine",
        "--warmup_steps", "0.05",
        "--weight_decay", "0",
        "--logging_steps", str(max(steps // 8, 1)),
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "True",
        "--seed", str(seed),
        "--alignment_pooling", cfg.pooling,
        "--alignment_temperature", str(cfg.temperature),
        "--alignment_weight", str(cfg.weight),
        "--alignment_schedule", schedule, "--alignment_center", center or cfg.center,
        *(["--alignment_layer", str(cfg.layer)] if cfg.layer is not None else []),
        *(["--alignment_file", pairs] if pairs else []),
    ]  # fmt: skip
    return argv + list(cfg.extra_train_args)


def _train(cfg: XsidBenchConfig, method: str, seed: int, files: dict[str, str], out_dir: str):
    steps = cfg.steps if method == "baseline" else 2 * cfg.steps
    if method in ALIGNMENT_METHODS:
        center = cfg.remedy if method == "alignment_center" else cfg.center
        argv = train_argv(cfg, seed=seed, train_file=files["train"], out_dir=out_dir, steps=steps,
                          schedule="alternate", pairs=files["pairs"], center=center)  # fmt: skip
    else:
        argv = train_argv(cfg, seed=seed, train_file=files["train"], out_dir=out_dir, steps=steps)
    return train(argv)


def _retrieval(model, tokenizer, cfg: XsidBenchConfig, langs, layers) -> dict[str, dict[int, float]]:
    """Held-out retrieval accuracy@1 (mean of both directions) en.test <-> x.test, per language and layer."""
    from ..analysis import retrieval_accuracy_at_1, sentence_embeddings

    out = {}
    held_out = xsid_subsets(cfg, evaluated_languages(cfg))["retrieval"]
    for lang in langs:
        sents = held_out[lang]
        a = sentence_embeddings(model, tokenizer, [s.text_en for s in sents], layers, pooling=cfg.pooling)
        b = sentence_embeddings(model, tokenizer, [s.text for s in sents], layers, pooling=cfg.pooling)
        # string keys: the same in memory as after a JSON round trip
        out[lang] = {
            str(k): (retrieval_accuracy_at_1(a[k], b[k]) + retrieval_accuracy_at_1(b[k], a[k])) / 2 for k in sorted(a)
        }
    return out


def evaluate_sentences(
    model,
    tokenizer,
    sentences: dict[str, list],
    out_dir: str,
    *,
    intent: bool,
    batch_size: int,
    max_new_tokens: int,
    name: str = "pred",
    prefix_cache: bool = True,
) -> dict[str, dict]:
    """Generate for ``{lang: [XsidSentence]}`` (resumable files ``<out_dir>/<name>_<lang>.json``) and score each
    language; returns ``{lang: scores dict}``."""
    from ..inference import run_generation
    from ..inference.task_cli import prompt_rows
    from ..tasks import xsid
    from ..tasks.xsid_cli import examples

    scores = {}
    for lang, sents in sentences.items():
        rows, add_special_tokens = prompt_rows(tokenizer, examples(sents, intent))
        out = run_generation(
            model,
            tokenizer,
            rows,
            os.path.join(out_dir, f"{name}_{lang}.json"),
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            add_special_tokens=add_special_tokens,
            prefix_cache=prefix_cache,
            progress=False,
        )
        predictions = [r["prediction"] for r in out]
        scores[lang] = xsid.score_xsid(sents, predictions).to_dict()
        scores[lang].pop("per_language")
        scores[lang]["span_counts"] = xsid.sentence_span_counts(sents, predictions)  # for intervals
    return scores


def _key(sentence) -> str:
    """The item a sentence renders: its English original, normalized (xSID is parallel through ``# text-en``)."""
    from .leakage import normalize_text

    return normalize_text(sentence.text_en if sentence.text_en else sentence.text)


def xsid_subsets(cfg: XsidBenchConfig, langs) -> dict:
    """The evaluated items, the same in every language of ``langs``: English test sentences whose translation every
    evaluated language has, minus those whose English original or any rendering occurs (normalized) in the task
    rows (``en.valid``) or the alignment pairs (the aligned languages' ``valid`` files and their English originals),
    then a seeded random sample of ``test_size`` (and, among the rest of the pool, of ``retrieval_size`` for
    retrieval, restricted to the languages with English originals).

    Returns:
        ``{"test": {lang: [sentences]}, "retrieval": {lang: [sentences]}, "record": what the results file keeps}``.
    """
    import random

    from ..tasks import xsid
    from .leakage import find_leaks

    by_lang = {}
    for lang in langs:
        first = {}
        for sent in xsid.load_xsid(lang, "test", cfg.data_dir):
            first.setdefault(_key(sent), sent)  # `no` renders a sentence in several dialects: the first one
        by_lang[lang] = first
    pool = sorted(set.intersection(*(set(v) for v in by_lang.values())))
    train = [s.text for s in xsid.load_xsid("en", "valid", cfg.data_dir)]
    pair_sents = [s for lang in cfg.aligned for s in xsid.load_xsid(lang, "valid", cfg.data_dir)]
    pairs = [t for s in pair_sents for t in (s.text, s.text_en or "")]
    items = {lang: [(k, by_lang[lang][k].text) for k in pool] for lang in langs}
    items["<english original>"] = [(k, k) for k in pool]
    leaks = find_leaks(items, {"task rows (en.valid)": ((), train), "alignment pairs": ((), pairs)})
    leaked = set(leaks["leaked_ids"])
    usable = pool if cfg.keep_leaked else [k for k in pool if k not in leaked]
    rng = random.Random(cfg.subset_seed)
    test_keys = sorted(rng.sample(usable, min(cfg.test_size, len(usable))))
    rest = [k for k in usable if k not in set(test_keys)]
    retrieval_langs = [x for x in langs if x != "en"]
    retrieval_keys = sorted(rng.sample(rest, min(cfg.retrieval_size, len(rest))))
    record = {"pool": len(pool), "leaked": len(leaked), "kept_leaked": cfg.keep_leaked, "seed": cfg.subset_seed,
              "test_items": len(test_keys), "retrieval_items": len(retrieval_keys),
              "leaks_by_source": {k: {"by_text": v["by_text"]} for k, v in leaks["by_source"].items()},
              "method": "seeded random sample of items held out of every training file (any language)"}  # fmt: skip
    return {"test": {x: [by_lang[x][k] for k in test_keys] for x in langs},
            "retrieval": {x: [by_lang[x][k] for k in retrieval_keys] for x in retrieval_langs},
            "record": record}  # fmt: skip


def test_sentences(cfg: XsidBenchConfig, langs) -> dict[str, list]:
    """The evaluated test sentences of each language: :func:`xsid_subsets`' items (the same for every method and
    seed)."""
    return xsid_subsets(cfg, langs)["test"]


def _evaluate(model, tokenizer, cfg: XsidBenchConfig, langs, out_dir: str) -> dict[str, dict]:
    return evaluate_sentences(
        model,
        tokenizer,
        test_sentences(cfg, langs),
        out_dir,
        intent=cfg.intent,
        batch_size=cfg.eval_batch_size,
        max_new_tokens=cfg.max_new_tokens,
    )


def evaluated_languages(cfg: XsidBenchConfig) -> list[str]:
    from ..tasks.xsid import XSID_LANGUAGES

    langs = list(cfg.languages or XSID_LANGUAGES)
    unknown = [x for x in (*langs, *cfg.aligned) if x not in XSID_LANGUAGES]
    if unknown:
        raise ValueError(f"unknown xSID languages {unknown}; valid: {', '.join(XSID_LANGUAGES)}")
    if "en" in cfg.aligned:
        raise ValueError("--aligned: English is the source language; list target languages only")
    return langs


def run_benchmark(
    cfg: XsidBenchConfig, work_dir: str, fig_dir: str, name: str = "xsid", overwrite: bool = False
) -> dict:
    """Run every (seed, method) not done yet in ``work_dir`` (resumable), then write the table, JSON and figure to
    ``fig_dir`` (existing results there are refused before anything runs, unless ``overwrite``)."""
    from ..alignment import num_decoder_layers
    from ..models import GEMMA3_MODEL_NAME, load_model, load_model_with_adapters, load_tokenizer, prepared_model_path
    from ..tasks.xsid import resolve_data_dir
    from ..training.arguments import default_alignment_layer

    cfg.data_dir = resolve_data_dir(cfg.data_dir)
    cfg.model = cfg.model or prepared_model_path(GEMMA3_MODEL_NAME)
    claim_results(fig_dir, name, overwrite)
    plan_record = claim_work_dir(work_dir, asdict(cfg))
    dtype = train_dtype(cfg.extra_train_args)
    langs = evaluated_languages(cfg)
    targets = [x for x in langs if x != "en"]
    tokenizer = load_tokenizer(cfg.model)
    files = prepare_data(cfg, tokenizer, work_dir)
    t_start = time.time()

    base_path = os.path.join(work_dir, "base_retrieval.json")
    if os.path.isfile(base_path):
        base = read_json(base_path)
    else:
        model = load_model(cfg.model)
        n_layers = num_decoder_layers(model)
        if cfg.layer is not None and cfg.layer > n_layers:
            raise ValueError(
                f"--alignment-layer {cfg.layer}: this model has {n_layers} decoder layers; choose 1..{n_layers}"
            )
        base = {"n_layers": n_layers, "retrieval": _retrieval(model, tokenizer, cfg, targets, None)}
        del model
        write_json(base_path, base)
    layer = cfg.layer if cfg.layer is not None else default_alignment_layer(base["n_layers"])
    if not 1 <= layer <= base["n_layers"]:
        raise ValueError(
            f"--alignment-layer {layer}: this model has {base['n_layers']} decoder layers; choose 1..{base['n_layers']}"
        )

    runs = []
    for seed in cfg.seeds:
        for method in cfg.methods:
            out_dir = os.path.join(work_dir, f"seed{seed}", method)
            fresh = not os.path.isfile(os.path.join(out_dir, "result.json"))

            def one(method=method, seed=seed, out_dir=out_dir):
                t0 = time.time()
                trainer = _train(cfg, method, seed, files, os.path.join(out_dir, "train"))
                train_seconds = time.time() - t0
                logs = trainer.state.log_history
                del trainer
                model = load_model_with_adapters(cfg.model, [os.path.join(out_dir, "train", "adapter_model")])
                t1 = time.time()
                scores = _evaluate(model, tokenizer, cfg, langs, out_dir)
                retrieval = _retrieval(model, tokenizer, cfg, targets, [layer])
                return {
                    "seed": seed,
                    "method": method,
                    "dtype": dtype,
                    "f1": {lang: s["slot_f1"] for lang, s in scores.items()},
                    "scores": scores,
                    "retrieval_at_layer": {lang: r[str(layer)] for lang, r in retrieval.items()},
                    "train_seconds": train_seconds,
                    "eval_seconds": time.time() - t1,
                    "final_logs": [h for h in logs if "loss/task" in h or "loss/align" in h][-2:],
                }

            result = run_once(out_dir, f"seed {seed} {method}", one, check=check_run)
            runs.append(result)
            if fresh:
                print(
                    f"seed {seed} {method}: train {result['train_seconds']:.0f}s eval {result['eval_seconds']:.0f}s F1 "
                    + " ".join(f"{k}={v:.3f}" for k, v in result["f1"].items()),
                    flush=True,
                )
    summary = summarize(runs, base, cfg, langs, layer)
    summary["dtype"] = check_one_dtype(runs)
    summary["wall_clock_seconds_this_invocation"] = time.time() - t_start
    result = {"config": asdict(cfg), "plan": plan_record, "timeline": timeline(plan_record, runs),
              "layer": layer, "base": base, "runs": runs, "summary": summary,
              "subset": xsid_subsets(cfg, langs)["record"], "env": environment(dtype)}  # fmt: skip
    publish(fig_dir, name, result, table=markdown_table(summary, cfg, langs),
            plot=lambda path: _plot(summary, cfg, langs, path))  # fmt: skip
    return result


def summarize(runs: list[dict], base: dict, cfg: XsidBenchConfig, langs: list[str], layer: int) -> dict:
    """Per method: F1 mean/sd per language and per group (English, aligned, transfer; the group mean is taken per
    seed, then averaged); retrieval at the aligned layer; and Pearson r (base retrieval vs baseline F1)."""
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
        entry = {"n_seeds": len(sub), "f1": {}, "groups": {}, "retrieval": {}}
        for lang in langs:
            entry["f1"][lang] = mean_sd([r["f1"][lang] for r in sub])
        for g, members in groups.items():
            if members:
                entry["groups"][g] = mean_sd([statistics.mean(r["f1"][x] for x in members) for r in sub])
        for lang in langs:
            if lang != "en":
                entry["retrieval"][lang] = mean_sd([r["retrieval_at_layer"][lang] for r in sub])
        entry["train_seconds"] = statistics.mean(r["train_seconds"] for r in sub)
        entry["eval_seconds"] = statistics.mean(r["eval_seconds"] for r in sub)
        out["methods"][method] = entry
    paired_intervals(out, runs, groups)
    base_at = {lang: v[str(layer)] for lang, v in base["retrieval"].items()}
    out["base_retrieval_at_layer"] = base_at
    if "baseline" in out["methods"]:
        xs = [x for x in langs if x != "en"]
        out["pearson_base_retrieval_vs_baseline_f1"] = pearson(
            [base_at[x] for x in xs], [out["methods"]["baseline"]["f1"][x][0] for x in xs]
        )
    return out


def _counts(runs: list[dict], method: str) -> dict[int, dict[str, list]] | None:
    """``{seed: {lang: span counts}}`` of one method, or None when a run predates the counts."""
    sub = [r for r in runs if r["method"] == method]
    if not sub or any("span_counts" not in v for r in sub for v in r["scores"].values()):
        return None
    return {r["seed"]: {lang: v["span_counts"] for lang, v in r["scores"].items()} for r in sub}


def paired_intervals(out: dict, runs: list[dict], groups: dict[str, list[str]], pairs=PAIRS) -> None:
    """Into ``out``: per method, 95% bootstrap intervals (seeds and sentence clusters) of each group's F1; per pair
    ``(a, b)`` of ``pairs``, the paired difference's seed-level t-interval (``paired_t``, the primary interval) and
    its clustered bootstrap (``paired``, the sensitivity check). Shared by every xSID experiment."""
    for method, entry in out["methods"].items():
        counts = _counts(runs, method)
        if counts:
            entry["groups_ci"] = {g: bootstrap_f1_ci(counts, langs=m) for g, m in groups.items() if m}
    out["paired"] = {}
    for a, b in pairs:
        ca, cb = _counts(runs, a), _counts(runs, b)
        if ca and cb:
            common = sorted(set(ca) & set(cb))
            if common:
                ca, cb = {s: ca[s] for s in common}, {s: cb[s] for s in common}
                out["paired"][f"{a} - {b}"] = {"seeds": common, **{
                    g: bootstrap_f1_ci(ca, cb, langs=m) for g, m in groups.items() if m}}  # fmt: skip
    # the primary intervals: seed-level t over the per-seed paired group means (the bootstrap above is the
    # sensitivity check; with fewer than 5 seeds the seed variance dominates either)
    by = {(r["method"], r["seed"]): r for r in runs}
    out["paired_t"] = {}
    for a, b in pairs:
        common = sorted(s for (m, s) in by if m == a and (b, s) in by)
        if common:
            out["paired_t"][f"{a} - {b}"] = {
                g: paired_seed_interval({s: statistics.fmean(by[(a, s)]["f1"][x] for x in m) for s in common},
                                        {s: statistics.fmean(by[(b, s)]["f1"][x] for x in m) for s in common})
                for g, m in groups.items() if m
            }  # fmt: skip


def markdown_table(summary: dict, cfg: XsidBenchConfig, langs: list[str]) -> str:
    def cell(v):
        return f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}"

    lines = [
        f"Compute dtype: {summary.get('dtype', 'not recorded')}.",
        "",
        "| method | English | aligned avg | transfer avg | " + " | ".join(langs) + " |",
        "|---|---|---|---|" + "---|" * len(langs),
    ]
    for method, e in summary["methods"].items():
        g = e["groups"]
        lines.append(
            f"| {method} | {cell(g['english']) if 'english' in g else '-'} | "
            f"{cell(g['aligned']) if 'aligned' in g else '-'} | {cell(g['transfer']) if 'transfer' in g else '-'} | "
            + " | ".join(cell(e["f1"][x]) for x in langs)
            + " |"
        )
    targets = [x for x in langs if x != "en"]
    lines += [
        "",
        "Held-out retrieval accuracy@1 (en.test <-> x.test) at the aligned layer:",
        "",
        "| model | " + " | ".join(targets) + " |",
        "|---|" + "---|" * len(targets),
        "| base | " + " | ".join(f"{100 * summary['base_retrieval_at_layer'][x]:.1f}" for x in targets) + " |",
    ]
    for method, e in summary["methods"].items():
        lines.append(f"| {method} | " + " | ".join(f"{100 * e['retrieval'][x][0]:.1f}" for x in targets) + " |")
    r = summary.get("pearson_base_retrieval_vs_baseline_f1")
    lines += ["", f"Pearson r (base retrieval vs baseline F1, {len(targets)} languages): "
              + (f"{r:.2f}" if r is not None else "n/a")]  # fmt: skip
    if summary.get("paired"):

        def ci(v):
            return f"{100 * v[0]:+.1f} [{100 * v[1]:+.1f}, {100 * v[2]:+.1f}]"

        names = [g for g in ("english", "aligned", "transfer") if g in summary["groups"] and summary["groups"][g]]
        lines += ["", "Paired differences in slot F1 (points; 95% bootstrap interval over seeds and sentences):", "",
                  "| a - b | seeds | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]  # fmt: skip
        for pair, d in summary["paired"].items():
            lines.append(f"| {pair} | {len(d['seeds'])} | " + " | ".join(ci(d[g]) for g in names) + " |")
    return "\n".join(lines) + "\n"


def _plot(summary: dict, cfg: XsidBenchConfig, langs: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary["methods"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        e = summary["methods"][method]
        ax.bar(
            [i + width * j for i in range(len(langs))],
            [100 * e["f1"][x][0] for x in langs],
            width,
            yerr=[100 * e["f1"][x][1] for x in langs],
            label=method,
            capsize=2,
        )
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(langs))])
    ax.set_xticklabels([f"{x}{'*' if x in cfg.aligned else ''}" for x in langs], rotation=45)
    ax.set_ylabel("slot F1 (mean ± sd over seeds)")
    ax.set_title("xSID test, zero-shot from English (* = aligned language)")
    ax.legend()
    targets = [x for x in langs if x != "en"]
    if "baseline" in summary["methods"]:
        xs = [100 * summary["base_retrieval_at_layer"][x] for x in targets]
        ys = [100 * summary["methods"]["baseline"]["f1"][x][0] for x in targets]
        ax2.scatter(xs, ys)
        for x, y, lang in zip(xs, ys, targets):
            ax2.annotate(lang, (x, y), fontsize=8)
        r = summary.get("pearson_base_retrieval_vs_baseline_f1")
        ax2.set_title(f"base retrieval vs baseline F1 (r = {r:.2f})" if r is not None else "base retrieval vs F1")
        ax2.set_xlabel("base model retrieval acc@1 at the aligned layer")
        ax2.set_ylabel("baseline slot F1")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    from ..alignment import CENTERING

    cfg, args = experiment_cli(
        argv,
        prog="midalign experiment xsid",
        description=__doc__.split("\n\n")[0],
        cfg_cls=XsidBenchConfig,
        methods=METHODS,
        choices={"center": list(CENTERING), "remedy": [c for c in CENTERING if c != "none"]},
        languages_help="comma-separated evaluated languages (default: all 15)",
        quick_help="a minutes-long smoke run (1 seed, 5 languages, 2 steps)",
        work_dir="outputs/bench_xsid",
    )
    name = args.name or ("xsid_quick" if args.quick else "xsid")
    return run_benchmark(cfg, args.work_dir, args.fig_dir, name, overwrite=args.overwrite)
