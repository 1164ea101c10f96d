"""Figures for the analyses (matplotlib, Agg backend; PNG)."""

from __future__ import annotations

from collections import defaultdict

__all__ = ["plot_anisotropy", "plot_retrieval", "plot_subspaces"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_by(rows, key, value):
    acc = defaultdict(list)
    for r in rows:
        acc[r[key]].append(r[value])
    xs = sorted(acc)
    return xs, [sum(acc[x]) / len(acc[x]) for x in xs]


def plot_retrieval(series: dict[str, list[dict]], path: str, per_direction: bool = False, title: str = "") -> None:
    """Accuracy@1 vs layer: one line per series (averaged over directions), or per direction when asked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rows in series.items():
        if per_direction:
            for src, tgt in sorted({(r["source"], r["target"]) for r in rows}):
                sub = [r for r in rows if (r["source"], r["target"]) == (src, tgt)]
                xs, ys = _mean_by(sub, "layer", "accuracy")
                ax.plot(xs, ys, lw=1, alpha=0.7, label=f"{label} {src}->{tgt}")
        xs, ys = _mean_by(rows, "layer", "accuracy")
        ax.plot(xs, ys, lw=2.5, marker="o", ms=3, label=f"{label} (mean)")
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("retrieval accuracy@1")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Cross-lingual sentence retrieval by layer")
    ax.legend(fontsize=7, ncol=2 if per_direction else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_subspaces(rows: list[dict], path: str, title: str = "") -> None:
    """Perplexity ratios (own / other / shifted subspace, mean over languages) and k by layer."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (
        ("ratio_own", "own subspace"),
        ("ratio_other", "other language's subspace"),
        ("ratio_shifted", "other's subspace, own mean"),
    ):
        if any(key in r for r in rows):
            xs, ys = _mean_by([r for r in rows if key in r], "layer", key)
            ax.plot(xs, ys, marker="o", ms=3, label=label)
    ax.set_yscale("log")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xlabel("layer")
    ax.set_ylabel("perplexity ratio (projected / original)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for lang in sorted({r["language"] for r in rows}):
        xs, ys = _mean_by([r for r in rows if r["language"] == lang], "layer", "k")
        ax2.plot(xs, ys, marker=".", label=lang)
    ax2.set_xlabel("layer")
    ax2.set_ylabel("subspace dimension k")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.suptitle(title or "Affine language subspaces")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_anisotropy(series: dict[str, list[dict]], path: str, title: str = "") -> None:
    """Per layer: pair vs unrelated cosine (raw, centered), and InfoNCE at initialisation vs ln B."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    for label, rows in series.items():
        xs = [r["layer"] for r in rows]
        ax.plot(xs, [r["pair_cos"] for r in rows], "-", label=f"{label}: pairs")
        ax.plot(xs, [r["unrelated_cos"] for r in rows], "--", label=f"{label}: unrelated")
        ax.plot(xs, [r["centered_pair_cos"] for r in rows], "-", marker=".", label=f"{label}: pairs, centered")
        ax.plot(xs, [r["centered_unrelated_cos"] for r in rows], ":", label=f"{label}: unrelated, centered")
        ax2.plot(xs, [r["infonce_init"] for r in rows], "-", label=f"{label}: paper loss")
        ax2.plot(xs, [r["infonce_init_centered"] for r in rows], "-", marker=".", label=f"{label}: centered")
    if series:
        first = next(iter(series.values()))
        ax2.axhline(first[0]["chance"], color="grey", ls=":", label="chance ln B")
    ax.set_xlabel("layer")
    ax.set_ylabel("mean cosine")
    ax.set_title(f"Cosine of pooled outputs ({title})")
    ax.legend(fontsize=7)
    ax2.set_xlabel("layer")
    ax2.set_ylabel("InfoNCE at initialisation")
    ax2.set_title("Alignment loss before training")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
