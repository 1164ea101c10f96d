"""Render the docs pages whose numbers come from results files the commands wrote (never typed by hand).

    python docs/render.py          # rewrite the rendered pages and every page's rendered blocks from fig/*.json
    python docs/render.py --check  # exit 1 if a committed page differs from what the results files give

Sources, all under ``fig/``: the experiments' files (``midalign experiment {xsid,methods,sib200,transfer}``), the
benchmarks' (``python benchmarks/<name>.py --json fig/<name>.json``), ``anisotropy_*.json`` (``midalign analyze
anisotropy``), the Evaluation / Composition / Analysis measurements (``docs/results.sh``) and ``demo.json`` (``make
demo-results``). Each block names its file; a missing file renders as "Not run/measured yet" with its command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import fmean

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT / "fig"
DOCS = ROOT / "docs"


def _load(name: str):
    path = FIG / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _ci(v) -> str:
    return f"{100 * v[0]:.1f} [{100 * v[1]:.1f}, {100 * v[2]:.1f}]"


def _diag_table(rows: list[dict], layers: list[int]) -> list[str]:
    out = ["| layer | pair cos | unrelated cos | centered pair / unrelated | top-1 dim share | InfoNCE at init "
           "(paper / batch-centered / standardized; ln B) | retrieval raw / centered |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["layer"] not in layers:
            continue
        out.append(
            f"| {r['layer']} | {r['pair_cos']:.3f} | {r['unrelated_cos']:.3f} | {r['centered_pair_cos']:.2f} / "
            f"{r['centered_unrelated_cos']:.2f} | {r['top1_share']:.2f} | {r['infonce_init']:.3f} / "
            f"{r['infonce_init_centered']:.3f} / {r.get('infonce_init_standardized', float('nan')):.3f}; "
            f"{r['chance']:.3f} | {r['retrieval_raw']:.2f} / {r['retrieval_centered']:.2f} |"
        )
    return out


REMEDIES_TEXT = """# Alignment that aligns: diagnosis and remedies

## The problem

The paper's loss compares pooled layer-k outputs by cosine. On the models we can run here, the pooled outputs of
*any* two sentences are nearly parallel at the middle layers (one dimension carries almost all of the norm), so
`cos(pair) ≈ cos(unrelated) ≈ 1`, the InfoNCE starts at chance (`ln B`) and its gradient mostly learns to remove the
shared direction. `midalign analyze anisotropy` measures this per layer before any training, and the training log
says it at the first alignment batch ("the loss starts at chance: at initialization the objective cannot tell the
pairs apart"). That is a statement about the start: trained on, the paper's loss does move the representations (on
SIB-200 it raises raw retrieval while leaving centered retrieval flat or lower; see the positive control below).

```bash
midalign analyze anisotropy --model <model> --input data_example/parallel.jsonl --lang en,de,ru,zh \\
    --alignment-pooling mean_skip_first --loss-batch-size 16 --output-dir fig --name anisotropy_<model>_mean_skip_first \\
    --overwrite   # replaces the committed results
```

## Remedies (`--alignment_center`)

With `p` the pooled [B, H] batch of one side (`text_parallel_0` or `text_parallel_1`), the loss is computed on:

| option | formula | statistics |
|---|---|---|
| `none` (default, the paper) | `p` | — |
| `batch` | `p - mean_b p[b]` | each side's own micro-batch mean; per micro-batch under gradient accumulation, per rank under DDP (the in-batch negatives are per rank too); the gradient flows through the mean |
| `fixed` | `p - mu_side` | `mu_side` measured once on the model at the start of training over the first `--alignment_stats_samples` pairs (default 1024), the same on every rank; saved as `alignment_stats.safetensors` in the output dir and every checkpoint, reused on resume |
| `standardize` | `(p - mu_side) / sigma_side` | as `fixed`, plus the per-dimension standard deviation: massive-activation dimensions stop dominating |

Pooling and similarities always run in float32 (bf16 sums lose the small components; fp16 sums overflow at Gemma 3's
activations). Tests: `tests/alignment/test_centering.py` (hand computations),
`tests/training/test_center_and_bf16.py` (through the training command, statistics against a hand recomputation,
resume reuses them).

