"""The Benchmarks and bf16 pages: each block reads one benchmark's results file and judges its target from it."""

from __future__ import annotations

from .common import _bench_head, _load, _not_measured, _pct, block


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


@block("vllm")
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


@block("bf16_matmul")
def block_bf16_matmul() -> str:
    """bf16 vs float32 matmul on this CPU (fig/bf16_matmul.json)."""
    mm = _load("bf16_matmul.json")
    if not mm:
        return _not_measured("bf16_matmul.json", "python benchmarks/bf16.py --matmul-only")
    return "\n".join(["```bash", "python benchmarks/bf16.py --matmul-only", "```", "",
                      f"{mm['cpu']}, torch {mm['torch']}, {mm['threads']} thread(s), {mm['rounds']} interleaved "
                      "rounds, medians (`fig/bf16_matmul.json`):", "",
                      "| matmul | float32 | bfloat16 | ratio |", "|---|---|---|---|", *_matmul_rows(mm["matmul"])])  # fmt: skip


@block("bf16_units")
def block_bf16_units() -> str:
    """One section per kind of bf16 unit measured (BF16_FILES)."""
    files = [(name, _load(name)) for name in BF16_FILES]
    files = [(name, b) for name, b in files if b]
    if not files:
        return "Not measured yet."
    lines = []
    for name, b in files:
        lines += _bf16_section(name, b)
    return "\n".join(lines).strip()


@block("bf16_train_recipe")
def block_bf16_train_recipe() -> str:
    """The training recipe in bf16 against float32 (fig/train_recipe_bf16.json), judged against 0.6x."""
    return _train_recipe("train_recipe_bf16.json", 0.6)


@block("bench_alignment_step")
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


@block("bench_task_loss")
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


@block("bench_scoring")
def block_bench_scoring() -> str:
    b = _load("scoring.json")
    if not b:
        return _not_measured("scoring.json", "python benchmarks/scoring.py")
    out = _bench_scoring_rows(b)
    for name in ("scoring_bf16.json", "scoring_vllm.json"):
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
             f"sentences x {b['labels']} labels, batch {b['batch_size']}, {b.get('rounds_done', b['rounds'])} interleaved "
             "rounds, median "
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
        vllm = v.get(f"vllm/{form}")
        if vllm:
            ratios = sorted(x / y for x, y in zip(b["seconds"][f"vllm/{form}"], b["seconds"][f"ours/{form}"]))
            lines += ["", f"`{form}` labels: vLLM {b.get('vllm', '')} takes {vllm['time_over_ours']:.1f}x midalign's "
                      f"median time (per-round ratios {ratios[0]:.1f}-{ratios[-1]:.1f} over {len(ratios)} rounds); "
                      f"predictions identical on {_pct(vllm['identical_predictions'])}% of the {b['n']} sentences, "
                      f"log-likelihoods within {vllm['max_abs_loglik_diff']:.1e}."]  # fmt: skip
    if any(n.startswith("vllm/") for n in v):
        bind = (b.get("vllm_env") or {}).get("VLLM_CPU_OMP_THREADS_BIND")
        lines += ["", "vLLM scores by its prompt log-probabilities of prompt + label, one request per sentence and "
                  "label; asking for prompt log-probabilities turns its prefix cache off, so every request recomputes "
                  "its whole prompt, system prompt included, and the LM head runs at every position: the ratio "
                  "measures the method as much as the kernels. The engine's start-up is excluded. "
                  + (f"vLLM computed on the cores `{bind}` (`VLLM_CPU_OMP_THREADS_BIND`), ours on "
                     f"{b['threads']} thread(s)." if bind else
                     "**Not a same-threads comparison**: this run did not set vLLM's thread binding, and vLLM's CPU "
                     "backend chooses its own (on 2 cores it reserves one for its scheduler), while ours used "
                     f"{b['threads']} thread(s); rerun to compare speeds.")]  # fmt: skip
    if max(b["load_average_before"][0], b["load_average_after"][0]) > 0.75 * b["threads"]:
        lines += ["", "Other work shared the cores during this run (load average above the threads it used): read its "
                  "ratios, measured side by side in interleaved rounds, not its speeds."]  # fmt: skip
    done = b.get("rounds_done", b["rounds"])
    if done < b["rounds"]:
        lines += ["", f"The run was cut short after {done} of its {b['rounds']} rounds; the medians are of those."]
    return "\n".join(lines)


@block("bench_inference")
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


@block("bench_train_recipe")
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


@block("bench_inference_procs")
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
