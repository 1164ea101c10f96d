"""README and quick start: the headline list and the demo report."""

from __future__ import annotations

from .common import _load, _pct, block
from .powered import block_sib200_powered_headline
from .remedies import _control_rows


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


@block("demo")
def block_demo() -> str:
    demo = _load("demo.json")
    if not demo:
        return "Not run yet: `make demo-results` writes `fig/demo.json`, which this table is rendered from."
    return "\n".join(_demo_table(demo))


@block("headline")
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


# ------------------------------------------------------------------ experiment pages: per-seed paired readings
