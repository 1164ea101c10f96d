"""``midalign experiment transfer``: does middle-layer alignment make a task learned in one language work in others?

Protocol, per seed: (a) pretrain a tiny Llama from scratch on monolingual text of every synthetic language (no
parallel data); (b) fine-tune it on slot filling in the source language only: with the task loss alone (baseline),
with the task loss alone for twice the optimizer steps (baseline_2x: the alignment run's step count and learning-rate
schedule), and with the paper's alternate schedule (alignment on source–target pairs at a middle layer, twice the
steps so the task gets the same number of micro-batches as the baseline); (c) score slot F1 zero-shot in every
language and the cross-lingual retrieval accuracy of held-out pairs at every layer.

Answers: by default (``answer="source"``) slot values are written in the source language whatever the input
language (a shared output vocabulary, as for English-labelled outputs or translation into English), scored with F1
over (label, value) pairs; ``answer="input"`` copies the values from the input sentence as MASSIVE does, scored
with span slot F1 — the target languages' values are then words the fine-tuned model never produced.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass

import torch

from ..data.jsonl import write_jsonl
from ..training.arguments import default_alignment_layer
from ..vocabulary import flag
from .harness import FIG_DIR, claim_results, claim_work_dir, publish, run_once, validate_run
from .plan import timeline
from .world import World, make_world

__all__ = ["TransferConfig", "build_tokenizer", "pair_f1", "pretraining_rows", "run_seed", "run_benchmark", "main"]


@dataclass
class TransferConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    source: str = "src"
    targets: tuple[str, ...] = ("sov", "cyr")
    layers: int = 4
    hidden: int = 128
    align_layer: int | None = None  # default: the library's default_alignment_layer (L // 2)
    temperature: float = 0.1
    pooling: str = "mean"
    schedule: str = "alternate"
    long_baseline: bool = True  # also a task-only run with the alignment run's optimizer steps
    answer: str = "source"  # slot values written in the source language, or copied from the input ("input", as MASSIVE)
    pretrain_sentences: int = 6000  # per language
    pretrain_steps: int = 1500
    task_examples: int = 1500
    pairs: int = 1500  # per target language
    finetune_steps: int = 600  # baseline; the alternate schedule gets twice as many
    eval_examples: int = 200
    heldout_pairs: int = 100
    batch_size: int = 32
    lr_pretrain: float = 3e-3
    lr_finetune: float = 1e-3

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Every setting checked before any run (also after flags set fields): a recorded setting is the one used."""
        for name in ("layers", "hidden", "pretrain_sentences", "pretrain_steps", "task_examples", "pairs",
                     "finetune_steps", "eval_examples", "heldout_pairs", "batch_size"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{flag(name)} must be an integer >= 1, got {value!r}")
        if self.align_layer is not None and not 1 <= self.align_layer <= self.layers:
            raise ValueError(f"--alignment-layer {self.align_layer}: the model has {self.layers} decoder layers; "
                             f"choose 1..{self.layers}")  # fmt: skip

    @property
    def layer(self) -> int:
        """The alignment layer used (``align_layer``, default the library's)."""
        return self.align_layer if self.align_layer is not None else default_alignment_layer(self.layers)

    @classmethod
    def quick(cls) -> TransferConfig:
        return cls(
            seeds=(0,),
            pretrain_sentences=2000,
            pretrain_steps=400,
            task_examples=600,
            pairs=600,
            finetune_steps=60,
            eval_examples=60,
            heldout_pairs=50,
        )


def build_tokenizer(world: World):
    """A word-level tokenizer over the world's vocabulary (whitespace-separated words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(specials + world.vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    return fast


def _answer_language(cfg: TransferConfig) -> str | None:
    if cfg.answer not in ("input", "source"):
        raise ValueError(f"--answer {cfg.answer!r}: choose input or source")
    return cfg.source if cfg.answer == "source" else None


def _rows_task(world: World, lang: str, insts, values: str | None = None) -> list[dict]:
    return [
        {
            "prefix": world.languages[lang].render(i)[0] + " =>",
            "text": " " + world.target(i, lang, values) + " </s>",
        }
        for i in insts
    ]


def pair_f1(golds: list[str], predictions: list[str]) -> float:
    """Micro F1 over ``(label, value)`` pairs (multisets per example) — for answers whose values are not words of
    the input, which the span-based slot F1 cannot place."""
    from collections import Counter

    from ..tasks.massive import parse_prediction

    tp = n_pred = n_gold = 0
    for gold, pred in zip(golds, predictions, strict=True):
        g, p = Counter(parse_prediction(gold)[0]), Counter(parse_prediction(pred)[0])
        tp += sum((g & p).values())
        n_pred += sum(p.values())
        n_gold += sum(g.values())
    if n_pred == n_gold == 0:
        return 1.0  # every answer "None", rightly
    if tp == 0:
        return 0.0
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def _model(cfg: TransferConfig, tokenizer, seed: int):
    from ..models import tiny_model

    return tiny_model(
        "llama",
        vocab_size=len(tokenizer),
        num_layers=cfg.layers,
        seed=seed,
        hidden_size=cfg.hidden,
        intermediate_size=cfg.hidden * 2,
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=cfg.hidden // 4,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )


def _train(model, tokenizer, rows, out_dir, *, schedule, steps, lr, cfg, seed, pairs_file=None):
    from ..training import AlignmentTrainingArguments, DataArguments
    from ..training.run import build_trainer

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "train.json")
    with open(path, "w") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    args = AlignmentTrainingArguments(
        output_dir=out_dir,
        per_device_train_batch_size=cfg.batch_size,
        max_steps=steps,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.0,
        logging_steps=max(steps // 5, 1),
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        alignment_schedule=schedule,
        alignment_layer=cfg.layer,
        alignment_temperature=cfg.temperature,
        alignment_pooling=cfg.pooling,
        dataloader_num_workers=0,
    )
    data = DataArguments(train_file=path, alignment_file=pairs_file, block_size=64, contrastive_data_mode=0)
    trainer = build_trainer(model, tokenizer, data, args)
    trainer.train()
    return trainer


def _slot_f1(model, tokenizer, world: World, lang: str, insts, values: str | None = None) -> float:
    from ..inference import generate_batch
    from ..tasks.massive import score_slots

    model.eval()
    prompts = [world.languages[lang].render(i)[0] + " =>" for i in insts]
    preds = []
    for k in range(0, len(prompts), 64):
        texts, _ = generate_batch(
            model, tokenizer, prompts[k : k + 64], max_new_tokens=16, add_special_tokens=False, eos_token_id=3
        )
        preds += texts
    if values is not None:
        return pair_f1([world.target(i, lang, values) for i in insts], preds)
    golds = [{"annot_utt": world.annotated(i, lang), "locale": "synthetic"} for i in insts]
    return score_slots(golds, preds).slot_f1


def _retrieval(model, tokenizer, world: World, cfg: TransferConfig, insts) -> dict[str, list[float]]:
    from ..analysis import retrieval_accuracy_at_1, sentence_embeddings

    model.eval()
    emb = {
        lang: sentence_embeddings(
            model, tokenizer, [world.languages[lang].render(i)[0] for i in insts], None, pooling=cfg.pooling
        )
        for lang in (cfg.source, *cfg.targets)
    }
    out = {}
    for t in cfg.targets:
        out[t] = [
            (
                retrieval_accuracy_at_1(emb[cfg.source][k], emb[t][k])
                + retrieval_accuracy_at_1(emb[t][k], emb[cfg.source][k])
            )
            / 2
            for k in sorted(emb[t])
        ]
    return out


def pretraining_rows(world: World, cfg: TransferConfig, seed: int) -> list[dict]:
    """Monolingual text of every language, same for a seed in every process (seeded by the language's position:
    str hash() is salted per process)."""
    langs = (cfg.source, *cfg.targets)
    return [
        {"prefix": "", "text": world.languages[lang].render(i)[0] + " </s>"}
        for k, lang in enumerate(langs)
        for i in world.instances(cfg.pretrain_sentences, seed * 1000 + 100 + k)
    ]


def run_seed(cfg: TransferConfig, seed: int, work_dir: str) -> list[dict]:
    """Every method of one seed, each a resumable run (``<work_dir>/seed<seed>/<method>/result.json``): the
    pretraining of step (a) happens only when some method of the seed is not done yet."""
    import copy

    langs = (cfg.source, *cfg.targets)
    seed_dir = os.path.join(work_dir, f"seed{seed}")
    shared: dict = {}

    def setup() -> dict:
        if shared:
            return shared
        world = make_world(seed, langs)
        tok = build_tokenizer(world)
        # (a) pretraining on monolingual text only
        mono = pretraining_rows(world, cfg, seed)
        base = _model(cfg, tok, seed)
        _train(base, tok, mono, os.path.join(seed_dir, "pretrain"),
               schedule="task_only", steps=cfg.pretrain_steps, lr=cfg.lr_pretrain, cfg=cfg, seed=seed)  # fmt: skip
        pair_insts = world.instances(cfg.pairs, seed * 1000 + 4)
        pairs_path = os.path.join(seed_dir, "pairs.json")
        rows = [{"text_parallel_0": world.languages[cfg.source].render(i)[0],
                 "text_parallel_1": world.languages[t].render(i)[0], "lang": t}
                for t in cfg.targets for i in pair_insts]  # fmt: skip
        write_jsonl(pairs_path, rows)
        shared.update(world=world, tok=tok, base=base, pairs=pairs_path,
                      task=world.instances(cfg.task_examples, seed * 1000 + 1),
                      eval=world.instances(cfg.eval_examples, seed * 1000 + 2),
                      held=world.instances(cfg.heldout_pairs, seed * 1000 + 3))  # fmt: skip
        return shared

    def one(method: str, schedule: str, steps: int) -> dict:
        ctx = setup()
        world, tok = ctx["world"], ctx["tok"]
        model = copy.deepcopy(ctx["base"])
        t0 = time.time()
        trainer = _train(model, tok, _rows_task(world, cfg.source, ctx["task"], _answer_language(cfg)),
                         os.path.join(seed_dir, method), schedule=schedule, steps=steps, lr=cfg.lr_finetune, cfg=cfg,
                         seed=seed, pairs_file=ctx["pairs"] if schedule != "task_only" else None)  # fmt: skip
        f1 = {lang: _slot_f1(model, tok, world, lang, ctx["eval"], _answer_language(cfg)) for lang in langs}
        align_logs = [h["loss/align"] for h in trainer.state.log_history if "loss/align" in h]
        print(f"seed {seed} {method:<9} F1 " + " ".join(f"{k}={v:.3f}" for k, v in f1.items()), flush=True)
        return {"seed": seed, "method": method, "f1": f1,
                "retrieval_by_layer": _retrieval(model, tok, world, cfg, ctx["held"]),
                "final_align_loss": align_logs[-1] if align_logs else None, "seconds": time.time() - t0}  # fmt: skip

    known = [m for m, _, _ in _methods(cfg)]

    def check(run, where):
        validate_run(run, where, known, lambda m: ("f1", "retrieval_by_layer", "seconds"))

    return [
        run_once(
            os.path.join(seed_dir, method),
            f"seed {seed} {method}",
            lambda m=method, s=sch, n=n: one(m, s, n),
            check=check,
        )  # fmt: skip
        for method, sch, n in _methods(cfg)
    ]


def _methods(cfg: TransferConfig) -> list[tuple[str, str, int]]:
    """(name, schedule, optimizer steps). The alternate schedule spends every other micro-batch on alignment, so it
    gets twice the steps for the same task micro-batches (as the paper's 10 vs 5 epochs); ``baseline_2x`` has the
    alignment run's optimizer steps (and learning-rate schedule) with task micro-batches only."""
    methods = [("baseline", "task_only", cfg.finetune_steps)]
    if cfg.long_baseline:
        methods.append(("baseline_2x", "task_only", 2 * cfg.finetune_steps))
    return methods + [("alignment", cfg.schedule, 2 * cfg.finetune_steps)]


def _summary(rows: list[dict], cfg: TransferConfig) -> list[dict]:
    out = []
    for method, _, _ in _methods(cfg):
        sub = [r for r in rows if r["method"] == method]
        for lang in (cfg.source, *cfg.targets):
            vals = [r["f1"][lang] for r in sub]
            out.append(
                {
                    "method": method,
                    "language": lang,
                    "f1_mean": statistics.mean(vals),
                    "f1_std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                    "n_seeds": len(vals),
                }
            )
    return out


def paired(rows: list[dict], targets: list[str], arm: str = "alignment", ref: str | None = None) -> dict:
    """``arm - ref`` in zero-shot F1 per target language and averaged over the targets: the seed-level t-interval of
    the per-seed paired differences (seeds are what was randomized; the targets are fixed effects). ``ref`` defaults
    to ``baseline_2x`` where it ran (the same optimizer steps), else ``baseline``."""
    from .stats import paired_seed_interval, seed_caveat, verdict

    methods = {r["method"] for r in rows}
    ref = ref or ("baseline_2x" if "baseline_2x" in methods else "baseline")
    by = {(r["method"], r["seed"]): r for r in rows}
    seeds = sorted(s for (m, s) in by if m == arm and (ref, s) in by)
    if not seeds:
        return {"arm": arm, "ref": ref, "seeds": []}

    def side(method, langs):
        return {s: statistics.fmean(by[(method, s)]["f1"][x] for x in langs) for s in seeds}

    out = {"arm": arm, "ref": ref, "seeds": seeds, "caveat": seed_caveat(len(seeds)), "targets": {}}
    for x in targets:
        out["targets"][x] = paired_seed_interval(side(arm, [x]), side(ref, [x]))
    out["mean_over_targets"] = paired_seed_interval(side(arm, targets), side(ref, targets))
    out["verdict"] = verdict(out["mean_over_targets"], what=f"{arm} - {ref}, mean over targets")
    return out


def _plot(rows, summary, cfg: TransferConfig, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    langs = [cfg.source, *cfg.targets]
    names = [m for m, _, _ in _methods(cfg)]
    width = 0.8 / len(names)
    for j, method in enumerate(names):
        s = {r["language"]: r for r in summary if r["method"] == method}
        ax.bar(
            [i + width * j for i in range(len(langs))],
            [s[lang]["f1_mean"] for lang in langs],
            width,
            yerr=[s[lang]["f1_std"] for lang in langs],
            label=method,
            capsize=3,
        )
    ax.set_xticks([i + width * (len(names) - 1) / 2 for i in range(len(langs))])
    ax.set_xticklabels([f"{lang}{' (source)' if lang == cfg.source else ''}" for lang in langs])
    metric = "F1 over label-value pairs" if cfg.answer == "source" else "slot F1"
    ax.set_ylabel(f"zero-shot {metric} (mean ± sd over seeds)")
    ax.set_ylim(0, 1)
    ax.legend()
    for method, style in zip(names, ("--", ":", "-") if len(names) == 3 else ("--", "-")):
        sub = [r for r in rows if r["method"] == method]
        for t in cfg.targets:
            curves = [r["retrieval_by_layer"][t] for r in sub]
            mean = [sum(c[k] for c in curves) / len(curves) for k in range(len(curves[0]))]
            ax2.plot(range(len(mean)), mean, style, marker="o", label=f"{method} {cfg.source}<->{t}")
    ax2.axvline(cfg.layer, color="gray", lw=0.8)
    ax2.set_xlabel("layer (gray: aligned layer)")
    ax2.set_ylabel("held-out retrieval accuracy@1")
    ax2.set_ylim(0, 1)
    ax2.legend(fontsize=8)
    fig.suptitle("Synthetic transfer benchmark")
    fig.tight_layout()
    fig.savefig(path, dpi=140)
    plt.close(fig)


def run_benchmark(
    cfg: TransferConfig, work_dir: str, fig_dir: str, name: str = "transfer", overwrite: bool = False
) -> dict:
    """Every (seed, method) not done yet in ``work_dir`` (resumable), then the JSON, table and figure in
    ``fig_dir`` (results already there are refused before anything runs, unless ``overwrite``)."""
    cfg.validate()
    claim_results(fig_dir, name, overwrite)
    plan_record = claim_work_dir(work_dir, asdict(cfg), free=("seeds",))
    # Tiny matrices: one thread is as fast as two, and never oversubscribes the cores when other jobs run.
    torch.set_num_threads(1)
    rows = []
    for seed in cfg.seeds:
        rows += run_seed(cfg, seed, work_dir)
    summary = _summary(rows, cfg)
    result = {
        "config": asdict(cfg),
        "plan": plan_record,
        "timeline": timeline(plan_record, rows),
        "runs": rows,
        "summary": summary,
        "paired": paired(rows, list(cfg.targets)),
    }
    table = ["| method | " + " | ".join(r["language"] for r in summary if r["method"] == "baseline") + " |",
             "|---|" + "---|" * len(cfg.targets + (cfg.source,))]  # fmt: skip
    for method, _, _ in _methods(cfg):
        cells = [f"{r['f1_mean']:.3f} ± {r['f1_std']:.3f}" for r in summary if r["method"] == method]
        table.append(f"| {method} | " + " | ".join(cells) + " |")
    publish(fig_dir, name, result, table="\n".join(table) + "\n", plot=lambda path: _plot(rows, summary, cfg, path))
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="midalign experiment transfer", description=__doc__, allow_abbrev=False)
    p.add_argument("--quick", action="store_true", help="~1 minute: one seed, small data and step budgets")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; quick: 0)")
    p.add_argument("--alignment-layer", dest="align_layer", type=int, default=None,
                   help="alignment layer (default: the library's, L // 2)")  # fmt: skip
    p.add_argument("--num-layers", dest="layers", type=int, default=None,
                   help="decoder layers of the tiny model (default: 4)")  # fmt: skip
    p.add_argument("--alignment-temperature", dest="temperature", type=float, default=None)
    p.add_argument("--schedule", default=None, choices=["alternate", "alternate_steps", "joint"])
    p.add_argument("--pretrain-steps", type=int, default=None)
    p.add_argument("--finetune-steps", type=int, default=None)
    p.add_argument("--pairs", type=int, default=None, help="alignment pairs per target language")
    p.add_argument("--task-examples", type=int, default=None)
    p.add_argument("--alignment-pooling", dest="pooling", default=None, choices=["mean", "mean_skip_first", "bos"])
    p.add_argument(
        "--no-long-baseline",
        action="store_true",
        help="skip the task-only run with the alignment run's optimizer steps (baseline_2x)",
    )
    p.add_argument(
        "--answer",
        default=None,
        choices=["input", "source"],
        help="slot values written in the source language (default: a shared output vocabulary; scored with F1 over "
        "label-value pairs) or copied from the input sentence (as in MASSIVE; scored with span slot F1)",
    )
    p.add_argument("--output-dir", dest="work_dir", default=None,
                   help="the runs (default: outputs/bench_transfer, ..._quick with --quick)")  # fmt: skip
    p.add_argument("--fig-dir", default=FIG_DIR, help="results JSON, table and figure (default: %(default)s)")
    p.add_argument("--name", default=None)
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --fig-dir")
    if any(a == "--layers" or a.startswith("--layers=") for a in argv or ()):  # a list of layers everywhere else
        raise ValueError("--layers is now spelled --num-layers here (the model's depth; --layers is a list of layers "
                         "in every other command)")  # fmt: skip
    args = p.parse_args(argv)
    cfg = TransferConfig.quick() if args.quick else TransferConfig()
    overrides = {
        "align_layer": args.align_layer,
        "layers": args.layers,
        "temperature": args.temperature,
        "schedule": args.schedule,
        "pretrain_steps": args.pretrain_steps,
        "finetune_steps": args.finetune_steps,
        "pairs": args.pairs,
        "task_examples": args.task_examples,
        "pooling": args.pooling,
        "answer": args.answer,
    }
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    if args.no_long_baseline:
        cfg.long_baseline = False
    if args.seeds:
        cfg.seeds = tuple(int(s) for s in args.seeds.split(","))
    name = args.name or ("transfer_quick" if args.quick else "transfer")
    # a smoke run never shares the full run's work dir (its finished runs would block or pollute the real one)
    work_dir = args.work_dir or ("outputs/bench_transfer_quick" if args.quick else "outputs/bench_transfer")
    return run_benchmark(cfg, work_dir, args.fig_dir, name, overwrite=args.overwrite)
