"""Statistics an experiment reports, with the seed as the unit of replication.

A paired difference between two arms is first reduced to one number per seed (the mean over that seed's items and
languages); the primary interval is a Student t-interval over those per-seed numbers, because the seeds are what was
randomized (LoRA init, data order, language roles). A bootstrap that resamples seeds and, jointly across languages,
the items (one parallel sentence in 12 languages is one item, not 12) is reported beside it as a sensitivity check.
Languages are fixed effects: the intervals say nothing about languages that were not evaluated.

Correlations over a handful of languages carry a Fisher interval, a rank correlation and a leave-one-out range.

Pure Python (no SciPy): the t quantile inverts the regularized incomplete beta function, exact to ~1e-10.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence

__all__ = [
    "t_quantile",
    "t_interval",
    "paired_seed_interval",
    "cluster_bootstrap",
    "fisher_interval",
    "spearman",
    "correlation_summary",
    "correlation_line",
    "verdict",
    "seed_caveat",
    "FEW_SEEDS",
]

# Below this many seeds an interval is dominated by the seed variance estimate (t(2) = 4.30, t(4) = 2.78).
FEW_SEEDS = 5


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``t_quantile(0.975, 2)`` = 4.3027)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t quantile: p must be in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"t quantile: degrees of freedom must be > 0, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def t_interval(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean of ``values`` (one per seed) with its Student t-interval.

    Returns:
        ``{"mean", "low", "high", "half_width", "sd", "n", "df", "level", "method": "t"}``; with one value the
        interval is undefined (``low``/``high``/``half_width`` None).
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("t interval: no values")
    if any(not math.isfinite(v) for v in values):
        raise ValueError(f"t interval: non-finite value in {values}")
    n = len(values)
    mean = statistics.fmean(values)
    out = {"mean": mean, "n": n, "df": n - 1, "level": level, "method": "t", "low": None, "high": None}
    if n < 2:
        return {**out, "half_width": None, "sd": None}
    sd = statistics.stdev(values)
    half = t_quantile(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n)
    return {**out, "low": mean - half, "high": mean + half, "half_width": half, "sd": sd}


def paired_seed_interval(a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95) -> dict:
    """``a - b`` per seed (``{seed: per-seed mean}`` on both sides, the same seeds), then :func:`t_interval`.

    The returned dict adds ``"seeds"`` and ``"per_seed"`` (the differences, in seed order)."""
    if sorted(a) != sorted(b):
        raise ValueError(f"paired difference needs the same seeds on both sides; got {sorted(a)} and {sorted(b)}")
    seeds = sorted(a)
    diffs = [a[s] - b[s] for s in seeds]
    return {**t_interval(diffs, level), "seeds": seeds, "per_seed": diffs}


def cluster_bootstrap(
    values: Mapping[int, Mapping[str, Mapping[str, float]]],
    *,
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    strata: Mapping[int, str] | None = None,
) -> dict:
    """Percentile bootstrap of the mean over seeds of the mean over languages of the mean over items, resampling
    seeds and items with replacement, where an item is a *cluster*: one drawn item id counts in every language at
    once (a parallel sentence is one unit of evidence, not one per language).

    Args:
        values: ``{seed: {lang: {item_id: value}}}`` (e.g. paired per-item differences); every seed must hold the
            same languages and every language the same item ids in every seed.
        strata: ``{seed: stratum}``: seeds are drawn within their stratum, each stratum keeping its count (e.g. the
            even and odd seeds of a design whose role assignment alternates), so no resample tilts towards one.
    Returns:
        ``{"mean", "low", "high", "level", "method": "cluster bootstrap", "resamples", "n_clusters"}``.
    """
    seeds = sorted(values)
    if not seeds:
        raise ValueError("cluster bootstrap: no seeds")
    langs = sorted(values[seeds[0]])
    ids = sorted({i for lang in langs for i in values[seeds[0]][lang]})
    for s in seeds:
        if sorted(values[s]) != langs:
            raise ValueError(f"cluster bootstrap: seed {s} has languages {sorted(values[s])}, expected {langs}")
        for lang in langs:
            if sorted(values[s][lang]) != sorted(values[seeds[0]][lang]):
                raise ValueError(f"cluster bootstrap: seed {s}, {lang}: other item ids than seed {seeds[0]}")
    if not ids:
        raise ValueError("cluster bootstrap: no items")

    def stat(drawn_seeds: list[int], drawn_ids: list[str]) -> float:
        per_seed = []
        for s in drawn_seeds:
            per_lang = []
            for lang in langs:
                got = [values[s][lang][i] for i in drawn_ids if i in values[s][lang]]
                if got:
                    per_lang.append(sum(got) / len(got))
            per_seed.append(sum(per_lang) / len(per_lang) if per_lang else 0.0)
        return sum(per_seed) / len(per_seed)

    point = stat(seeds, ids)
    rng = random.Random(seed)
    groups = {}
    for s in seeds:
        groups.setdefault((strata or {}).get(s, ""), []).append(s)
    if strata is not None and set(seeds) - set(strata):
        raise ValueError(f"cluster bootstrap: seeds {sorted(set(seeds) - set(strata))} have no stratum")

    def draw_seeds() -> list[int]:
        return [g[rng.randrange(len(g))] for g in groups.values() for _ in g]

    stats = sorted(stat(draw_seeds(), [ids[rng.randrange(len(ids))] for _ in ids]) for _ in range(resamples))
    alpha = (1 - level) / 2

    def pct(q: float) -> float:
        return stats[min(max(int(round(q * (len(stats) - 1))), 0), len(stats) - 1)]

    return {"mean": point, "low": pct(alpha), "high": pct(1 - alpha), "level": level,
            "method": "cluster bootstrap" + (" (seeds stratified)" if strata is not None else ""),
            "resamples": resamples, "n_clusters": len(ids)}  # fmt: skip


def fisher_interval(r: float, n: int, level: float = 0.95) -> list[float] | None:
    """Fisher z interval of a Pearson ``r`` over ``n`` pairs (None when ``n < 4`` or ``|r| = 1``)."""
    if n < 4 or abs(r) >= 1:
        return None
    z, se = math.atanh(r), 1 / math.sqrt(n - 3)
    q = statistics.NormalDist().inv_cdf(1 - (1 - level) / 2)
    return [math.tanh(z - q * se), math.tanh(z + q * se)]


def _ranks(x: Sequence[float]) -> list[float]:
    order = sorted(range(len(x)), key=lambda i: x[i])
    ranks = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or statistics.pstdev(x) == 0 or statistics.pstdev(y) == 0:
        return None
    return statistics.correlation(x, y)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get their mean rank); None when undefined."""
    return _pearson(_ranks(x), _ranks(y))


