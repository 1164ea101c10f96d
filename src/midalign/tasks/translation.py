"""Machine translation (WMT23): languages, prompts, data sources and BLEU / chrF with sacrebleu.

Data: the hub dataset ``haoranxu/WMT23-Test`` (parquet; the paper builds cs-en by reversing en-cs, and so do we,
saying so), sacrebleu's ``wmt23`` test sets (its own pairs; no cs-en), or local line-aligned files.
"""

from __future__ import annotations

import importlib.util
import json
import os

__all__ = [
    "LANG_NAMES",
    "HF_WMT23",
    "resolve_lang",
    "system_prompt",
    "load_pairs",
    "bleu_tokenizer",
    "score_translation",
]

HF_WMT23 = "haoranxu/WMT23-Test"
# code -> English name used in the prompt; aliases map ISO 639-2/3 codes onto these
LANG_NAMES = {
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "he": "Hebrew",
    "ja": "Japanese",
    "ru": "Russian",
    "uk": "Ukrainian",
    "zh": "Chinese",
    "is": "Icelandic",
    "fr": "French",
    "es": "Spanish",
    "ko": "Korean",
}
_ALIASES = {
    "ces": "cs",
    "cze": "cs",
    "deu": "de",
    "ger": "de",
    "eng": "en",
    "heb": "he",
    "jpn": "ja",
    "rus": "ru",
    "ukr": "uk",
    "zho": "zh",
    "cmn": "zh",
    "chi": "zh",
    "isl": "is",
    "fra": "fr",
    "spa": "es",
    "kor": "ko",
}


def resolve_lang(code: str) -> str:
    key = code.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LANG_NAMES:
        valid = ", ".join(sorted(LANG_NAMES) + sorted(_ALIASES))
        raise ValueError(f"unknown language code {code!r}; valid: {valid}")
    return key


def system_prompt(source: str, target: str) -> str:
    """The paper's prompt."""
    return (
        f"Translate the following sentences from {LANG_NAMES[resolve_lang(source)]} to "
        f"{LANG_NAMES[resolve_lang(target)]}."
    )


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def load_pairs(
    source: str,
    target: str,
    *,
    source_file: str | None = None,
    reference_file: str | None = None,
    dataset: str = "hf",
    revision: str | None = None,
) -> tuple[list[str], list[str], str]:
    """(sources, references, provenance note)."""
    s, t = resolve_lang(source), resolve_lang(target)
    if source_file or reference_file:
        if not (source_file and reference_file):
            raise ValueError("give both --source-file and --reference-file")
        src, ref = _read_lines(source_file), _read_lines(reference_file)
        if len(src) != len(ref):
            raise ValueError(f"{source_file} has {len(src)} lines but {reference_file} has {len(ref)}")
        return src, ref, f"local files {source_file}, {reference_file}"
    if dataset == "sacrebleu":
        from sacrebleu.dataset import DATASETS

        wmt = DATASETS["wmt23"]
        pair = f"{s}-{t}"
        if pair not in wmt.langpairs:
            raise ValueError(f"sacrebleu's wmt23 has no {pair}; it has {sorted(wmt.langpairs)}")
        wmt.process_to_text(pair)
        src = _read_lines(wmt.get_source_file(pair))
        ref = _read_lines(wmt.get_reference_files(pair)[0])
        return src, ref, f"sacrebleu wmt23 {pair}"
    if dataset != "hf":
        raise ValueError(f"--dataset {dataset!r}: choose hf or sacrebleu")
    from datasets import get_dataset_config_names, load_dataset

    configs = set(get_dataset_config_names(HF_WMT23, revision=revision))
    if f"{s}-{t}" in configs:
        rows = load_dataset(HF_WMT23, f"{s}-{t}", split="test", revision=revision)[f"{s}-{t}"]
        note = f"{HF_WMT23} {s}-{t}"
    elif f"{t}-{s}" in configs:
        rows = load_dataset(HF_WMT23, f"{t}-{s}", split="test", revision=revision)[f"{t}-{s}"]
        note = f"{HF_WMT23} {t}-{s} REVERSED into {s}-{t} (as the paper does for cs-en)"
    else:
        raise ValueError(f"{HF_WMT23} has no {s}-{t} or {t}-{s}; it has {sorted(configs)}")
    return [r[s] for r in rows], [r[t] for r in rows], note


def bleu_tokenizer(target: str, paper: bool = False) -> str:
    """sacrebleu tokenizer for a target language: zh; ja-mecab / ko-mecab when MeCab is installed (the ``eval``
    extra installs it for Japanese), else ``char`` for ja/ko (13a does not segment them: BLEU 0 on a correct-looking
    Japanese test); 13a otherwise. ``paper=True``: 13a everywhere (what the paper's `evaluate` call used)."""
    t = resolve_lang(target)
    if paper:
        return "13a"
    if t == "zh":
        return "zh"
    if t == "ja":
        return "ja-mecab" if importlib.util.find_spec("MeCab") and importlib.util.find_spec("ipadic") else "char"
    if t == "ko":
        return "ko-mecab" if importlib.util.find_spec("mecab_ko") else "char"
    return "13a"


def score_translation(hypotheses: list[str], references: list[str], target: str) -> dict:
    """Corpus BLEU (per-language tokenizer, and 13a as in the paper) and chrF, with sacrebleu signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    out = {}
    for key, tok in (("bleu", bleu_tokenizer(target)), ("bleu_paper_13a", "13a")):
        metric = BLEU(tokenize=tok)
        score = metric.corpus_score(hypotheses, [references])
        out[key] = {"score": score.score, "signature": str(metric.get_signature())}
    chrf = CHRF()
    out["chrf"] = {"score": chrf.corpus_score(hypotheses, [references]).score, "signature": str(chrf.get_signature())}
    return out


def write_scores(result_dir: str, source: str, target: str, scores: dict, comet: dict | None = None) -> None:
    """``{src}-{tgt}_scores.json`` and the paper's ``{src}-{tgt}_bleu.txt`` (/ ``_comet.txt``)."""
    os.makedirs(result_dir, exist_ok=True)
    stem = os.path.join(result_dir, f"{resolve_lang(source)}-{resolve_lang(target)}")
    with open(stem + "_scores.json", "w") as fh:
        json.dump({**scores, **({"comet": comet} if comet else {})}, fh, indent=2)
    with open(stem + "_bleu.txt", "w") as fh:
        fh.write(
            json.dumps({"score": scores["bleu_paper_13a"]["score"], "signature": scores["bleu_paper_13a"]["signature"]})
            + "\n"
        )
    if comet:
        with open(stem + "_comet.txt", "w") as fh:
            fh.write(json.dumps(comet) + "\n")
