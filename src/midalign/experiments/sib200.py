"""``midalign experiment sib200``: does middle-layer alignment improve zero-shot topic classification? (SIB-200)

Per seed, LoRA on the English train split (701 sentences, 7 topics) of a pretrained multilingual model (default: the
embedded Gemma 3 270M, bf16 base weights), then zero-shot label-scoring accuracy on the test split of every
evaluated language. Rows (``--methods``):

- ``baseline``: task loss only, ``steps`` optimizer steps;
- ``baseline_2x``: task loss only, ``2 * steps`` (as many optimizer steps as the alignment runs: twice the task
  passes);
- ``alignment``: the paper's alternate schedule, ``2 * steps`` (so as many task micro-batches as ``baseline``), with
  English <-> x pairs from the *train* split of the aligned languages, shuffled across languages with the seed;
- ``alignment_center``: the same with ``--alignment_center <remedy>`` (default ``batch``);
- ``control_paper`` / ``control_center``: the positive control -- alignment only (no task), ``control_steps`` steps,
  paper loss vs remedy; scored by retrieval only.

Reported: accuracy (and macro-F1) per language and per group (English / aligned / transfer / script); paired
differences against ``baseline`` and ``baseline_2x`` with a seed-level t-interval on the per-seed paired means
(primary) and a bootstrap over seeds and sentence clusters (one sentence id counts in every language at once) as the
sensitivity check; held-out retrieval acc@1 x->en among the test sentences at the aligned layer, raw and centered,
for the base model and every run; r over the transfer languages (fixed effects) between base retrieval and the
baseline's accuracy, with its Fisher interval, Spearman's rho and the leave-one-language-out range. SIB-200 splits
FLORES by sentence; before any training the evaluated items are still checked against the task rows and the pairs
(:func:`leak_check`), and the retrieval sentences against the pairs (:func:`retrieval_subset`), by id and by
normalized text in any language; what leaks is counted and dropped.

Resumable: each (method, seed) writes ``result.json`` when done and is skipped on a rerun; predictions are resumable
files per language.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass, field

from ..models.hardware import resolve_dtype
from ..vocabulary import flag
from .harness import (
    claim_results,
    claim_work_dir,
    experiment_cli,
    mean_sd,
    publish,
    read_json,
    reuse_results,
    run_once,
    train,
    validate_run,
    write_json,
    write_jsonl,
)
from .plan import timeline
from .protocol import seed_accuracy
from .stats import correlation_line, paired_seed_interval

__all__ = ["Sib200Config", "METHODS", "DEFAULT_TRANSFER", "run_experiment", "summarize", "main"]

METHODS = ("baseline", "baseline_2x", "alignment", "alignment_center", "control_paper", "control_center")
TASK_METHODS = ("baseline", "baseline_2x", "alignment", "alignment_center")
ENGLISH = "eng_Latn"
# Chosen before any result, for spread: four scripts aligned (Latin, Han, Arabic, Cyrillic) ...
DEFAULT_ALIGNED = ("deu_Latn", "zho_Hans", "arb_Arab", "rus_Cyrl")
# ... and transfer languages that share an aligned script code (fra, pol: Latin; ukr: Cyrillic) or do not (jpn Jpan --
# kanji is Han, but its FLORES script code differs from zho_Hans, and the groups go by code --, kor Hangul, heb Hebrew,
# ben Bengali, amh Ethiopic; amh also low-resource for the model).
DEFAULT_TRANSFER = ("fra_Latn", "pol_Latn", "ukr_Cyrl", "jpn_Jpan", "kor_Hang", "heb_Hebr", "ben_Beng", "amh_Ethi")


def check_run(run, where: str) -> None:
    """A finished (seed, method) run of this experiment, or a ValueError naming ``where`` (:func:`validate_run`)."""
    validate_run(run, where, METHODS, lambda m: ("retrieval", "train_seconds", "eval_seconds")
                 + (("eval",) if m in TASK_METHODS else ()))  # fmt: skip


@dataclass
class Sib200Config:
    model: str | None = None  # default: the embedded gemma-3-270m (``midalign prepare-model --model gemma-3-270m``)
    data_dir: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    aligned: tuple[str, ...] = DEFAULT_ALIGNED
    languages: tuple[str, ...] | None = None  # evaluated; default English + aligned + DEFAULT_TRANSFER; "all" = all
    test_size: int | None = None  # None: the whole test split (204); N: a seeded sample stratified by topic, the
    # same ids in every language (never a prefix: the release sorts test.tsv by topic)
    subset_seed: int = 0
    retrieval_size: int = 204  # test sentences for retrieval (x -> English among them)
    steps: int = 44  # baseline optimizer steps (44 x 16 = one pass over the 701 English sentences)
    batch_size: int = 16
    learning_rate: float = 1e-3
    layer: int | None = None  # default: the library's default (L // 2)
    pooling: str = "mean_skip_first"
    temperature: float = 0.1
    weight: float = 1.0
    remedy: str = "batch"  # --alignment_center of the alignment_center and control_center rows
    control_steps: int = 100
    control_learning_rate: float = 5e-4
    dtype: str = "auto"  # "auto": bfloat16 where the CPU has bf16 units (or on a GPU), else float32
    eval_batch_size: int = 16
    methods: tuple[str, ...] = METHODS
    extra_train_args: list[str] = field(default_factory=list)

    def __post_init__(self):
        # every setting checked before any run: a recorded setting is always the one used
        for name in ("retrieval_size", "steps", "batch_size", "control_steps", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{flag(name)} must be >= 1, got {getattr(self, name)}")
        if self.test_size is not None and self.test_size < 1:
            raise ValueError(f"--test-size must be >= 1 (or omitted for the whole split), got {self.test_size}")
        if self.layer is not None and self.layer < 1:
            raise ValueError(f"--alignment-layer must be >= 1 (a decoder layer, 1-based), got {self.layer}")

    @classmethod
    def quick(cls, **kw) -> Sib200Config:
        base = dict(seeds=(0,), aligned=("deu_Latn",), languages=(ENGLISH, "deu_Latn", "zho_Hans"), test_size=4,
                    retrieval_size=6, steps=2, batch_size=4, control_steps=2, eval_batch_size=4)  # fmt: skip
        return cls(**{**base, **kw})


def _languages(cfg: Sib200Config) -> list[str]:
    from ..tasks.sib200 import available_languages

    present = available_languages(cfg.data_dir)
    if cfg.languages == ("all",):
        langs = present
    else:
        langs = list(dict.fromkeys(cfg.languages or (ENGLISH, *cfg.aligned, *DEFAULT_TRANSFER)))
    missing = [x for x in (*langs, *cfg.aligned) if x not in present]
    if missing:
        raise ValueError(f"SIB-200 languages {missing} are not in {cfg.data_dir} ({len(present)} there)")
    if ENGLISH in cfg.aligned:
        raise ValueError("--aligned: English is the source language; list target languages only")
    if ENGLISH not in langs:
        langs.insert(0, ENGLISH)
    return langs


def prepare_data(cfg: Sib200Config, tokenizer, work_dir: str) -> dict[str, str]:
    """English training rows and en <-> aligned pairs from the train split, written once per work dir."""
    from ..tasks import sib200

    os.makedirs(work_dir, exist_ok=True)
    train_file = os.path.join(work_dir, "train_eng_Latn.json")
    write_jsonl(train_file, sib200.task_rows(tokenizer, sib200.load_sib200(ENGLISH, "train", cfg.data_dir)))
    # mixed-language batches (training shuffles again with its seed)
    pairs = sib200.parallel_pairs(list(cfg.aligned), "train", cfg.data_dir, ENGLISH, seed=0)
    pair_file = os.path.join(work_dir, "pairs_train_" + "_".join(cfg.aligned) + ".json")
    write_jsonl(pair_file, pairs)
    return {"train": train_file, "pairs": pair_file}


def train_argv(
    cfg: Sib200Config, method: str, seed: int, files: dict[str, str], out_dir: str, dtype: str | None = None
) -> list[str]:
    """The training command's flags for one row (``dtype``: the resolved ``cfg.dtype``)."""
    dtype = dtype or resolve_dtype(cfg.dtype)
    control = method.startswith("control")
    steps = cfg.control_steps if control else cfg.steps if method == "baseline" else 2 * cfg.steps
    schedule = {"baseline": "task_only", "baseline_2x": "task_only"}.get(
        method, "align_only" if control else "alternate"
    )
    center = cfg.remedy if method.endswith("_center") else "none"
    lr = cfg.control_learning_rate if control else cfg.learning_rate
    argv = [
        "--model_name_or_path", cfg.model, "--train_file", files["pairs" if control else "train"],
        "--output_dir", out_dir,
        "--overwrite_output_dir", "True", "--max_steps", str(steps),
        "--per_device_train_batch_size", str(cfg.batch_size), "--learning_rate", str(lr),
        "--lr_scheduler_type", "cosine", "--warmup_steps", "0.05", "--weight_decay", "0",
        "--logging_steps", str(max(steps // 8, 1)), "--save_strategy", "no", "--report_to", "none",
        "--disable_tqdm", "True", "--seed", str(seed), "--alignment_schedule", schedule,
        "--alignment_pooling", cfg.pooling, "--alignment_temperature", str(cfg.temperature),
        "--alignment_weight", str(cfg.weight), "--alignment_center", center,
        *(["--alignment_layer", str(cfg.layer)] if cfg.layer is not None else []),
        *(["--alignment_file", files["pairs"]] if schedule == "alternate" else []),
        *(["--contrastive_data_mode", "1"] if control else []),
        *(["--bf16", "True"] if dtype == "bfloat16" else ["--torch_dtype", dtype]),
    ]  # fmt: skip
    return argv + list(cfg.extra_train_args)


def _train_or_reuse(cfg: Sib200Config, method: str, seed: int, files: dict, train_dir: str) -> tuple[float, list]:
    """Train one row, or reuse a training that finished earlier in ``train_dir`` (an experiment killed during its
    evaluation resumes there); returns (training seconds, the log entries of the objectives)."""
    finished = os.path.join(train_dir, "train_results.json")
    argv = train_argv(cfg, method, seed, files, train_dir, resolve_dtype(cfg.dtype))
    if os.path.isfile(finished) and os.path.isfile(os.path.join(train_dir, "midalign_argv.json")):
        if read_json(os.path.join(train_dir, "midalign_argv.json")) == argv:
            history = read_json(os.path.join(train_dir, "trainer_state.json"))["log_history"]
            print(f"seed {seed} {method}: training done earlier ({train_dir})", flush=True)
            return read_json(finished)["train_runtime"], [h for h in history if "loss/task" in h or "loss/align" in h]
    t0 = time.time()
    trainer = train(argv)
    write_json(os.path.join(train_dir, "midalign_argv.json"), argv)
    return time.time() - t0, [h for h in trainer.state.log_history if "loss/task" in h or "loss/align" in h]


def retrieval_subset(cfg: Sib200Config, langs: list[str]) -> dict:
    """The held-out retrieval sentences: ``retrieval_size`` test ids (the whole split by default; a smaller size is a
    seeded sample stratified by topic, never a file prefix), with those whose id or normalized text, in any language,
    occurs in the alignment pairs counted and dropped before any training (:func:`~.leakage.find_leaks`)."""
    from ..data.subsets import sample_ids
    from ..tasks import sib200
    from .leakage import find_leaks

    rows = sib200.load_sib200(ENGLISH, "test", cfg.data_dir)
    labels = {e.index_id: e.category for e in rows}
    ids = sample_ids([e.index_id for e in rows], cfg.retrieval_size, cfg.subset_seed, labels)
    wanted = set(ids)
    items = {x: [(str(e.index_id), e.text) for e in sib200.load_sib200(x, "test", cfg.data_dir) if e.index_id in wanted]
             for x in langs}  # fmt: skip
    present = set(sib200.available_languages(cfg.data_dir))
    pairs = [e for x in (ENGLISH, *cfg.aligned) if x in present for e in sib200.load_sib200(x, "train", cfg.data_dir)]
    leakage = find_leaks(items, {"alignment pairs": ([str(e.index_id) for e in pairs], [e.text for e in pairs])})
    leaked = set(leakage["leaked_ids"])
    kept = [i for i in ids if str(i) not in leaked]
    return {"ids": kept, "seed": cfg.subset_seed, "n_split": len(rows), "leakage": leakage,
            "leaked_dropped": len(ids) - len(kept)}  # fmt: skip


def retrieval(model, tokenizer, cfg: Sib200Config, targets: list[str], layer: int, ids: list[int]) -> dict:
    """acc@1 x -> English among the test sentences ``ids`` (:func:`retrieval_subset`; matched by id, so file order
    does not matter), raw cosine and with both sides centered on their own mean (the centered score is blind to a
    shared direction)."""
    from ..analysis import retrieval_accuracy_at_1, sentence_embeddings
    from ..tasks import sib200

    def embed(lang):
        text = {e.index_id: e.text for e in sib200.load_sib200(lang, "test", cfg.data_dir)}
        missing = [i for i in ids if i not in text]
        if missing:
            raise ValueError(f"SIB-200 {lang}/test: no sentence with index_id {missing[0]} (the retrieval ids come "
                             f"from {ENGLISH}; the release's languages hold the same ids)")  # fmt: skip
        return sentence_embeddings(model, tokenizer, [text[i] for i in ids], [layer], pooling=cfg.pooling)[layer]

    en = embed(ENGLISH)
    out = {}
    for lang in targets:
        x = embed(lang)
        out[lang] = {
            "raw": retrieval_accuracy_at_1(x, en),
            "centered": retrieval_accuracy_at_1(x - x.mean(0), en - en.mean(0)),
        }
    return out


def leak_check(cfg: Sib200Config, langs: list[str]) -> dict:
    """Evaluated test items (ids, in every evaluated language) that also occur, by id or normalized text in any
    language, in the English training rows or the pairs (train split): counted before any training and dropped from
    evaluation (:func:`eval_subset`)."""
    from ..tasks import sib200
    from .leakage import find_leaks

    wanted = set(eval_subset(cfg, drop_leaked=False)["ids"])
    items = {x: [(str(e.index_id), e.text) for e in sib200.load_sib200(x, "test", cfg.data_dir) if e.index_id in wanted]
             for x in langs}  # fmt: skip
    train = sib200.load_sib200(ENGLISH, "train", cfg.data_dir)
    present = set(sib200.available_languages(cfg.data_dir))  # a missing aligned language is refused before runs
    pairs = [e for x in cfg.aligned if x in present for e in sib200.load_sib200(x, "train", cfg.data_dir)]
    sources = {
        "task rows": ([str(e.index_id) for e in train], [e.text for e in train]),
        "alignment pairs": ([str(e.index_id) for e in pairs], [e.text for e in pairs]),
    }
    return find_leaks(items, sources)


def eval_subset(cfg: Sib200Config, drop_leaked: bool = True) -> dict:
    """The evaluated test ids: the whole split, or a seeded sample stratified by topic (the same ids in every
    language), with its label profile; an unrepresentative subset is refused."""
    from ..data.subsets import check_representative, describe_subset, sample_ids
    from ..tasks import sib200

    rows = sib200.load_sib200(ENGLISH, "test", cfg.data_dir)
    labels = {e.index_id: e.category for e in rows}
    ids = sample_ids([e.index_id for e in rows], cfg.test_size, cfg.subset_seed, labels)
    if drop_leaked:
        from ..tasks.sib200 import available_languages

        present = set(available_languages(cfg.data_dir))
        wanted = cfg.languages if cfg.languages not in (None, ("all",)) else (ENGLISH, *cfg.aligned, *DEFAULT_TRANSFER)
        leaked = set(leak_check(cfg, [x for x in dict.fromkeys((ENGLISH, *wanted)) if x in present])["leaked_ids"])
        ids = [i for i in ids if str(i) not in leaked]
    check_representative([labels[i] for i in ids], list(labels.values()), f"SIB-200 test (--test-size {cfg.test_size})")
    method = "stratified by topic" if cfg.test_size and cfg.test_size < len(rows) else "whole split"
    out = describe_subset(ids, len(rows), cfg.subset_seed, method, [labels[i] for i in ids],
                          sib200.load_labels(cfg.data_dir))  # fmt: skip
    if drop_leaked:
        out["leaked_dropped"] = len(leaked)
    return out


def evaluate(model, tokenizer, cfg: Sib200Config, langs: list[str], out_dir: str, provenance: dict,
             ids: list[int] | None = None) -> dict:  # fmt: skip
    """Per language: per-sentence correctness (0/1), accuracy and macro-F1 over ``ids`` (default: the
    :func:`eval_subset` ids)."""
    from ..tasks import sib200

    labels = sib200.load_labels(cfg.data_dir)
    wanted = set(eval_subset(cfg)["ids"] if ids is None else ids)
    out = {}
    for lang in langs:
        examples = [e for e in sib200.load_sib200(lang, "test", cfg.data_dir) if e.index_id in wanted]
        preds = sib200.predict(model, tokenizer, examples, labels, os.path.join(out_dir, f"pred_{lang}.jsonl"),
                               batch_size=cfg.eval_batch_size, provenance=provenance)  # fmt: skip
        gold = [e.category for e in examples]
        scores = sib200.score_sib(gold, preds, labels)
        out[lang] = {"correct": [int(g == p) for g, p in zip(gold, preds)], "accuracy": scores["accuracy"],
                     "macro_f1": scores["macro_f1"]}  # fmt: skip
    return out


def run_experiment(
    cfg: Sib200Config,
    work_dir: str,
    fig_dir: str,
    name: str = "sib200",
    report_only: bool = False,
    reuse: str | None = None,
    overwrite: bool = False,
    allow_mixed_dtypes: bool = False,
) -> dict:
    """Run every (seed, method) not done yet, then write the table, JSON and figure. ``report_only``: run nothing;
    summarise the runs already finished in ``work_dir`` (those not finished are left out and counted per row).
    ``reuse``: an earlier results file of the same settings whose runs count as done (:func:`reuse_results`).
    ``overwrite``: replace results already in ``fig_dir`` (refused otherwise, before anything runs).
    ``allow_mixed_dtypes``: summarise runs of two precisions (refused otherwise: a paired difference across seeds
    would mix precision into the seed spread)."""
    from ..alignment import num_decoder_layers
    from ..models import GEMMA3_MODEL_NAME, load_model, load_model_with_adapters, load_tokenizer, prepared_model_path
    from ..tasks.sib200 import resolve_data_dir
    from ..training.arguments import default_alignment_layer

    cfg.data_dir = resolve_data_dir(cfg.data_dir)
    cfg.model = cfg.model or prepared_model_path(GEMMA3_MODEL_NAME)
    claim_results(fig_dir, name, overwrite)
    plan_record = claim_work_dir(work_dir, asdict(cfg), per_run=("dtype",))
    langs = _languages(cfg)
    targets = [x for x in langs if x != ENGLISH]
    # before any training: the evaluated items, with those that occur in the training data dropped and counted
    subset, leakage = eval_subset(cfg), leak_check(cfg, langs)
    retrieval_items = retrieval_subset(cfg, langs)
    tokenizer = load_tokenizer(cfg.model)
    files = prepare_data(cfg, tokenizer, work_dir)
    t_start = time.time()
    run_dtype = resolve_dtype(cfg.dtype)
    dtype = None if run_dtype == "float32" else run_dtype

    def base_run():
        model = load_model(cfg.model, torch_dtype=dtype)
        n_layers = num_decoder_layers(model)
        layer = cfg.layer if cfg.layer is not None else default_alignment_layer(n_layers)
        if not 1 <= layer <= n_layers:
            raise ValueError(
                f"--alignment-layer {layer}: this model has {n_layers} decoder layers; choose 1..{n_layers}"
            )
        return {
            "n_layers": n_layers,
            "layer": layer,
            "retrieval": retrieval(model, tokenizer, cfg, targets, layer, retrieval_items["ids"]),
        }

    if report_only and not os.path.isfile(os.path.join(work_dir, "base", "result.json")):
        raise FileNotFoundError(f"--report-only: no finished runs in {work_dir} (base/result.json is missing)")
    if reuse:
        found = reuse_results(
            reuse,
            work_dir,
            asdict(cfg),
            lambda r: f"seed{r['seed']}/{r['method']}",
            per_run=("dtype",),
            check=check_run,
        )
        print(f"--reuse-results: {len(found)} finished runs taken from {reuse}", flush=True)
    base = run_once(os.path.join(work_dir, "base"), "base model retrieval", base_run)
    layer = base["layer"]
    runs = []
    for seed in cfg.seeds:
        for method in cfg.methods:
            out_dir = os.path.join(work_dir, f"seed{seed}", method)
            if report_only:
                if os.path.isfile(os.path.join(out_dir, "result.json")):
                    runs.append(read_json(os.path.join(out_dir, "result.json")))
                    check_run(runs[-1], os.path.join(out_dir, "result.json"))
                continue

            def one(method=method, seed=seed, out_dir=out_dir):
                train_seconds, logs = _train_or_reuse(cfg, method, seed, files, os.path.join(out_dir, "train"))
                adapter = os.path.join(out_dir, "train", "adapter_model")
                model = load_model_with_adapters(cfg.model, [adapter], torch_dtype=dtype)
                t1 = time.time()
                result = {"seed": seed, "method": method, "dtype": run_dtype, "train_seconds": train_seconds,
                          "first_logs": logs[:2], "final_logs": logs[-2:]}  # fmt: skip
                if method in TASK_METHODS:
                    from ..models.loading import adapter_fingerprint

                    prov = {"model": cfg.model, "adapter": adapter_fingerprint(adapter), "dtype": run_dtype}
                    result["eval"] = evaluate(model, tokenizer, cfg, langs, out_dir, prov, subset["ids"])
                result["retrieval"] = retrieval(model, tokenizer, cfg, targets, layer, retrieval_items["ids"])
                result["eval_seconds"] = time.time() - t1
                return result

            result = run_once(out_dir, f"seed {seed} {method}", one, check=check_run)
            runs.append(result)
            if "eval" in result:
                accs = " ".join(f"{k}={v['accuracy']:.3f}" for k, v in result["eval"].items())
                print(f"seed {seed} {method}: train {result['train_seconds']:.0f}s acc {accs}", flush=True)
    from .plan import check_one_dtype

    check_one_dtype(runs, allow_mixed=allow_mixed_dtypes)
    summary = summarize(runs, base, cfg, langs)
    summary["wall_clock_seconds_this_invocation"] = time.time() - t_start
    result = {"config": asdict(cfg), "plan": plan_record, "timeline": timeline(plan_record, runs),
              "layer": layer, "languages": langs, "base": base, "summary": summary,
              "subset": subset, "leakage": leakage, "retrieval_subset": retrieval_items,
              "complete": len(runs) == len(cfg.seeds) * len(cfg.methods),
              "runs": runs}  # fmt: skip
    publish(fig_dir, name, result, table=markdown_table(summary, cfg, langs, subset, leakage, retrieval_items),
            plot=lambda path: _plot(summary, cfg, langs, path))  # fmt: skip
    return result


def script_of(lang: str) -> str:
    return lang.split("_", 1)[1] if "_" in lang else lang


def groups_of(cfg: Sib200Config, langs: list[str]) -> dict[str, list[str]]:
    aligned_scripts = {script_of(x) for x in cfg.aligned}
    transfer = [x for x in langs if x != ENGLISH and x not in cfg.aligned]
    return {
        "english": [ENGLISH],
        "aligned": [x for x in langs if x in cfg.aligned],
        "transfer": transfer,
        "transfer, aligned script": [x for x in transfer if script_of(x) in aligned_scripts],
        "transfer, other script": [x for x in transfer if script_of(x) not in aligned_scripts],
    }


def _items(run: dict, members: list[str]) -> dict[str, dict[int, float]]:
    """``{lang: {item position: correct}}``: positions index the same sentence ids in every language."""
    return {lang: dict(enumerate(run["eval"][lang]["correct"])) for lang in members}


def _cluster_ci(a: dict[int, dict], b: dict[int, dict] | None = None) -> list[float]:
    """``[mean, low, high]`` of the per-seed mean over languages (of ``a - b`` when ``b`` is given) by the clustered
    bootstrap: a drawn sentence counts in every language at once (:func:`~.stats.cluster_bootstrap`)."""
    from .stats import cluster_bootstrap

    if b is not None:
        a = {s: {x: {i: v - b[s][x][i] for i, v in a[s][x].items()} for x in a[s]} for s in a}
    r = cluster_bootstrap(a, resamples=1000)
    return [r["mean"], r["low"], r["high"]]


def summarize(runs: list[dict], base: dict, cfg: Sib200Config, langs: list[str]) -> dict:
    groups = {g: m for g, m in groups_of(cfg, langs).items() if m}
    out: dict = {"groups": groups, "methods": {}, "paired": {}, "control": {}}
    out["dtype_by_seed"] = {
        str(s): "/".join(sorted({r.get("dtype", cfg.dtype) for r in runs if r["seed"] == s}))
        for s in sorted({r["seed"] for r in runs})
    }
    by = {(r["method"], r["seed"]): r for r in runs}
    targets = [x for x in langs if x != ENGLISH]
    for method in cfg.methods:
        seeds = sorted(s for (m, s) in by if m == method)
        if not seeds:
            continue
        sub = [by[(method, s)] for s in seeds]
        entry: dict = {"n_seeds": len(seeds), "retrieval": {}}
        for kind in ("raw", "centered"):
            entry["retrieval"][kind] = {x: mean_sd([r["retrieval"][x][kind] for r in sub]) for x in targets}
            for g in ("aligned", "transfer"):
                if g in groups:
                    entry["retrieval"][kind][g] = mean_sd(
                        [statistics.mean(r["retrieval"][x][kind] for x in groups[g]) for r in sub]
                    )
        if method in TASK_METHODS:
            entry["accuracy"] = {x: _cluster_ci({r["seed"]: _items(r, [x]) for r in sub}) for x in langs}
            entry["macro_f1"] = {x: mean_sd([r["eval"][x]["macro_f1"] for r in sub]) for x in langs}
            entry["groups"] = {g: _cluster_ci({r["seed"]: _items(r, m) for r in sub}) for g, m in groups.items()}
            entry["train_seconds"] = statistics.mean(r["train_seconds"] for r in sub)
            entry["eval_seconds"] = statistics.mean(r["eval_seconds"] for r in sub)
        else:
            entry["train_seconds"] = statistics.mean(r["train_seconds"] for r in sub)
        out["methods"][method] = entry
    for ref in ("baseline", "baseline_2x"):
        for method in ("alignment", "alignment_center", "baseline_2x"):
            if method == ref:
                continue
            seeds = sorted(s for (m, s) in by if m == method and (ref, s) in by)
            if not seeds:
                continue
            a = {s: by[(method, s)] for s in seeds}
            b = {s: by[(ref, s)] for s in seeds}
            out["paired"][f"{method} - {ref}"] = {
                # the sensitivity check: a bootstrap over seeds and sentence clusters (one drawn sentence id counts in
                # every language of the group)
                "groups": {
                    g: _cluster_ci({s: _items(a[s], m) for s in seeds}, {s: _items(b[s], m) for s in seeds})
                    for g, m in groups.items()
                },  # fmt: skip
                "languages": {
                    x: _cluster_ci({s: _items(a[s], [x]) for s in seeds}, {s: _items(b[s], [x]) for s in seeds})
                    for x in langs
                },  # fmt: skip
                "seeds": seeds,
                # the primary interval: a seed-level t over the per-seed paired group means (seeds were randomized)
                "t": {
                    g: paired_seed_interval(
                        {s: seed_accuracy(a[s], m) for s in seeds}, {s: seed_accuracy(b[s], m) for s in seeds}
                    )
                    for g, m in groups.items()
                },  # fmt: skip
            }
    base_raw = {x: base["retrieval"][x]["raw"] for x in targets}
    base_cen = {x: base["retrieval"][x]["centered"] for x in targets}
    out["base_retrieval"] = {"raw": base_raw, "centered": base_cen}
    for g in ("aligned", "transfer"):
        if g in groups:
            out["base_retrieval"][f"raw {g}"] = statistics.mean(base_raw[x] for x in groups[g])
            out["base_retrieval"][f"centered {g}"] = statistics.mean(base_cen[x] for x in groups[g])
    if "baseline" in out["methods"] and len(targets) >= 3:
        from .stats import correlation_summary

        acc = [out["methods"]["baseline"]["accuracy"][x][0] for x in targets]
        # languages are fixed effects: r over this handful carries its Fisher interval, Spearman's rho and the
        # leave-one-language-out range
        out["correlation_base_retrieval_vs_baseline_accuracy"] = {
            "raw": correlation_summary([base_raw[x] for x in targets], acc, targets),
            "centered": correlation_summary([base_cen[x] for x in targets], acc, targets),
        }
    return out


def _ci(v) -> str:
    return f"{100 * v[0]:.1f} [{100 * v[1]:.1f}, {100 * v[2]:.1f}]"


def _subset_lines(subset: dict | None, leakage: dict | None, retrieval_items: dict | None) -> list[str]:
    """What was evaluated, beside every accuracy: the subset, its label profile, majority class and chance, and the
    leakage counts."""
    if not subset:
        return []
    p = subset["labels"]
    counts = ", ".join(f"{k} {v}" for k, v in p["counts"].items())
    lines = [f"Evaluated: {subset['size']} of {subset['of']} test sentences ({subset['method']}, seed "
             f"{subset['seed']}; the same ids in every language): {counts}. Majority-class accuracy "
             f"{100 * p['majority_accuracy']:.1f}%, chance {100 * p['chance']:.1f}%."]  # fmt: skip
    if leakage:
        by = "; ".join(f"{k}: {len(v['ids'])}" for k, v in leakage["by_source"].items())
        lines.append(f"Leak check before training (id, normalized or near-duplicate text, any language): {by}; "
                     f"{subset.get('leaked_dropped', 0)} dropped.")  # fmt: skip
    if retrieval_items:
        lines.append(f"Retrieval sentences: {len(retrieval_items['ids'])}, {retrieval_items['leaked_dropped']} dropped "
                     "as found in the pairs.")  # fmt: skip
    return [" ".join(lines), ""]


def _t_cell(t: dict) -> str:
    if t.get("low") is None:
        return f"{100 * t['mean']:+.1f} (one seed: no interval)"
    return f"{100 * t['mean']:+.1f} [{100 * t['low']:+.1f}, {100 * t['high']:+.1f}]"


def markdown_table(summary: dict, cfg: Sib200Config, langs: list[str], subset: dict | None = None,
                   leakage: dict | None = None, retrieval_items: dict | None = None) -> str:  # fmt: skip
    from .stats import seed_caveat

    groups = list(summary["groups"])
    task = [m for m in summary["methods"] if "groups" in summary["methods"][m]]
    dtypes = ", ".join(f"seed {k} {v}" for k, v in summary.get("dtype_by_seed", {}).items())
    lines = [f"Compute dtype: {dtypes}.", "", *_subset_lines(subset, leakage, retrieval_items),
             "Accuracy (%), mean over seeds, with a 95% bootstrap interval over seeds and sentence clusters:", "",
             "| method | seeds | " + " | ".join(groups) + " |", "|---|---|" + "---|" * len(groups)]  # fmt: skip
    for m in task:
        e = summary["methods"][m]
        lines.append(f"| {m} | {e['n_seeds']} | " + " | ".join(_ci(e["groups"][g]) for g in groups) + " |")
    if summary["paired"]:
        n = min(len(d["seeds"]) for d in summary["paired"].values())
        caveat = seed_caveat(n)
        lines += ["", "Paired differences (accuracy points; same seeds and sentences). Primary: the 95% seed-level "
                  "t-interval of the per-seed paired means; sensitivity: the bootstrap over seeds and sentence "
                  "clusters. Languages are fixed effects." + (f" {caveat.rstrip('.')}." if caveat else ""), "",
                  "| difference | " + " | ".join(f"{g}: t | {g}: bootstrap" for g in groups) + " |",
                  "|---|" + "---|---|" * len(groups)]  # fmt: skip
        for name, d in summary["paired"].items():
            cells = [f"{_t_cell(d['t'][g])} | {_ci(d['groups'][g])}" for g in groups]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Accuracy per language (%, mean over seeds):", "", "| method | " + " | ".join(langs) + " |",
              "|---|" + "---|" * len(langs)]  # fmt: skip
    for m in task:
        acc = summary["methods"][m]["accuracy"]
        lines.append(f"| {m} | " + " | ".join(f"{100 * acc[x][0]:.1f}" for x in langs) + " |")
    targets = [x for x in langs if x != ENGLISH]
    br = summary["base_retrieval"]
    lines += ["", "Retrieval acc@1 x -> English among the test sentences at the aligned layer (%, raw / centered):",
              "", "| model | aligned | transfer | " + " | ".join(targets) + " |",
              "|---|---|---|" + "---|" * len(targets)]  # fmt: skip

    def pair(raw, cen):
        return f"{100 * raw:.0f} / {100 * cen:.0f}"

    lines.append("| base | " + pair(br.get("raw aligned", 0), br.get("centered aligned", 0)) + " | "
                 + pair(br.get("raw transfer", 0), br.get("centered transfer", 0)) + " | "
                 + " | ".join(pair(br["raw"][x], br["centered"][x]) for x in targets) + " |")  # fmt: skip
    for m, e in summary["methods"].items():
        r = e["retrieval"]
        grp = [pair(r["raw"][g][0], r["centered"][g][0]) if g in r["raw"] else "-" for g in ("aligned", "transfer")]
        lines.append(f"| {m} | " + " | ".join(grp) + " | "
                     + " | ".join(pair(r["raw"][x][0], r["centered"][x][0]) for x in targets) + " |")  # fmt: skip
    p = summary.get("correlation_base_retrieval_vs_baseline_accuracy")
    if p:
        lines += ["", "Base retrieval vs baseline accuracy over the transfer languages (fixed effects):", ""]
        lines += [f"- {kind}: {correlation_line(c)}" for kind, c in p.items()]
    return "\n".join(lines) + "\n"


def _plot(summary: dict, cfg: Sib200Config, langs: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = [m for m in summary["methods"] if "groups" in summary["methods"][m]]
    groups = list(summary["groups"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / max(len(task), 1)
    for j, m in enumerate(task):
        g = summary["methods"][m]["groups"]
        ys = [100 * g[x][0] for x in groups]
        err = [[100 * (g[x][0] - g[x][1]) for x in groups], [100 * (g[x][2] - g[x][0]) for x in groups]]
        ax.bar([i + width * j for i in range(len(groups))], ys, width, yerr=err, capsize=2, label=m)
    ax.set_xticks([i + width * (len(task) - 1) / 2 for i in range(len(groups))])
    ax.set_xticklabels(groups, rotation=15)
    ax.set_ylabel("accuracy % (95% bootstrap CI)")
    ax.set_title("SIB-200 test, zero-shot from English")
    ax.axhline(100 / 7, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=8)
    targets = [x for x in langs if x != ENGLISH]
    if "baseline" in summary["methods"]:
        xs = [100 * summary["base_retrieval"]["centered"][x] for x in targets]
        ys = [100 * summary["methods"]["baseline"]["accuracy"][x][0] for x in targets]
        ax2.scatter(xs, ys)
        for x, y, lang in zip(xs, ys, targets):
            ax2.annotate(lang, (x, y), fontsize=7)
        ax2.set_xlabel("base retrieval acc@1, centered (%)")
        ax2.set_ylabel("baseline accuracy (%)")
        ax2.set_title("base retrieval vs transfer")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    from ..alignment import CENTERING

    cfg, args = experiment_cli(
        argv,
        prog="midalign experiment sib200",
        description=__doc__.split("\n\n")[0],
        cfg_cls=Sib200Config,
        methods=METHODS,
        languages_help="comma-separated FLORES codes evaluated (default: English, the aligned and 8 transfer "
        "languages); 'all' = every language folder in --data-dir",
        quick_help="a minutes-long smoke run (1 seed, 3 languages, 2 steps)",
        work_dir="outputs/experiment_sib200",
        data_help="the SIB-200 data/annotated folder (default $MIDALIGN_SIB200_DIR)",
        aligned_help="comma-separated aligned languages (default " + ",".join(DEFAULT_ALIGNED) + ")",
        choices={"remedy": [c for c in CENTERING if c != "none"], "dtype": ["auto", "float32", "bfloat16"]},
        switches={
            "report-only": "run nothing: write the table, JSON and figure from the runs finished in --output-dir",
            "allow-mixed-dtypes": "summarise runs of two precisions (every table then says so)",
        },
        options={
            "reuse-results": "an earlier results file (e.g. fig/sib200.json) of the same settings: its runs "
            "count as done and only the missing (seed, method) runs are run"
        },
    )
    name = args.name or ("sib200_quick" if args.quick else "sib200")
    return run_experiment(
        cfg,
        args.work_dir,
        args.fig_dir,
        name,
        report_only=args.report_only,
        reuse=args.reuse_results,
        overwrite=args.overwrite,
        allow_mixed_dtypes=args.allow_mixed_dtypes,
    )


if __name__ == "__main__":
    main()