def correlation_summary(x: Sequence[float], y: Sequence[float], names: Sequence[str], level: float = 0.95) -> dict:
    """Pearson r over the languages ``names`` with its Fisher interval, Spearman's rho, and the range of r when one
    language is left out (with the language whose removal moves r most)."""
    if not len(x) == len(y) == len(names):
        raise ValueError("correlation: x, y and names need the same length")
    r = _pearson(x, y)
    out = {"n": len(x), "pearson": r, "fisher_interval": fisher_interval(r, len(x), level) if r is not None else None,
           "spearman": spearman(x, y), "leave_one_out": None}  # fmt: skip
    if r is not None and len(x) >= 4:
        loo = {}
        for i, name in enumerate(names):
            rest = [j for j in range(len(x)) if j != i]
            loo[name] = _pearson([x[j] for j in rest], [y[j] for j in rest])
        finite = {k: v for k, v in loo.items() if v is not None}
        if finite:
            most = max(finite, key=lambda k: abs(finite[k] - r))
            out["leave_one_out"] = {"min": min(finite.values()), "max": max(finite.values()), "most_influential": most,
                                    "r_without_it": finite[most]}  # fmt: skip
    return out


def correlation_line(c: Mapping) -> str:
    """One line from :func:`correlation_summary`: r with its Fisher interval, rho, and the leave-one-out range."""
    if c.get("pearson") is None:
        return f"r undefined over {c['n']} languages"
    fi = c.get("fisher_interval")
    line = f"r = {c['pearson']:.2f}" + (f" [{fi[0]:.2f}, {fi[1]:.2f}]" if fi else " (no interval)")
    line += f", Spearman rho = {c['spearman']:.2f}" if c.get("spearman") is not None else ""
    loo = c.get("leave_one_out")
    if loo:
        line += (f"; leaving one language out: {loo['min']:.2f} to {loo['max']:.2f} (without "
                 f"{loo['most_influential']}: {loo['r_without_it']:.2f})")  # fmt: skip
    return line + f"; {c['n']} languages"


def verdict(interval: Mapping, *, unit: str = "points", scale: float = 100.0, what: str = "") -> str:
    """One sentence from a paired interval (``mean``, ``low``, ``high``): "higher by X [a, b]" / "lower by X [a, b]"
    only when the interval excludes 0, else "no difference beyond noise". ``scale`` turns fractions into points."""
    mean, low, high = interval["mean"], interval.get("low"), interval.get("high")
    prefix = f"{what}: " if what else ""
    if low is None or high is None:
        return f"{prefix}{scale * mean:+.1f} {unit} from one seed: no interval"
    span = f"[{scale * low:+.1f}, {scale * high:+.1f}]"
    if low > 0:
        return f"{prefix}higher by {scale * mean:.1f} {unit} {span}"
    if high < 0:
        return f"{prefix}lower by {scale * -mean:.1f} {unit} {span}"
    return f"{prefix}no difference beyond noise ({scale * mean:+.1f} {unit} {span})"


def seed_caveat(n_seeds: int) -> str | None:
    """The sentence a page prints beside intervals from fewer than :data:`FEW_SEEDS` seeds (None otherwise)."""
    if n_seeds >= FEW_SEEDS:
        return None
    return (
        f"With {n_seeds} seed{'s' if n_seeds != 1 else ''} the interval is dominated by the seed variance estimate "
        f"(t quantile {t_quantile(0.975, n_seeds - 1):.2f} on {n_seeds - 1} degrees of freedom)"
        if n_seeds >= 2
        else "One seed: no interval can be given."
    )
