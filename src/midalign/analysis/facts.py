"""Cross-lingual fact probing: does the model know the same facts in every language, and rank the candidates the
same way?

Input (JSON lines, e.g. ``data_example/facts.jsonl``): one fact per row, ``{"id", "relation", "answer": i,
"sentences": {lang: [sentence with candidate 0, sentence with candidate 1, ...]}}`` — candidate ``i`` is the same
entity in every language, and each language writes its own sentences (inflection, word order, script). A model's
preference for candidate ``i`` in language ``l`` is the log-likelihood of the whole sentence (``sum``, default, or
``mean`` per token): the subject and the template are shared by the candidates, so the ranking is decided by the
object and its agreement with the context (the "full-sentence scoring" of multilingual LAMA-style probes).

Reported per language: accuracy@1 (the right candidate ranks first) and MRR; per language pair: top-1 agreement
(the same candidate ranks first, right or wrong) and RankC (Qi, Fernández & Bisazza, 2023: consistency of the two
rankings, Σ_j w_j · |top_j(l) ∩ top_j(l')| / j with w_j ∝ e^{N-j}; 1 = identical rankings).
"""

from __future__ import annotations

import itertools
import math

import torch

__all__ = ["load_facts", "sentence_logprobs", "rankc", "probe_facts"]


def load_facts(path: str, langs: list[str] | None = None) -> list[dict]:
    """Rows of a facts file, checked: every language has one sentence per candidate; ``answer`` indexes them."""
    from ..data.jsonl import json_lines

    rows = []
    for where, row in json_lines(path):
        sentences = row.get("sentences")
        if not isinstance(sentences, dict) or not sentences:
            raise ValueError(f"{where}: needs 'sentences': {{lang: [one sentence per candidate]}}")
        sizes = {lang: len(v) for lang, v in sentences.items() if isinstance(v, list)}
        if len(sizes) != len(sentences) or len(set(sizes.values())) != 1 or min(sizes.values()) < 2:
            raise ValueError(
                f"{where}: every language needs the same number (>= 2) of candidate sentences; got {sizes}"
            )
        answer = row.get("answer")
        if not isinstance(answer, int) or not 0 <= answer < min(sizes.values()):
            raise ValueError(
                f"{where}: 'answer' must index the candidates (0..{min(sizes.values()) - 1}), got {answer!r}"
            )
        if langs:
            missing = [lang for lang in langs if lang not in sentences]
            if missing:
                raise ValueError(f"{where}: no sentences for {missing} (has {sorted(sentences)})")
            row = {**row, "sentences": {lang: sentences[lang] for lang in langs}}
        row.setdefault("id", where)
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no facts")
    return rows


@torch.no_grad()
def sentence_logprobs(
    model, tokenizer, sentences: list[str], *, batch_size: int = 32, reduce: str = "sum"
) -> list[float]:
    """Log-likelihood of each sentence (its tokens after the first; with the tokenizer's special tokens, so a BOS
    conditions the first word when the tokenizer adds one). ``reduce``: ``sum`` or ``mean`` per scored token."""
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce {reduce!r}: choose sum or mean")
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[float] = []
    for start in range(0, len(sentences), batch_size):
        ids = [tokenizer(s)["input_ids"] for s in sentences[start : start + batch_size]]
        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, x in enumerate(ids):  # right padding: positions are those of the unpadded sentence
            input_ids[r, : len(x)] = torch.tensor(x)
            mask[r, : len(x)] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:, None].to(device))[..., 0]
        scored = mask[:, 1:].to(device).float()
        total = (logp * scored).sum(-1)
        if reduce == "mean":
            total = total / scored.sum(-1).clamp(min=1)
        out += total.tolist()
    return out


def rankc(ranking_a: list[int], ranking_b: list[int]) -> float:
    """RankC consistency of two rankings of the same N candidates (1 = identical)."""
    n = len(ranking_a)
    if sorted(ranking_a) != sorted(ranking_b):
        raise ValueError("the two rankings must order the same candidates")
    weights = [math.exp(n - j) for j in range(1, n + 1)]
    total = sum(weights)
    return sum(w / total * len(set(ranking_a[:j]) & set(ranking_b[:j])) / j for j, w in zip(range(1, n + 1), weights))


def probe_facts(model, tokenizer, facts: list[dict], *, batch_size: int = 32, reduce: str = "sum") -> dict:
    """Rankings, per-language accuracy@1 / MRR (also per relation) and per-pair top-1 agreement / RankC."""
    langs = list(facts[0]["sentences"])
    flat = [(i, lang, s) for i, f in enumerate(facts) for lang in langs for s in f["sentences"][lang]]
    scores = sentence_logprobs(model, tokenizer, [s for _, _, s in flat], batch_size=batch_size, reduce=reduce)
    per: dict[tuple[int, str], list[float]] = {}
    for (i, lang, _), score in zip(flat, scores):
        per.setdefault((i, lang), []).append(score)
    rankings = {
        key: sorted(range(len(v)), key=lambda c, v=v: (-v[c], c)) for key, v in per.items()
    }  # best first; ties by index
    languages = {}
    for lang in langs:
        ranks = [rankings[(i, lang)].index(f["answer"]) + 1 for i, f in enumerate(facts)]
        by_relation = {}
        for rel in sorted({f.get("relation", "") for f in facts}):
            sub = [r for r, f in zip(ranks, facts) if f.get("relation", "") == rel]
            by_relation[rel] = sum(r == 1 for r in sub) / len(sub)
        languages[lang] = {
            "accuracy": sum(r == 1 for r in ranks) / len(ranks),
            "mrr": sum(1 / r for r in ranks) / len(ranks),
            "accuracy_by_relation": by_relation,
        }
    pairs = {}
    for a, b in itertools.combinations(langs, 2):
        agree = [rankings[(i, a)][0] == rankings[(i, b)][0] for i in range(len(facts))]
        consistency = [rankc(rankings[(i, a)], rankings[(i, b)]) for i in range(len(facts))]
        pairs[f"{a}-{b}"] = {"top1_agreement": sum(agree) / len(agree), "rankc": sum(consistency) / len(consistency)}
    return {
        "n_facts": len(facts),
        "languages": languages,
        "pairs": pairs,
        "mean_accuracy": sum(v["accuracy"] for v in languages.values()) / len(languages),
        "mean_rankc": sum(v["rankc"] for v in pairs.values()) / max(len(pairs), 1),
        "rankings": {f["id"]: {lang: rankings[(i, lang)] for lang in langs} for i, f in enumerate(facts)},
    }
