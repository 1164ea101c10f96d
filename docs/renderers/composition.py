"""Evaluation and Composition pages: MASSIVE scores of adapters, composed adapters and sparse differences."""

from __future__ import annotations

from .common import _load, block


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


@block("massive_measured")
def block_massive_measured() -> str:
    rows = [_massive_row("SmolLM2-135M-Instruct, no adapter", "base"),
            _massive_row("+ the recipe's adapter (40 steps)", "adapter_40")]  # fmt: skip
    rows = [r for r in rows if r]
    if not rows:
        return "Not measured yet: `bash docs/results.sh massive` writes `fig/massive_*.json`."
    return "\n".join(MASSIVE_HEAD + rows + ["", "(`fig/massive_base.json`, `fig/massive_adapter_40.json`.)"])


@block("compose_measured")
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


@block("sparse_measured")
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