A caveat the diagnosis found: `batch` centering is *worse* than chance at initialisation when one massive dimension
varies with sentence length (SmolLM2 with the paper's `mean` pooling, where the first-token sink's share is
1/length): after centering, that one dimension dominates and its sign does not follow the pairs. `standardize` (or
`mean_skip_first` pooling) removes it. The verdict names whichever remedy brings the loss below chance.
"""


def render_remedies() -> str:
    lines = [REMEDIES_TEXT.rstrip(), "", "## Diagnosis of the embedded models", ""]
    found = False
    for model, title, layers in (("smollm2", "SmolLM2-135M-Instruct (30 layers)", [5, 10, 15, 20, 25, 30]),
                                 ("gemma3", "Gemma 3 270M (18 layers)", [3, 6, 9, 12, 15, 18])):  # fmt: skip
        for pooling in ("mean", "mean_skip_first"):
            rows = _load(f"anisotropy_{model}_{pooling}.json")
            if not rows:
                continue
            found = True
            first = rows[0]
            lines += [f"### {title}, `{pooling}` pooling", "",
                      f"{first['n']} pairs ({first['pairs']}, `data_example/parallel.jsonl`), batches of "
                      f"{first['batch_size']}, τ = {first['temperature']} (`fig/anisotropy_{model}_{pooling}.json`, "
                      f"figure `fig/anisotropy_{model}_{pooling}.png`).", ""]  # fmt: skip
            lines += _diag_table(rows, layers)
            mid = next((r for r in rows if r["layer"] == layers[2]), rows[len(rows) // 2])
            lines += ["", f"Layer {mid['layer']}: {mid['verdict']}.", ""]
    if not found:
        lines += ["Not measured yet: run the command above for both models.", ""]
    sib = _load("sib200.json")
    lines += ["## Positive control: alignment only, paper loss vs remedy", ""]
    if sib and "control_paper" in sib["summary"]["methods"]:
        lines += _control_table(sib)
    else:
        lines += ["Not run yet: `midalign experiment sib200` (rows `control_paper`, `control_center`).", ""]
    return "\n".join(lines).rstrip() + "\n"


WITHDRAWN_SIB200 = (
    "**Withdrawn (issue 29).** The task accuracies and differences this page showed measured a two-topic decision, "
    "not the seven-topic task: the experiment scored the first test sentences of every language, the release sorts "
    "its test file by topic, and so the evaluated sentences held two of the seven topics (science/technology and "
    "travel, three to one). Answering science/technology every time scored as well as the trained runs did. The other "
    "topics were never scored, so the numbers cannot be recomputed: they are removed from this page, the remedies page "
    "and the README. Their intervals were also too narrow (a percentile bootstrap over three seeds stands in for a t "
    "quantile of about four with about two). The harness now samples evaluation subsets stratified by label (default: "
    "the whole split), refuses an unrepresentative one, shows the majority-class accuracy beside every accuracy and "
    "gives seed-level t-intervals. The powered, preregistered experiment replaces this one: "
    "[SIB-200, powered](experiment-sib200-powered.md)."
)
WITHDRAWN_XSID = (
    "**Withdrawn (issue 29).** The slot-F1 numbers this section showed are not held-out: about a third of the "
    "evaluated test sentences of every language translate an English sentence of the training file `en.valid`, and in "
    "the aligned languages about a third of the evaluated test sentences and of the held-out retrieval sentences are "
    "in the alignment pair file. Per-sentence predictions were not saved, so the tables cannot be recomputed without "
    "the overlapping sentences; they are removed, with the README headline built on them (under a seed-level "
    "t-interval that headline's transfer difference includes zero anyway). The harness now drops evaluation items "
    "whose id or normalized text, in any language, occurs in the task rows or the pairs (and counts them), samples "
    "subsets at random, and gives seed-level t-intervals; an xSID rerun on it is the next step."
)


def _t(values: list[float]) -> str:
    """``mean [low, high]`` in % from per-seed values, a seed-level t-interval (``mean`` alone for one seed)."""
    from midalign.experiments.stats import t_interval

    t = t_interval(values)
    if t["low"] is None:
        return f"{100 * t['mean']:.1f} (one seed)"
    return f"{100 * t['mean']:.1f} [{100 * t['low']:.1f}, {100 * t['high']:.1f}]"


def _control_rows(sib: dict) -> tuple[list[str], dict]:
    """Per method: raw/centered retrieval of the aligned and never-aligned languages, a t-interval over seeds."""
    cfg = sib["config"]
    transfer = [x for x in sib["languages"] if x != "eng_Latn" and x not in cfg["aligned"]]
    groups = {"aligned": list(cfg["aligned"]), "transfer": transfer}
    out, means = [], {}
    for m in ("control_paper", "control_center", "alignment", "alignment_center"):
        runs = sorted((r for r in sib["runs"] if r["method"] == m), key=lambda r: r["seed"])
        if not runs:
            continue
        cells = []
        for g in ("aligned", "transfer"):
            for kind in ("raw", "centered"):
                per_seed = [fmean(r["retrieval"][x][kind] for x in groups[g]) for r in runs]
                means[(m, g, kind)] = fmean(per_seed)
                cells.append(_t(per_seed))
        dtypes = ", ".join(f"{r['seed']}: {r.get('dtype', '?')}" for r in runs)
        out.append(f"| {m} | {dtypes} | " + " | ".join(cells) + " |")
    return out, means


def _control_table(sib: dict) -> list[str]:
    s, cfg = sib["summary"], sib["config"]
    base = s["base_retrieval"]
    rows, _ = _control_rows(sib)
    return [
        f"`midalign experiment sib200` rows `control_paper` and `control_center`: {cfg['control_steps']} "
        f"alignment-only steps (batch {cfg['batch_size']}, lr {cfg['control_learning_rate']}, LoRA r 8) on SIB-200 "
        f"train pairs English <-> {', '.join(cfg['aligned'])}, remedy `--alignment_center {cfg['remedy']}`, pooling "
        f"`{cfg['pooling']}`, layer {sib['layer']}. Retrieval acc@1 x -> English among all {cfg['retrieval_size']} "
        "test sentences (retrieval does not depend on the topics, so these figures stand; %, mean over seeds with a "
        "95% seed-level t-interval; languages are fixed effects). The seeds ran in two precisions (the dtype column): "
        "each interval mixes them, and with three seeds it is dominated by the seed variance estimate. The leak "
        "check added since (`retrieval_subset`) finds one of these sentences a near-duplicate of a pair sentence "
        "(test 184 contains train 185): one candidate in each language's retrieval set, far too little to move the "
        "control's contrast.", "",
        "| model | seed: dtype | aligned, raw | aligned, centered | never aligned, raw | never aligned, centered |",
        "|---|---|---|---|---|---|",
        f"| base | - | {_pct(base['raw aligned'])} | {_pct(base['centered aligned'])} | "
        f"{_pct(base['raw transfer'])} | {_pct(base['centered transfer'])} |",
        *rows, "",
        "`alignment` / `alignment_center` are the same losses alternated with the task. The paper's loss starts at "
        "chance (it cannot tell the pairs apart at initialization) but is not blind to them once trained: compare its "
        "raw and centered columns with the base row; the remedy's rows show what centering adds.", "",
    ]  # fmt: skip


QUICK_SIB200_CMD = (
    "midalign experiment sib200 --quick --test-size 14 --data-dir ../shared/data/sib-200 --fig-dir fig --dtype float32"
)


def _quick_demo(q: dict) -> list[str]:
    """What the fixed harness writes, shown on a smoke run: the subset and its majority baseline, the leak checks,
    the plan, the dtype, and paired differences with the primary t-interval beside the clustered bootstrap."""
    sub, prof = q["subset"], q["subset"]["labels"]
    counts = ", ".join(f"{k} {v}" for k, v in prof["counts"].items())
    leaks = "; ".join(f"{k} {len(v['ids'])}" for k, v in q["leakage"]["by_source"].items())
    t = q["timeline"]
    s = q["summary"]
    groups = list(s["groups"])
    rows = ["| method | " + " | ".join(groups) + " | majority class | chance |", "|---|" + "---|" * (len(groups) + 2)]
    for m, e in s["methods"].items():
        if "groups" in e:
            rows.append(f"| {m} | " + " | ".join(_pct(e["groups"][g][0]) for g in groups)
                        + f" | {_pct(prof['majority_accuracy'])} | {_pct(prof['chance'])} |")  # fmt: skip
    d = s["paired"]["alignment_center - baseline_2x"]
    pair = "; ".join(f"{g} {100 * d['t'][g]['mean']:+.1f} (bootstrap [{100 * d['groups'][g][1]:+.1f}, "
                     f"{100 * d['groups'][g][2]:+.1f}])" for g in groups)  # fmt: skip
    return [
        "## What the fixed harness writes: a smoke run", "",
        f"`{QUICK_SIB200_CMD}` (one seed, {q['config']['steps']} training steps: a smoke run whose numbers say "
        "nothing about the methods; `fig/sib200_quick.json`, `fig/sib200_quick.md`). Every results file of the "
        "harness now carries what this page's withdrawn numbers lacked:", "",
        f"- the evaluated subset: {sub['size']} of {sub['of']} test sentences, {sub['method']} (seed {sub['seed']}; the "
        f"same ids in every language): {counts}; its majority-class accuracy {_pct(prof['majority_accuracy'])}% and "
        f"chance {_pct(prof['chance'])}% beside every accuracy (a subset missing a topic, or one whose majority class "
        "passes half when the split's does not, is refused);",
        f"- the leak checks, run before any training: evaluated items found in the training sources by id, "
        f"normalized text or near-duplicate text (shared character 8-grams) in any language: {leaks} "
        f"({sub.get('leaked_dropped', 0)} dropped); retrieval sentences found in the pairs: "
        f"{q['retrieval_subset']['leaked_dropped']} dropped;",
        f"- the plan: written {t['plan_written']} ({t['status']}), {t['runs_before_plan']} of {t['n_runs']} runs "
        f"finished before it; the compute dtype of every seed ({', '.join(s['dtype_by_seed'].values())});",
        f"- paired differences with the seed-level t-interval as the primary interval and the bootstrap over seeds "
        f"and sentence clusters as the sensitivity check (`alignment_center - baseline_2x`, points: {pair}); with one "
        "seed the table says that no interval can be given.", "",
        "Accuracy (%) of the smoke run per group, beside the subset's majority-class accuracy and chance:", "",
        *rows, "",
    ]  # fmt: skip


def render_sib200() -> str:
    sib = _load("sib200.json")
    lines = ["# SIB-200 (first experiment, withdrawn)", "", WITHDRAWN_SIB200, ""]
    if sib and "control_paper" in sib["summary"]["methods"]:
        lines += ["## What stands: the positive control", ""] + _control_table(sib)
    quick = _load("sib200_quick.json")
    if quick:
        lines += [""] + _quick_demo(quick)
    return "\n".join(lines).rstrip() + "\n"


def block_xsid_withdrawn() -> str:
    return WITHDRAWN_XSID


POWERED = FIG / "sib200_powered"
POWERED_CMD = "make experiment-powered PHASE={phase}"


def _powered_json(name: str):
    path = POWERED / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _powered_units(sub: str) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((POWERED / sub).glob("seed*/*/result.json"))]


def _profile(p: dict) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in p["counts"].items())
    return (f"{p['n']} items ({counts}); majority-class accuracy {_pct(p['majority_accuracy'])}%, chance "
            f"{_pct(p['chance'])}%")  # fmt: skip


def _powered_screen(screen: dict, sel: dict) -> list[str]:
    langs = screen["languages"]
    rows = ["| half | language | dev retrieval raw | centered |", "|---|---|---|---|"]
    for half in ("A", "B"):
        rows += [f"| {half} | {x} | {_pct(langs[x]['raw'])} | {_pct(langs[x]['centered'])} |"
                 for x in sel["roles"][half]]  # fmt: skip
    return [
        f"**Language screen** (`{POWERED_CMD.format(phase='screen')}`; `fig/sib200_powered/screen.json`): the base "
        f"model's retrieval x -> English among the {screen['n_items']} {screen['split']} sentences at layer "
        f"{screen['layer']} (`{screen['pooling']}`), for {len(langs)} languages; {screen['env']['cpu']}, "
        f"{screen['env']['dtype']}. The selection rule (fixed before any task result; revised once, after review, "
        "because its first version drew one Latin-script language of 16) kept "
        f"{len(sel['eligible'])} languages "
        f"({len(sel['excluded_low'])} below the readability bound, {len(sel['excluded_high'])} above the headroom bound) "
        f"and drew {len(sel['selected'])}: Latin-script and other languages in proportion to their eligible counts "
        f"({sel['latin_share'][0]} Latin), each group stratified over retrieval quartiles, scripts spread, one variant "
        "per language code; halves A and B split every cell evenly at random.", "",
        "![screen](fig/sib200_powered/screen.png)", "", *rows, "",
    ]  # fmt: skip


def _powered_pilot(pilot: dict, units: list[dict]) -> list[str]:
    if pilot is None:
        done = sorted(f"{u['arm']}:{u['seed']}" for u in units)
        return [f"**Pilot** (exploratory, dev split only; `{POWERED_CMD.format(phase='pilot')}`): "
                f"{len(done)} units finished so far ({', '.join(done) or 'none'}); the choice is made when all are "
                "done.", ""]  # fmt: skip
    major = _pct(pilot["dev_subset"]["labels"]["majority_accuracy"])
    rows = ["| configuration | English dev accuracy | majority class | aligned dev retrieval, centered | raw | "
            "minutes per unit |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, v in pilot["summary"].items():
        rows.append(f"| {name} | {_pct(v['english_dev_accuracy'])} | {major} | "
                    f"{_pct(v['aligned_dev_retrieval_centered'])} | {_pct(v['aligned_dev_retrieval_raw'])} | "
                    f"{v['seconds'] / 60:.0f} |")  # fmt: skip
    return [f"**Pilot** (exploratory: seeds {', '.join(map(str, pilot['seeds']))}, dev split only, means over seeds; "
            f"English dev set: {_profile(pilot['dev_subset']['labels'])}). Rule: {pilot['rule']}", "", *rows, "",
            f"Choice: {pilot.get('why', 'not made (partial grid)')} (English dev majority-class accuracy {major}).",
            ""]  # fmt: skip


def _powered_report(rep: dict) -> list[str]:
    s = rep["summary"]
    plan = rep["plan"]["plan"]
    prof = plan["evaluation"]["subset"]["labels"]
    out = [f"**Results so far** (`fig/sib200_powered.json`, {len(rep['units_done'])} of {rep['units_planned']} "
           f"units, seeds {', '.join(map(str, s['seeds_done']))}; {rep['dtype']}; every evaluated language: "
           f"{_profile(prof)}). Paired differences in accuracy points, mean over seeds with the 95% seed-level "
           "t-interval (primary) and the bootstrap over seeds and sentence clusters (sensitivity); languages are "
           "fixed effects.", "", "| endpoint | seeds | verdict | bootstrap |", "|---|---|---|---|"]  # fmt: skip
    for name, e in {**s["endpoints"], **{f"English: {k}": v for k, v in s["english"].items()}}.items():
        if not e.get("seeds"):
            continue
        b = e["bootstrap"]
        out.append(f"| {name} | {len(e['seeds'])} | {e['verdict']} | [{100 * b['low']:+.1f}, {100 * b['high']:+.1f}] |")
    caveat = next((e.get("caveat") for e in s["endpoints"].values() if e.get("caveat")), None)
    if caveat:
        out += ["", caveat + "."]
    return out + [""]


def render_sib200_powered() -> str:
    lines = ["# SIB-200, powered and preregistered: does alignment lift zero-shot transfer at 270M?", "",
             "The design (issue 30): Gemma 3 270M, LoRA on the English train split, zero-shot label scoring of all "
             "seven topics on the whole test split of 16 languages and English; languages chosen by a rule on a dev "
             "screen; each language aligned in half of the seeds (even seeds align half A, odd seeds half B), so the "
             "aligned-versus-not contrast is randomized within language; arms `baseline_2x`, `alignment` and "
             "`alignment_center` share each seed's LoRA init and data order; the plan is written before any "
             "confirmatory result. Commands: `make experiment-powered PHASE=screen|pilot|plan|run|report` "
             "(`midalign experiment powered --help`; `make experiment-powered-at-plan PHASE=run` runs the confirmatory "
             "units with the code of the plan's commit, from a git worktree, while main moves on); the work dir "
             "`fig/sib200_powered/` keeps the plan and every "
             "finished unit's record in git, so any machine resumes the grid (`RUN_ARGS=--shard K/N` for a job "
             "array).", ""]  # fmt: skip
    screen, sel = _powered_json("screen.json"), _powered_json("selection.json")
    if screen and sel:
        lines += _powered_screen(screen, sel)
    else:
        lines += [f"Not screened yet: `{POWERED_CMD.format(phase='screen')}`.", ""]
    if sel:
        lines += _powered_pilot(_powered_json("pilot.json"), _powered_units("pilot"))
    record = _powered_json("plan.json")
    if record is None:
        lines += ["**Plan**: not written yet (it follows the pilot). No confirmatory result exists.", ""]
        return "\n".join(lines).rstrip() + "\n"
    plan = record["plan"]
    units = _powered_units("runs")
    lines += [f"**Plan** `{record['sha']}` ({record['status']}), written {record['written']} at commit "
              f"`{(record['code']['commit'] or 'unknown')[:10]}`: arms {', '.join(plan['arms'])}; seeds "
              f"{plan['seeds'][0]}..{plan['seeds'][-1]}; {plan['dtype']}; primary endpoint: "
              f"{plan['endpoints']['primary']}; every evaluated language: "
              f"{_profile(plan['evaluation']['subset']['labels'])}. Stopping rule: {plan['stopping_rule']}", "",
              f"Confirmatory units finished: {len(units)} of {len(plan['arms']) * len(plan['seeds'])} ("
              + (", ".join(sorted(f"{u['arm']}:{u['seed']}" for u in units)) or "none") + ").", ""]  # fmt: skip
    if plan.get("caveats"):
        lines += ["Caveats written into the plan:", "", *[f"- {c}" for c in plan["caveats"]], ""]
    rep = _load("sib200_powered.json")
    if rep:
        lines += _powered_report(rep)
    else:
        lines += [f"No report yet: `{POWERED_CMD.format(phase='report')}` writes `fig/sib200_powered.json`.", ""]
    return "\n".join(lines).rstrip() + "\n"


def block_sib200_powered_headline() -> str:
    record = _powered_json("plan.json")
    rep = _load("sib200_powered.json")
    if rep:
        e = rep["summary"]["endpoints"].get("primary: alignment_center - baseline_2x, aligned half", {})
        if e.get("seeds"):
            return (f"- **SIB-200, powered** (Gemma 3 270M, all seven topics, {len(e['seeds'])} seeds so far, "
                    f"preregistered): alignment with the remedy vs the compute-matched baseline on the aligned "
                    f"languages: {e['verdict']} ([page](docs/experiment-sib200-powered.md)).")  # fmt: skip
    state = "plan written, runs under way" if record else "language screen and pilot under way, plan not yet written"
    return (
        f"- **SIB-200, powered** (Gemma 3 270M, all seven topics, randomized language roles): {state}; no "
        "confirmatory result yet ([page](docs/experiment-sib200-powered.md))."
    )


def _matmul_rows(m: dict) -> list[str]:
    return [f"| {name} | {v['float32'] * 1000:.1f} ms | {v['bfloat16'] * 1000:.1f} ms | {v['ratio_bf16_over_fp32']:.2f}x |"
            for name, v in m.items()]  # fmt: skip


def _vllm_table(v: dict, name: str) -> list[str]:
    sec, sps, load = v["seconds"], v["sentences_per_second"], v["load_seconds"]
    adapter = f", LoRA adapter `{v['adapter']}` (merged in ours, `LoRARequest` in vLLM)" if v.get("adapter") else ""
    return [
        f"`{v['command']}`: {v['n_prompts']} xSID test prompts, Gemma 3 270M in {v['dtype']}{adapter}, at most "
        f"{v['max_new_tokens']} new tokens, {v['cpu']}, {v['threads']} thread(s), torch {v['torch']}, vLLM "
        f"{v['vllm']}; medians of {v['rounds']} interleaved rounds after load (`fig/{name}`).", "",
        "| engine | generation (s) | sentences/s | model load (s) |", "|---|---|---|---|",
        f"| midalign | {sec['midalign']:.1f} | {sps['midalign']:.2f} | {load['midalign']:.1f} |",
        f"| vLLM | {sec['vllm']:.1f} | {sps['vllm']:.2f} | {load['vllm']:.1f} |", "",
        f"vLLM / midalign generation time: {v['ratio_vllm_over_midalign']:.2f}x; identical outputs "
        f"{_pct(v['identical_outputs'])}%.",
    ]  # fmt: skip


def block_vllm() -> str:
    runs = [(name, _load(name)) for name in ("vllm.json", "vllm_lora.json")]
    runs = [(name, v) for name, v in runs if v]
    if not runs:
        return ("Not measured yet: `make vllm-env && python benchmarks/vllm.py` writes `fig/vllm.json`, which this "
                "table is rendered from.")  # fmt: skip
    lines: list[str] = []
    for name, v in runs:
        lines += ([""] if lines else []) + _vllm_table(v, name)
    return "\n".join(lines)


BF16_FILES = ("bf16.json", "bf16_avx512_bf16.json")


def _bf16_section(name: str, b: dict) -> list[str]:
    where = b.get("cpu") or ("a CPU with bf16 units (the file predates the `cpu` field; its bf16 speed-ups imply "
                             "the units)")  # fmt: skip
    cmd = b.get("command", "python benchmarks/bf16.py --threads 1 --rounds 2 --sentences 32")
    lines = [f"### {where}", "", "```bash", cmd, "```", ""]
    if "matmul" in b:
        lines += ["| matmul | float32 | bfloat16 | ratio |", "|---|---|---|---|", *_matmul_rows(b["matmul"]), ""]
    h, sc, tr = b["lm_head_linear"], b["sib200_scoring"], b["training_step"]
    return lines + [
        f"torch {b['torch']}, {b['threads']} thread(s), {b['rounds']} interleaved rounds, medians (`fig/{name}`).",
        "",
        "| measurement | float32 / reference | bfloat16 / variant | ratio |",
        "|---|---|---|---|",
        f"| Gemma 3 LM head `F.linear` [16, 1, 640] bf16: contiguous vs strided view (s) | {h['contiguous']:.3f} | "
        f"{h['strided_view']:.3f} | {h['ratio_view_over_contiguous']:.0f}x slower |",
        f"| SIB-200 label scoring, Gemma 3, {sc['n_sentences']} sentences (s) | {sc['float32']['seconds']:.1f} | "
        f"{sc['bfloat16']['seconds']:.1f} | {sc['ratio_bf16_over_fp32']:.2f}x |",
        f"| SIB-200 predictions on those sentences (base model), fp32 vs bf16 | - | - | identical "
        f"{_pct(sc['identical_predictions'])}% |",
        f"| LoRA task micro-batch fwd+bwd, Gemma 3, {tr['batch']} (s) | {tr['float32']:.2f} | "
        f"{tr['bf16_base_fp32_lora_autocast']:.2f} | {tr['ratio_bf16_over_fp32']:.2f}x |",
        "",
    ]


def render_bf16() -> str:
    lines = ["# bf16 on the CPU's matrix units", "",
             "bf16 pays only on a CPU with bf16 matrix instructions (Intel AMX `amx_bf16`, or AVX-512 `avx512_bf16`)."
             " Without them torch runs bf16 matmuls on a scalar fallback, far slower than float32. midalign checks "
             "the CPU (`midalign.models.hardware`): the experiments' `--dtype auto` (their default) picks bfloat16 "
             "only where it is native, and `--bf16 True` or bfloat16 weights on a CPU without bf16 units log one "
             "warning saying so.", ""]  # fmt: skip
    mm = _load("bf16_matmul.json")
    if mm:
        lines += ["```bash", "python benchmarks/bf16.py --matmul-only", "```", "",
                  f"{mm['cpu']}, torch {mm['torch']}, {mm['threads']} thread(s), {mm['rounds']} interleaved rounds, "
                  "medians (`fig/bf16_matmul.json`):", "",
                  "| matmul | float32 | bfloat16 | ratio |", "|---|---|---|---|", *_matmul_rows(mm["matmul"]), ""]  # fmt: skip
    lines += ["## On a CPU with bf16 units", "",
              "Each kind of bf16 unit has its own results file (Intel AMX tiles, AMD/Intel AVX-512 BF16 vector "
              "instructions); every figure names the CPU it was measured on, and figures of different CPUs are never "
              "set into one ratio.", ""]  # fmt: skip
    files = [(name, _load(name)) for name in BF16_FILES]
    files = [(name, b) for name, b in files if b]
    if not files:
        return "\n".join(lines + ["Not measured yet.", ""])
    for name, b in files:
        lines += _bf16_section(name, b)
    lines += [
        "The strided-view row is why midalign makes the LM head's input contiguous at load (`contiguous_head_input`):",
        "`logits_to_keep=1` hands the head a strided [B, 1, H] view, on which torch's CPU bf16 matmul takes a slow",
        "path. Before that fix, bf16 label scoring in a long-running process was slower than float32.",
        "",
    ]
    lines += [
        "## The whole training recipe in bf16",
        "",
        "`benchmarks/train_recipe.py` with its bf16 variants: the real entry point on SmolLM2, `--bf16 True` "
        "(frozen base weights stored in bf16, LoRA weights and optimizer state in float32, autocast) against "
        "float32, side by side in one run on one CPU.",
        "",
        _train_recipe("train_recipe_bf16.json", 0.6),
        "",
    ]
    return "\n".join(lines)


def _demo_table(demo: dict) -> list[str]:
    runs = demo["runs"]
    names = {"none": "after, paper loss", "batch": "after, `--alignment_center batch`"}
    cols = [names.get(c, f"after, `--alignment_center {c}`") for c in runs]
    b = demo["retrieval_before"]
    out = [f"`make demo` (`midalign demo`): SmolLM2-135M-Instruct, layer {demo['layer']}, pooling `{demo['pooling']}`, "
           f"{demo['steps']} steps per run (batch {demo['batch_size']} x accumulation "
           f"{demo['gradient_accumulation_steps']}, lr {demo['learning_rate']}, seed {demo['seed']}), "
           f"{demo['seconds'] / 60:.0f} min in all{_threads(demo)} (`fig/demo.json`). Held-out retrieval acc@1, mean over languages "
           f"({demo['heldout_sentences_per_language']} sentences each, chance "
           f"{1 / demo['heldout_sentences_per_language']:.3f}):", "",
           "| retrieval | before | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]  # fmt: skip
    for kind in ("raw", "centered"):
        for key in ("mean en->x", "mean x->en"):
            out.append(f"| {kind}, {key.replace('mean ', '')} | {b[kind][key]:.3f} | "
                       + " | ".join(f"{r['retrieval_after'][kind][key]:.3f}" for r in runs.values()) + " |")  # fmt: skip
    out.append("| loss/align, first -> last log | | " + " | ".join(
        f"{r['loss/align'][0]:.3f} -> {r['loss/align'][1]:.3f}" for r in runs.values()) + " |")  # fmt: skip
    return out


def _threads(demo: dict) -> str:
    return f" with {demo['threads']} thread(s)" if demo.get("threads") else ""


def block_demo() -> str:
    demo = _load("demo.json")
    if not demo:
        return "Not run yet: `make demo-results` writes `fig/demo.json`, which this table is rendered from."
    return "\n".join(_demo_table(demo))


def block_headline() -> str:
    lines = []
    demo = _load("demo.json")
    if demo:
        b, runs = demo["retrieval_before"], demo["runs"]

        def four(r):
            return "/".join(f"{r[k][d]:.2f}" for k in ("raw", "centered") for d in ("mean en->x", "mean x->en"))

        after = "; ".join(f"{'paper loss' if c == 'none' else '`--alignment_center ' + c + '`'} {four(r['retrieval_after'])}"
                          for c, r in runs.items())  # fmt: skip
        lines.append(f"- **Demo** (SmolLM2, {demo['steps']} steps, one seed, 16 sentences per language, `make demo`): "
                     f"held-out retrieval acc@1, raw en->x/x->en, centered en->x/x->en: before {four(b)}; after "
                     f"{after} ([Quick start](docs/quickstart.md)).")  # fmt: skip
    sib = _load("sib200.json")
    if sib:
        _, means = _control_rows(sib)
        base = sib["summary"]["base_retrieval"]
        if ("control_center", "transfer", "centered") in means and ("control_paper", "transfer", "centered") in means:
            lines.append(
                "- **SIB-200, alignment alone** (Gemma 3 270M, the positive control, 3 seeds in two precisions): "
                f"centered retrieval of never-aligned languages {_pct(base['centered transfer'])}% base, "
                f"{_pct(means[('control_paper', 'transfer', 'centered')])}% after the paper's loss, "
                f"{_pct(means[('control_center', 'transfer', 'centered')])}% after the remedy (seed-level intervals on "
                "the [remedies page](docs/remedies.md))."
            )
        lines.append(
            "- **Withdrawn**: the first SIB-200 experiment's task accuracies (they scored two of the seven topics) and "
            "the xSID and method-comparison slot F1 (a third of the test sentences overlap training data); see the "
            "[SIB-200 page](docs/experiment-sib200.md) and the [xSID page](docs/experiment-xsid.md)."
        )
    lines.append(block_sib200_powered_headline())
    return "\n".join(lines) if lines else "No results files yet (`fig/demo.json`, `fig/sib200.json`)."


def block_diagnosis() -> str:
    """One row per embedded model and pooling at the default alignment layer (L // 2), from fig/anisotropy_*.json."""
    models = (("gemma3", "Gemma 3 270M", 18), ("smollm2", "SmolLM2-135M-Instruct", 30))
    first = _load("anisotropy_gemma3_mean_skip_first.json")
    head = (
        f"Pairs {first[0]['pairs']} ({first[0]['n']} pairs), InfoNCE on batches of {first[0]['batch_size']} at "
        f"τ {first[0]['temperature']}:"
        if first
        else ""
    )
    out = ["| model | pooling | layer | pair / unrelated cos | top-1 dim share | InfoNCE at init: paper / batch / "
           "standardized (ln B) | retrieval raw / centered |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for key, label, n_layers in models:
        for pooling in ("mean", "mean_skip_first"):
            rows = _load(f"anisotropy_{key}_{pooling}.json")
            r = next((x for x in rows or [] if x["layer"] == n_layers // 2), None)
            if r:
                out.append(
                    f"| {label} | `{pooling}` | {r['layer']} | {r['pair_cos']:.3f} / {r['unrelated_cos']:.3f} | "
                    f"{r['top1_share']:.2f} | {r['infonce_init']:.2f} / {r['infonce_init_centered']:.2f} / "
                    f"{r['infonce_init_standardized']:.2f} ({r['chance']:.2f}) | {r['retrieval_raw']:.2f} / "
                    f"{r['retrieval_centered']:.2f} |"
                )  # fmt: skip
    if len(out) == 2:
        return "Not run yet: `midalign analyze anisotropy` (see the remedies page)."
    return "\n".join([head, "", *out])


# ------------------------------------------------------------------ experiment pages: per-seed paired readings
GROUP_NAMES = ("english", "aligned", "transfer")


def _signed(v: float) -> str:
    """Points with an explicit sign and a true minus, e.g. ``+0.7``, ``−3.5``."""
    return f"{100 * v:+.1f}".replace("-", "−")


def _bench_head(b: dict, name: str) -> str:
    return (f"`{b['command']}` ({b['date']}, {b['cpu']}, {b['threads']} thread(s), torch {b['torch']}; "
            f"`fig/{name}`)")  # fmt: skip


def _not_measured(name: str, command: str) -> str:
    return f"Not measured yet: `{command} --json fig/{name}` writes the file this section is rendered from."


def block_bench_alignment_step() -> str:
    b = _load("alignment_step.json")
    if not b:
        return _not_measured("alignment_step.json", "python benchmarks/alignment_step.py")
    v = b["variants"]
    rows = (("task", f"task micro-batch ({b['batch']} × {b['task_tokens']} tokens)"),
            ("align", "alignment micro-batch, `layer_output`"),
            ("naive", "naive: full forward + `output_hidden_states`"))  # fmt: skip
    lines = [f"{_bench_head(b, 'alignment_step.json')}: random SmolLM2-shaped model, LoRA, layer {b['layer']}, batch "
             f"{b['batch']}, pairs of {b['pair_tokens']} tokens, median of {b['repeats']} after a warm-up; each "
             "variant in its own process.", "",
             "| variant | fwd+bwd (median s) | peak RSS increase (MB) |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {label} | {v[k]['median_s']:.3f} | {v[k]['peak_rss_increase_mb']:.0f} |" for k, label in rows]
    t = v["align"]["median_s"] / v["naive"]["median_s"]
    m = v["align"]["peak_rss_increase_mb"] / v["naive"]["peak_rss_increase_mb"]
    lines += [
        "",
        f"Alignment step vs naive: **{t:.2f}× the time, {m:.2f}× the peak memory** (targets ≤ 0.5× and "
        f"< 1×: time {'met' if t <= 0.5 else 'not met'}, memory {'met' if m < 1 else 'not met'} in this run).",
    ]
    return "\n".join(lines)


def block_bench_task_loss() -> str:
    b = _load("task_loss.json")
    if not b:
        return _not_measured("task_loss.json", "python benchmarks/task_loss.py")
    names = {"smollm2": "SmolLM2 (vocab 49k)", "gemma3": "Gemma 3 270M (vocab 262k)"}
    lines = [f"{_bench_head(b, 'task_loss.json')}: batch {b['batch']} of prompts of {b['prompt_tokens'][0]}–"
             f"{b['prompt_tokens'][1]} tokens with targets of {b['target_tokens'][0]}–{b['target_tokens'][1]}, "
             f"medians over {b['rounds']} rounds × {b['repeats']} timed passes, each (shape, variant) in its own "
             "process.", "",
             "| shape | logits over | s / task micro-batch | peak RSS (MB) |", "|---|---|---|---|"]  # fmt: skip
    for shape, s in b["summary"].items():
        lines += [f"| {names.get(shape, shape)} | every position | {s['full_seconds']:.2f} | {s['full_peak_rss_mb']:.0f} |",
                  f"| | each row's targets (+ decoder cut after the last) | {s['supervised_seconds']:.2f} "
                  f"(**{s['time_ratio']:.2f}×**) | {s['supervised_peak_rss_mb']:.0f} (**{s['rss_ratio']:.2f}×**) |"]  # fmt: skip
    worst = max(s["loss_abs_diff"] for s in b["summary"].values())
    lines += ["", f"The two losses agree to {worst:.1e} (largest absolute difference)."]
    return "\n".join(lines)


def block_bench_scoring() -> str:
    b = _load("scoring.json")
    if not b:
        return _not_measured("scoring.json", "python benchmarks/scoring.py")
    out = _bench_scoring_rows(b)
    for name in ("scoring_bf16.json",):
        other = _load(name)
        if other:
            out += "\n\n" + _bench_scoring_rows(other, name)
    agree = _load("scoring_first_token.json")
    if agree:
        out += "\n\n" + _first_token_agreement(agree)
    return out


def _first_token_agreement(b: dict) -> str:
    """The first-token shortcut against exact scoring on whole test splits, per language (base model)."""
    rows = ["| language | sentences | identical predictions | accuracy, exact | accuracy, first token | majority class | "
            "chance | seconds, exact | seconds, first token |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for lang, a in b["agreement"].items():
        rows.append(f"| `{lang}` | {a['n']} | {_pct(a['share'])}% | {_pct(a['accuracy_exact'])}% | "
                    f"{_pct(a['accuracy_first_token'])}% | {_pct(a['majority_accuracy'])}% | {_pct(a['chance'])}% | "
                    f"{a['seconds_exact']:.1f} | {a['seconds_first_token']:.1f} |")  # fmt: skip
    return "\n".join([
        f"**The first-token shortcut** (`--scoring first_token`, never the default): {_bench_head(b, 'scoring_first_token.json')}; "
        f"{b['model']} base model in {b['dtype']}, the whole SIB-200 test split of each language, `eos` labels; "
        "exact vs first-token predictions, each with its accuracy beside the split's majority-class accuracy and "
        "chance (seconds measured while a training run shared the cores: compare them within a row, not across "
        "rows or with the table above):", "", *rows, "",
        "The shortcut changes a quarter or more of the predictions and costs accuracy in three of the four "
        "languages; it stays an option for a quick look, never what a reported number uses.",
    ])  # fmt: skip


def _bench_scoring_rows(b: dict, name: str = "scoring.json") -> str:
    v = b["variants"]
    lines = [f"{_bench_head(b, name)}: {b['model']} in {b['dtype']}, {b['n']} SIB-200 `{b['lang']}` test "
             f"sentences x {b['labels']} labels, batch {b['batch_size']}, {b['rounds']} interleaved rounds, median "
             f"round (fastest-slowest); load average {b['load_average_before'][0]:.1f} before, "
             f"{b['load_average_after'][0]:.1f} after. Label forms: `eos` = label + end-of-sequence token (our "
             "training target), `plain` = the bare label (lm-eval's usual multiple-choice form).", "",
             "| scorer / labels | median s (range) | sentences / s | time / midalign's | identical predictions | max abs log-lik difference |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, e in v.items():
        diff = f"{e['max_abs_loglik_diff']:.1e}" if "max_abs_loglik_diff" in e else "-"
        lines.append(f"| `{name}` | {e['median_seconds']:.1f} ({e['min_seconds']:.1f}-{e['max_seconds']:.1f}) | "
                     f"{e['sentences_per_second']:.2f} | {e['time_over_ours']:.2f}x | "
                     f"{_pct(e['identical_predictions'])}% | {diff} |")  # fmt: skip
    for form in ("eos", "plain"):
        best = min((e for n, e in v.items() if n.startswith("lm_eval") and n.endswith(f"/{form}")),
                   key=lambda e: e["median_seconds"], default=None)  # fmt: skip
        if best:
            verdict = "met" if best["time_over_ours"] >= 10 else "not met"
            lines += ["", f"`{form}` labels: lm-eval at its best batch size takes {best['time_over_ours']:.1f}x "
                      f"midalign's time for the same predictions; target >= 10x: {verdict}."]  # fmt: skip
    return "\n".join(lines)


def block_bench_inference() -> str:
    runs = [(n, _load(n)) for n in ("inference.json", "inference_adapter.json")]
    runs = [(n, b) for n, b in runs if b]
    if not runs:
        return _not_measured("inference.json", "python benchmarks/inference.py")
    first = runs[0][1]
    labels = {"paper": "paper: fixed input order, `model.generate`", "sorted": "length-sorted batches only",
              "ours": "**ours: length-sorted + prefix cache**"}  # fmt: skip
    lines = []
    for n, b in runs:
        lines.append(f"* {_bench_head(b, n)}" + (f", adapter `{b['adapter']}` (merged)" if b["adapter"] else
                                                   ", base model"))  # fmt: skip
    lines += ["", f"{first['model']}, {first['dtype']}, {first['prompts']} MASSIVE-style prompts of "
              f"{first['prompt_tokens'][0]}–{first['prompt_tokens'][1]} tokens of which {first['shared_prefix_tokens']} "
              f"are shared, batch {first['batch_size']}, {first['max_new_tokens']} new tokens; all variants in one run, "
              "outputs compared with the paper-style run:", "",
              "| variant | " + " | ".join("base model" if not b["adapter"] else "+ adapter (merged)" for _, b in runs)
              + " |", "|---|" + "---|" * len(runs)]  # fmt: skip
    for key, label in labels.items():
        cells = []
        for _, b in runs:
            v = b["variants"][key]
            ratio = "" if key == "paper" else f" ({v['vs_paper']:.2f}×)"
            cells.append(f"{v['tokens_per_s']:.1f} tokens/s{ratio}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| identical greedy outputs (ours vs paper) | "
        + " | ".join(f"{b['variants']['ours']['identical_to_paper']}/{b['prompts']}" for _, b in runs)
        + " |"
    )
    tokens = " and ".join(f"{b['variants']['paper']['tokens']} ({'adapter' if b['adapter'] else 'base'})"
                          for _, b in runs)  # fmt: skip
    lines += ["", f"Generated tokens in all: {tokens}."]
    return "\n".join(lines)


def block_bench_train_recipe() -> str:
    return _train_recipe("train_recipe.json")


def _train_recipe(name: str, bf16_target: float | None = None) -> str:
    b = _load(name)
    if not b:
        return _not_measured(name, "python benchmarks/train_recipe.py")
    labels = {"plain_hf": "plain HF `Trainer` + peft", "baseline": "our baseline (`--only_train_language_modeling`)",
              "alternate": "our alternate (`--alternate_training`)", "baseline_bf16": "our baseline, `--bf16 True`",
              "alternate_bf16": "our alternate, `--bf16 True`"}  # fmt: skip

    def f(x, fmt, unit=""):
        return "–" if x is None else f"{x:{fmt}}{unit}"

    lines = [f"{_bench_head(b, name)}: {b['steps']} optimizer steps per run (batch 8, gradient "
             f"accumulation 2), each run in its own process, the order rotated every round; medians over "
             f"{b['rounds']} rounds:", "",
             "| variant | train_runtime | task rows/s | task tokens/s | pair tokens/s | s / task micro-batch | "
             "s / alignment micro-batch | peak RSS |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for v in b["variants"]:
        m = b["medians"][v]
        lines.append(f"| {labels.get(v, v)} | {m['train_runtime']:.0f} s | {f(m['task_rows_per_s'], '.2f')} | "
                     f"{f(m['task_tokens_per_s'], '.1f')} | {f(m['pair_tokens_per_s'] or None, '.1f')} | "
                     f"{f(m['s_per_task_micro_batch'], '.1f')} | {f(m['s_per_align_micro_batch'], '.1f')} | "
                     f"{m['peak_rss_mb'] / 1024:.2f} GB |")  # fmt: skip
    lines.append("")
    targets = {"baseline": 0.85, "alternate": 0.55}
    for v, r in b.get("time_vs_plain_hf", {}).items():
        per = ", ".join(f"{x:.2f}" for x in r["per_round"])
        target = targets.get(v)
        verdict = (f"; target ≤ {target}×: {'met' if r['median'] <= target else 'not met'} by the median, single rounds "
                   f"{min(r['per_round']):.2f}–{max(r['per_round']):.2f}×") if target else ""  # fmt: skip
        lines.append(f"* {v} / plain HF, time per round {per} → **median {r['median']:.2f}×** (ratio of the medians "
                     f"{r['of_medians']:.2f}×), peak RSS {r['peak_rss']:.2f}×{verdict}.")  # fmt: skip
    for v, r in b.get("bf16_vs_fp32", {}).items():
        verdict = (f"; target ≤ {bf16_target}×: {'met' if r['median'] <= bf16_target else 'not met'} by the median"
                   if bf16_target else "")  # fmt: skip
        lines.append(f"* {v} bf16 / fp32, time per round {', '.join(f'{x:.2f}' for x in r['per_round'])} → median "
                     f"{r['median']:.2f}×{verdict}.")  # fmt: skip
    p = b.get("profile")
    if p:
        acc = p["alignment_micro_batch"]
        whole = acc.get("whole micro-batch (training_step)")
        parts = "; ".join(f"{k} {v:.3f} s" for k, v in acc.items() if not k.startswith("whole"))
        top = sorted(p["top_ops"], key=lambda e: -e["self_ms"])
        shares = ", ".join(f"`{e['name']}` {100 * e['self_ms'] / p['self_ms_total']:.0f}%" for e in top[:3]
                           if e["name"].startswith("aten::"))  # fmt: skip
        lines += ["", f"`--profile` (one alternate run under `torch.profiler`): an alignment micro-batch took "
                  f"{whole:.2f} s on average — {parts}. Largest shares of self CPU time over the whole run: "
                  f"{shares}."]  # fmt: skip
    return "\n".join(lines)


def block_bench_inference_procs() -> str:
    b = _load("inference_procs.json")
    if not b:
        return _not_measured("inference_procs.json", "python benchmarks/inference_procs.py")
    n = str(b["nproc"])
    rounds = len(b["seconds"]["1"])
    lines = [f"{_bench_head(b, 'inference_procs.json')}: {b['prompts']} prompts, batch {b['batch_size']}, ≤ "
             f"{b['max_new_tokens']} new tokens, wall-clock including model loading:", "",
             "| | " + " | ".join(f"round {r}" for r in range(rounds)) + " | median |", "|---|" + "---|" * (rounds + 1),
             f"| 1 process × {b['threads']} threads | " + " | ".join(f"{x:.1f} s" for x in b["seconds"]["1"])
             + f" | {b['median_seconds']['1']:.1f} s |",
             f"| {n} processes × {max(b['threads'] // b['nproc'], 1)} thread(s) | "
             + " | ".join(f"{x:.1f} s" for x in b["seconds"][n]) + f" | {b['median_seconds'][n]:.1f} s |", "",
             f"**{n} processes: {b['ratio']:.2f}× the time ({1 / b['ratio']:.2f}× the throughput); outputs "
             f"{'byte-identical to the one-process run in every round' if all(b['identical']) else 'NOT identical'}"
             ".**", "",
             ("Generation with small batches does not keep two threads busy, so splitting the work wins even on 2 "
              "cores; with more cores or GPUs the gain is the usual data-parallel one." if b["ratio"] < 1 else
              "Splitting the work did not pay on this machine in this run.")]  # fmt: skip
    return "\n".join(lines)


# ------------------------------------------------------------------ evaluation, composition (docs/results.sh)
def _massive_row(label: str, name: str) -> str | None:
    m = _load(f"massive_{name}.json")
    if not m:
        return None
    return (f"| {label} | {m['slot_f1']:.3f} | {m['slot_precision']:.3f} | {m['slot_recall']:.3f} | "
            f"{m['exact_match']:.3f} | {m['unparseable_predictions']} / {m['n']} |")  # fmt: skip


MASSIVE_HEAD = [
    "| model | slot F1 | precision | recall | exact match | unparseable predictions |",
    "|---|---|---|---|---|---|",
]


def block_massive_measured() -> str:
    rows = [_massive_row("SmolLM2-135M-Instruct, no adapter", "base"),
            _massive_row("+ the recipe's adapter (40 steps)", "adapter_40")]  # fmt: skip
    rows = [r for r in rows if r]
    if not rows:
        return "Not measured yet: `bash docs/results.sh massive` writes `fig/massive_*.json`."
    return "\n".join(MASSIVE_HEAD + rows + ["", "(`fig/massive_base.json`, `fig/massive_adapter_40.json`.)"])


def block_compose_measured() -> str:
    rows = [_massive_row("the adapter itself", "adapter_40"), _massive_row("`compose --weight 1`", "compose_whole"),
            _massive_row("`compose --weight 0.5`", "compose_half"),
            _massive_row("`compose --method svd --rank 2`", "compose_svd2")]  # fmt: skip
    rows = [r for r in rows if r]
    if len(rows) < 2:
        return "Not measured yet: `bash docs/results.sh compose` writes `fig/massive_compose_*.json`."
    same = _load("massive_compose_identical.json")
    tail = (f"`--weight 1` gives the adapter's own predictions on {same['identical']} of {same['n']} commands "
            "(`fig/massive_compose_identical.json`)." if same else "")  # fmt: skip
    return "\n".join(MASSIVE_HEAD + rows + ["", tail]).rstrip()


def block_sparse_measured() -> str:
    s = _load("sparse_smollm2.json")
    rows = [_massive_row(label, name) for label, name in
            (("full fine-tuning, lr 5e-5", "sparse_full"), ("1% of the entries retrained, lr 5e-5", "sparse_5e-5"),
             ("1% of the entries retrained, lr 1e-3", "sparse_1e-3"))]  # fmt: skip
    rows = [r for r in rows if r]
    if not s or not rows:
        return "Not measured yet: `bash docs/results.sh sparse` writes `fig/sparse_smollm2.json` and `fig/massive_sparse_*.json`."
    loss = "; ".join(f"{name} {v['first']:.2f} → {v['last']:.2f}" for name, v in s["runs"].items())
    return "\n".join(MASSIVE_HEAD + rows + [
        "", f"{s['steps']} steps of batch {s['batch_size']} per phase, constant lr; {s['kept_entries']:,} entries kept "
        f"(`--density {s['density']}`). Training loss, first → last logged step: {loss}. The task difference file is "
        f"{s['task_difference_bytes'] / 2**20:.0f} MB against {s['full_model_bytes'] / 2**20:.0f} MB for the fully "
        "fine-tuned checkpoint (`fig/sparse_smollm2.json`)."])  # fmt: skip


# ----------------------------------------------------------------------- analysis page (docs/results.sh)
def _retrieval_means(rows: list[dict]) -> dict[str, dict[int, float]]:
    """Series -> layer -> accuracy@1 averaged over every direction."""
    acc: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        acc.setdefault(r["series"], {}).setdefault(r["layer"], []).append(r["accuracy"])
    return {s: {k: fmean(v) for k, v in sorted(layers.items())} for s, layers in acc.items()}


def _retrieval_shape(rows: list[dict]) -> tuple[int, int]:
    langs = {r["source"] for r in rows}
    return len(langs), len(langs) * (len(langs) - 1)


def block_retrieval_smollm2() -> str:
    rows = _load("retrieval_smollm2.json")
    if not rows:
        return "Not measured yet: `bash docs/results.sh retrieval` writes `fig/retrieval_smollm2.json`."
    means = _retrieval_means(rows)
    base = means["base"]
    last = max(base)
    show = sorted({0, last // 2, last, *range(0, last + 1, 5), max(base, key=base.get)})
    n_langs, n_dirs = _retrieval_shape(rows)
    lines = [f"Mean accuracy@1 over all {n_dirs} directions of {n_langs} languages, `mean_skip_first` pooling "
             "(`fig/retrieval_smollm2.json`):", "",
             "| series | " + " | ".join(f"layer {k}" for k in show) + " | best layer |", "|---|" + "---|" * (len(show) + 1)]  # fmt: skip
    for series, m in means.items():
        best = max(m, key=m.get)
        lines.append(f"| {series} | " + " | ".join(f"{m[k]:.2f}" for k in show) + f" | {best} ({m[best]:.2f}) |")
    for series, m in means.items():
        if series == "base":
            continue
        lift = {k: m[k] - base[k] for k in m}
        top = max(lift, key=lift.get)
        lines.append(f"\n{series}: above the base model at {sum(v > 0 for v in lift.values())} of {len(lift)} layers, "
                     f"most at layer {top} ({_signed(lift[top])} points of accuracy@1, in %).")  # fmt: skip
    plain = _load("retrieval_smollm2_mean_pooling.json")
    if plain:
        pm = _retrieval_means(plain)["base"]
        best = max(pm, key=pm.get)
        lines.append(f"\nWith the paper's plain `mean` pooling (`fig/retrieval_smollm2_mean_pooling.json`) the base "
                     f"curve runs {min(pm.values()):.2f}–{max(pm.values()):.2f}, best at layer {best}; with "
                     f"`mean_skip_first` {min(base.values()):.2f}–{max(base.values()):.2f}, best at layer "
                     f"{max(base, key=base.get)}.")  # fmt: skip
    return "\n".join(lines)


def block_subspaces_smollm2() -> str:
    rows = _load("subspaces_smollm2.json")
    if not rows:
        return "Not measured yet: `bash docs/results.sh subspaces` writes `fig/subspaces_smollm2.json`."
    rows = [r for r in rows if r["series"] == rows[0]["series"]]
    layers = sorted({r["layer"] for r in rows})
    langs = list(dict.fromkeys(r["language"] for r in rows))
    at = {(r["layer"], r["language"]): r for r in rows}

    def mean_of(key, k):
        return fmean(at[k, lang][key] for lang in langs)

    lines = ["| layer | " + " | ".join(map(str, layers)) + " |", "|---|" + "---|" * len(layers),
             f"| k ({'/'.join(langs)}) | " + " | ".join("/".join(str(at[k, lang]["k"]) for lang in langs)
                                                      for k in layers) + " |"]  # fmt: skip
    for key, label in (("ratio_own", "ratio own"), ("ratio_other", "ratio other"), ("ratio_shifted", "ratio shifted")):
        lines.append(f"| {label} | " + " | ".join(f"{mean_of(key, k):.3g}" for k in layers) + " |")
    close = [k for k in layers if abs(mean_of("ratio_shifted", k) / mean_of("ratio_own", k) - 1) < 0.05]
    others = [mean_of("ratio_other", k) for k in layers]
    ones = sorted({lang for (k, lang), r in at.items() if r["k"] == 1})
    lines += ["", f"(`fig/subspaces_smollm2.json`; ratios are means over the {len(langs)} languages.) Another "
              f"language's subspace multiplies perplexity by {min(others):.3g}–{max(others):.3g}; moved to the "
              f"language's own mean it is within 5% of the language's own subspace at layers "
              f"{', '.join(map(str, close)) or 'none'}. k = 1 (one direction carries the variance share) occurs for "
              f"{', '.join(ones) or 'no language'}."]  # fmt: skip
    return "\n".join(lines)


def block_facts_smollm2() -> str:
    f = _load("facts_smollm2.json")
    if not f:
        return "Not measured yet: `bash docs/results.sh facts` writes `fig/facts_smollm2.json`."
    series = f["series"]
    langs = list(next(iter(series.values()))["languages"])
    lines = [f"Accuracy@1 per language, {next(iter(series.values()))['n_facts']} facts, `--reduce {f['reduce']}` "
             "(`fig/facts_smollm2.json`):", "",
             "| series | " + " | ".join(langs) + " | mean RankC | mean top-1 agreement |",
             "|---|" + "---|" * (len(langs) + 2)]  # fmt: skip
    for label, s in series.items():
        agree = fmean(v["top1_agreement"] for v in s["pairs"].values())
        lines.append(f"| {label} | " + " | ".join(f"{s['languages'][lang]['accuracy']:.2f}" for lang in langs)
                     + f" | {s['mean_rankc']:.3f} | {agree:.3f} |")  # fmt: skip
    return "\n".join(lines)


def block_pooling_smollm2() -> str:
    runs = {p: _load(f) for p, f in (("mean", "retrieval_smollm2_mean_pooling.json"),
                                     ("mean_skip_first", "retrieval_smollm2.json"))}  # fmt: skip
    if not all(runs.values()):
        return "Not measured yet: `bash docs/results.sh retrieval` writes `fig/retrieval_smollm2*.json`."
    means = {p: _retrieval_means(rows)["base"] for p, rows in runs.items()}
    last = max(means["mean"])
    show = [0, last // 2, last]
    n_langs, n_dirs = _retrieval_shape(runs["mean"])
    lines = [f"Base SmolLM2, held-out retrieval accuracy@1 averaged over the {n_dirs} directions of {n_langs} "
             "languages (`fig/retrieval_smollm2_mean_pooling.json`, `fig/retrieval_smollm2.json`):", "",
             "| pooling | " + " | ".join("embeddings" if k == 0 else f"layer {k}" for k in show) + " | best layer |",
             "|---|" + "---|" * (len(show) + 1)]  # fmt: skip
    for p, m in means.items():
        best = max(m, key=m.get)
        lines.append(f"| `{p}` | " + " | ".join(f"{m[k]:.2f}" for k in show) + f" | {best} ({m[best]:.2f}) |")
    return "\n".join(lines)


# --------------------------------------------------------------------- synthetic transfer (midalign experiment transfer)
def _transfer_layer(t: dict) -> int:
    return t["config"]["align_layer"] or t["config"]["layers"] // 2


def _transfer_rows(t: dict, methods=None, label=None) -> list[str]:
    cfg, out = t["config"], []
    langs = [cfg["source"], *cfg["targets"]]
    at = {(r["method"], r["language"]): r for r in t["summary"]}
    for m in dict.fromkeys(r["method"] for r in t["summary"]):
        if methods and m not in methods:
            continue
        name = label or (f"{m} (alternate, layer {_transfer_layer(t)})" if m == "alignment" else m)
        out.append(f"| {name} | " + " | ".join(f"{at[m, lang]['f1_mean']:.3f} ± {at[m, lang]['f1_std']:.3f}"
                                              for lang in langs) + " |")  # fmt: skip
    return out


def _transfer_seeds(t: dict, method: str) -> str:
    cfg = t["config"]
    runs = sorted((r for r in t["runs"] if r["method"] == method), key=lambda r: r["seed"])
    return "; ".join(f"seed {r['seed']} " + "/".join(f"{r['f1'][x]:.3f}" for x in cfg["targets"]) for r in runs)


def _transfer_retrieval(t: dict, method: str) -> tuple[float, float]:
    layer = _transfer_layer(t)
    vals = [
        r["retrieval_by_layer"][x][layer] for r in t["runs"] if r["method"] == method for x in t["config"]["targets"]
    ]
    return min(vals), max(vals)


def _transfer_compare(t: dict, a: str, b: str) -> list[bool]:
    """Per (seed, target): is ``a``'s F1 above ``b``'s?"""
    runs = {(r["seed"], r["method"]): r for r in t["runs"]}
    seeds = sorted({r["seed"] for r in t["runs"]})
    return [runs[s, a]["f1"][x] > runs[s, b]["f1"][x] for s in seeds for x in t["config"]["targets"]
            if (s, a) in runs and (s, b) in runs]  # fmt: skip


def block_transfer() -> str:
    t = _load("transfer.json")
    if not t:
        return "Not run yet: `midalign experiment transfer --fig-dir fig` writes `fig/transfer.json`."
    cfg = t["config"]
    langs = [cfg["source"], *cfg["targets"]]
    l1 = _load("transfer_layer1.json")
    lines = [f"`midalign experiment transfer` (`fig/transfer.json`; seeds {', '.join(map(str, cfg['seeds']))}, "
             f"{cfg['layers']}-layer model, {cfg['finetune_steps']} task steps for the baseline"
             + (", and `--layer 1 --no-long-baseline` in `fig/transfer_layer1.json`" if l1 else "")
             + "). Zero-shot F1, mean ± sd over seeds:", "",
             "| method | " + " | ".join(f"{x} (source)" if x == cfg["source"] else x for x in langs) + " |",
             "|---|" + "---|" * len(langs), *_transfer_rows(t)]  # fmt: skip
    if l1:
        lines += _transfer_rows(l1, ["alignment"], f"alignment at layer {_transfer_layer(l1)} (`--alignment-layer 1`)")
    lines += ["", f"Per seed, alignment's target F1 ({'/'.join(cfg['targets'])}): layer {_transfer_layer(t)}: "
              f"{_transfer_seeds(t, 'alignment')}"
              + (f"; layer {_transfer_layer(l1)}: {_transfer_seeds(l1, 'alignment')}" if l1 else "") + "."]  # fmt: skip
    if l1:
        same = all(a["f1"] == b["f1"] for a in t["runs"] for b in l1["runs"]
                   if a["method"] == b["method"] == "baseline" and a["seed"] == b["seed"])  # fmt: skip
        lines.append(
            f"(The layer-1 run retrains its own baselines: "
            f"{'identical to the default run' if same else 'NOT identical to the default run'}.)"
        )
    ref = "baseline_2x" if any(r["method"] == "baseline_2x" for r in t["runs"]) else "baseline"
    wins = _transfer_compare(t, "alignment", ref)
    # older results files predate the "paired" field: the same library function on their per-seed rows
    from midalign.experiments.transfer import paired

    pair = t.get("paired") or paired(t["runs"], list(cfg["targets"]), ref=ref)
    per = "; ".join(f"{x} {100 * v['mean']:+.1f} [{100 * v['low']:+.1f}, {100 * v['high']:+.1f}]"
                    for x, v in pair["targets"].items() if v["low"] is not None)  # fmt: skip
    lines += ["", f"Paired, alignment − `{ref}` in F1 points with the 95% seed-level t-interval over "
              f"{len(pair['seeds'])} seeds (the primary interval; targets are fixed effects): {pair['verdict']}; per "
              f"target: {per}." + (f" {pair['caveat']}." if pair.get("caveat") else "")]  # fmt: skip
    lo_b, hi_b = _transfer_retrieval(t, ref)
    lo_a, hi_a = _transfer_retrieval(t, "alignment")
    lines += ["", f"Alignment above `{ref}` on {sum(wins)} of {len(wins)} (seed, target language) pairs. Held-out "
              f"retrieval ({cfg['heldout_pairs']} candidates, chance {1 / cfg['heldout_pairs']:.2f}) at layer "
              f"{_transfer_layer(t)}: {lo_b:.2f}–{hi_b:.2f} after `{ref}`, {lo_a:.2f}–{hi_a:.2f} after alignment "
              "(over seeds and target languages)."]  # fmt: skip
    minutes = sum(r["seconds"] for r in t["runs"] + (l1["runs"] if l1 else [])) / 60
    lines.append(f"Fine-tuning and evaluation summed over these runs: {minutes:.0f} min (pretraining not included).")
    return "\n".join(lines)


def block_transfer_input() -> str:
    t = _load("transfer_answer_input.json")
    if not t:
        return ("Not run yet: `midalign experiment transfer --answer input --name transfer_answer_input --fig-dir fig`"
                " writes `fig/transfer_answer_input.json`.")  # fmt: skip
    cfg = t["config"]
    langs = [cfg["source"], *cfg["targets"]]
    lo, hi = _transfer_retrieval(t, "alignment")
    return "\n".join(["`midalign experiment transfer --answer input --name transfer_answer_input` "
                      "(`fig/transfer_answer_input.json`), span slot F1, mean ± sd over seeds:", "",
                      "| method | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs), *_transfer_rows(t), "",
                      f"Held-out retrieval at layer {_transfer_layer(t)} after alignment: {lo:.2f}–{hi:.2f}."])  # fmt: skip


PAGES = {
    "remedies.md": render_remedies,
    "experiment-sib200.md": render_sib200,
    "experiment-sib200-powered.md": render_sib200_powered,
    "bf16.md": render_bf16,
}
# Blocks between "<!-- BEGIN rendered:NAME -->" and "<!-- END rendered:NAME -->" in hand-written files
BLOCKS = {
    "diagnosis": block_diagnosis,
    "demo": block_demo,
    "headline": block_headline,
    "xsid_withdrawn": block_xsid_withdrawn,
    "vllm": block_vllm,
    "bench_alignment_step": block_bench_alignment_step,
    "bench_task_loss": block_bench_task_loss,
    "bench_inference": block_bench_inference,
    "bench_scoring": block_bench_scoring,
    "bench_train_recipe": block_bench_train_recipe,
    "bench_inference_procs": block_bench_inference_procs,
    "massive_measured": block_massive_measured,
    "compose_measured": block_compose_measured,
    "retrieval_smollm2": block_retrieval_smollm2,
    "subspaces_smollm2": block_subspaces_smollm2,
    "facts_smollm2": block_facts_smollm2,
    "pooling_smollm2": block_pooling_smollm2,
    "sparse_measured": block_sparse_measured,
    "transfer": block_transfer,
    "transfer_input": block_transfer_input,
}
# every hand-written page may hold rendered blocks
BLOCK_FILES = (ROOT / "README.md", *sorted(p for p in DOCS.glob("*.md") if p.name not in PAGES))


def _with_blocks(text: str) -> str:
    import re

    def fill(m):
        name = m.group(2)
        if name.startswith("md_"):  # an experiment's own table (fig/<name>.md), verbatim
            body = (FIG / f"{name[3:]}.md").read_text(encoding="utf-8").rstrip("\n")
        else:
            body = BLOCKS[name]()
        return f"{m.group(1)}\n{body}\n{m.group(3)}"

    pattern = r"(<!-- BEGIN rendered:(\w+)[^>]*-->)\n.*?\n?(<!-- END rendered:\2 -->)"
    return re.sub(pattern, fill, text, flags=re.S)


def main(argv: list[str]) -> int:
    stale = []
    outputs = {DOCS / name: fn() for name, fn in PAGES.items()}
    for path in BLOCK_FILES:
        outputs[path] = _with_blocks(path.read_text(encoding="utf-8"))
    for path, text in outputs.items():
        name = path.relative_to(ROOT)
        if "--check" in argv:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(name))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale docs pages (run `python docs/render.py`): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
