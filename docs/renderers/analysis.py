"""Representation analysis pages: layer-wise retrieval, subspaces, fact probing and pooling (SmolLM2 results files)."""

from __future__ import annotations

from statistics import fmean

from .common import _load, _signed, block


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


@block("retrieval_smollm2")
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


@block("subspaces_smollm2")
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


@block("facts_smollm2")
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


@block("pooling_smollm2")
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
