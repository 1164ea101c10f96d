"""Synthetic transfer page: per-method F1, seed-level comparisons and retrieval by layer."""

from __future__ import annotations

from .common import _load, block


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


@block("transfer")
def block_transfer() -> str:
    t = _load("transfer.json")
    if not t:
        return "Not run yet: `midalign experiment transfer --fig-dir fig` writes `fig/transfer.json`."
    cfg = t["config"]
    langs = [cfg["source"], *cfg["targets"]]
    l1 = _load("transfer_layer1.json")
    lines = [f"`midalign experiment transfer` (`fig/transfer.json`; seeds {', '.join(map(str, cfg['seeds']))}, "
             f"{cfg['layers']}-layer model, {cfg['finetune_steps']} task steps for the baseline"
             + (", and `--alignment-layer 1 --no-long-baseline` in `fig/transfer_layer1.json`" if l1 else "")
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


@block("transfer_input")
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
