"""The docs pages rendered from results files are up to date with fig/*.json (numbers are never typed by hand)."""

import importlib.util
import json
import re
import subprocess
import sys

from tests.conftest import ROOT


def test_rendered_pages_match_the_results_files():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "render.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_docs_page_is_in_the_nav():
    import yaml

    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [p for p in pages if p not in nav]
    assert not missing, f"docs pages not in mkdocs.yml nav: {missing}"
    assert yaml.safe_load(nav.replace("!!python", "")) is not None


_NOT_MEASURED = re.compile(r"(?:arXiv|MASSIVE|xSID|BY|BY-SA|transformers|torch|vLLM|Python) $")


def _typed_decimals(text: str) -> list[str]:
    text = re.sub(r"<!-- BEGIN rendered:(\w+).*?<!-- END rendered:\1 -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    found = []
    for m in re.finditer(r"(?<![\w.])\d+\.\d+(?![\w.])", text):
        if not _NOT_MEASURED.search(text[max(0, m.start() - 14) : m.start()]):
            line = text[: m.start()].count("\n") + 1
            found.append(f"{m.group()} (line ~{line}: {text[max(0, m.start() - 40) : m.end() + 20]!r})")
    return found


def test_the_typed_decimal_checker_sees_prose_and_skips_code_and_rendered_blocks():
    text = ("F1 0.95 here\n`--lr 0.1`\n```\nx = 0.5\n```\n<!-- BEGIN rendered:t -->\n0.33\n<!-- END rendered:t -->\n"
            "xSID 0.7, [arXiv 2502.14830](https://arxiv.org/abs/2502.14830)")  # fmt: skip
    assert [d.split(" ")[0] for d in _typed_decimals(text)] == ["0.95"]


def test_no_measured_number_is_typed_by_hand_in_the_docs():
    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    typed = {}
    for path in render.BLOCK_FILES:  # rendered blocks are skipped: their numbers come from results files
        found = _typed_decimals(path.read_text(encoding="utf-8"))
        if found:
            typed[path.name] = found
    assert not typed, (
        "decimals typed by hand (render them from a results file, or put a setting in `code`): "
        + "; ".join(f"{k}: {', '.join(v[:5])}" for k, v in typed.items())
    )


def _render(monkeypatch, tmp_path, files: dict):
    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    monkeypatch.setattr(render.common, "FIG", tmp_path)
    for name, obj in files.items():
        (tmp_path / name).write_text(json.dumps(obj))
    return render


def test_the_transfer_reading_counts_wins_and_checks_the_retrained_baselines(tmp_path, monkeypatch):
    cfg = {"seeds": [0, 1], "source": "src", "targets": ["x"], "layers": 4, "align_layer": None, "finetune_steps": 10,
           "heldout_pairs": 50}  # fmt: skip

    def run(method, seed, x):
        return {"method": method, "seed": seed, "f1": {"src": 0.9, "x": x}, "seconds": 60.0,
                "retrieval_by_layer": {"x": [0.0, 0.1, 0.2 if method == "alignment" else 0.02, 0.0, 0.0]}}  # fmt: skip

    runs = [run("baseline", 0, 0.0), run("baseline", 1, 0.0), run("baseline_2x", 0, 0.01), run("baseline_2x", 1, 0.05),
            run("alignment", 0, 0.2), run("alignment", 1, 0.03)]  # fmt: skip
    summary = [{"method": m, "language": lang, "f1_mean": 0.5, "f1_std": 0.1} for m in ("baseline", "baseline_2x",
               "alignment") for lang in ("src", "x")]  # fmt: skip
    l1 = {"config": {**cfg, "align_layer": 1}, "runs": [run("baseline", 0, 0.0), run("baseline", 1, 0.1)],
          "summary": [s for s in summary if s["method"] != "baseline_2x"]}  # fmt: skip
    render = _render(monkeypatch, tmp_path, {"transfer.json": {"config": cfg, "runs": runs, "summary": summary},
                                             "transfer_layer1.json": l1})  # fmt: skip
    text = render.BLOCKS["transfer"]()
    assert "Alignment above `baseline_2x` on 1 of 2 (seed, target language) pairs" in text
    assert "at layer 2: 0.02–0.02 after `baseline_2x`, 0.20–0.20 after alignment" in text
    assert "NOT identical to the default run" in text  # seed 1's retrained baseline differs
    assert "| alignment at layer 1 (`--alignment-layer 1`) | 0.500 ± 0.100 | 0.500 ± 0.100 |" in text


def test_benchmark_sections_say_not_measured_and_judge_targets_from_the_file(tmp_path, monkeypatch):
    render = _render(monkeypatch, tmp_path, {})
    assert render.BLOCKS["bench_train_recipe"]().startswith("Not measured yet")
    meta = {"command": "python benchmarks/alignment_step.py", "date": "2026-12-02", "cpu": "c", "torch": "t",
            "threads": 2}  # fmt: skip
    variants = {"task": {"median_s": 2.0, "peak_rss_increase_mb": 1000},
                "align": {"median_s": 0.4, "peak_rss_increase_mb": 100},
                "naive": {"median_s": 1.0, "peak_rss_increase_mb": 400}}  # fmt: skip
    step = {**meta, "repeats": 3, "batch": 8, "pair_tokens": 24, "task_tokens": 64, "layer": 15, "variants": variants}
    render = _render(monkeypatch, tmp_path, {"alignment_step.json": step})
    text = render.BLOCKS["bench_alignment_step"]()
    assert "**0.40× the time, 0.25× the peak memory**" in text and "time met, memory met" in text


def test_benchmark_results_record_the_command_without_the_output_flags():
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    argv = [str(ROOT / "benchmarks" / "x.py"), "--rounds", "2", "--json", "fig/x.json", "--overwrite", "--n", "4"]
    assert results.command(argv) == "python benchmarks/x.py --rounds 2 --n 4"


def _rendered_texts():
    """Every rendered block, as the docs show it (the prose around blocks holds no measured number: see
    test_no_measured_number_is_typed_by_hand_in_the_docs)."""
    render = _render_module()
    return {f"block {name}": fn() for name, fn in render.BLOCKS.items()}


def _page(render, name: str) -> str:
    """A docs page as rendered now (its blocks filled from the results folder render.common.FIG points at)."""
    return render._with_blocks((render.DOCS / name).read_text(encoding="utf-8"))


def _render_module():
    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    return render


TASK_ACCURACY = re.compile(r"(?<!retrieval )(?<!retrieval-)\baccurac(y|ies)\b(?!@)", re.I)


def test_no_page_shows_a_task_accuracy_without_its_majority_baseline():
    # an accuracy is read against the evaluated subset's majority-class accuracy and chance (issue 29): a page that
    # prints a task accuracy must print them too
    offenders = []
    for name, text in _rendered_texts().items():
        for para in re.split(r"\n\n|\n- ", text):
            if TASK_ACCURACY.search(para) and re.search(r"\d+\.\d", para) and "majority" not in para:
                offenders.append(f"{name}: {para[:80]!r}")
    assert not offenders, offenders


def test_the_majority_checker_flags_a_bare_accuracy():
    assert TASK_ACCURACY.search("English dev accuracy 81.2")
    assert not TASK_ACCURACY.search("retrieval accuracy@1 0.5") and not TASK_ACCURACY.search("acc@1 0.4")


def test_the_withdrawn_sib200_page_keeps_only_the_control_with_seed_level_intervals(tmp_path, monkeypatch):
    render = _render_module()
    langs = ["eng_Latn", "deu_Latn", "fra_Latn"]

    def run(method, seed, raw, cen):
        return {
            "method": method,
            "seed": seed,
            "dtype": "float32",
            "retrieval": {"deu_Latn": {"raw": raw, "centered": cen}, "fra_Latn": {"raw": raw, "centered": cen}},
        }

    sib = {"config": {"aligned": ["deu_Latn"], "control_steps": 100, "batch_size": 16, "control_learning_rate": 5e-4,
                      "remedy": "batch", "pooling": "mean_skip_first", "retrieval_size": 204},
           "layer": 9, "languages": langs,
           "summary": {"methods": {"control_paper": {}},
                       "base_retrieval": {"raw aligned": 0.4, "centered aligned": 0.5, "raw transfer": 0.2,
                                          "centered transfer": 0.3}},
           "runs": [run("control_paper", s, v, v) for s, v in ((0, 0.4), (1, 0.5), (2, 0.6))]}  # fmt: skip
    (tmp_path / "sib200.json").write_text(json.dumps(sib))
    monkeypatch.setattr(render.common, "FIG", tmp_path)
    page = _page(render, "experiment-sib200.md")
    assert page.startswith("# SIB-200 (first experiment, withdrawn)") and "two of the seven topics" in page
    # mean 50.0, sd 10, t(2) = 4.303: half-width 24.8
    assert "| control_paper | 0: float32, 1: float32, 2: float32 | 50.0 [25.2, 74.8] |" in page
    assert "Accuracy" not in page  # no task accuracy survives


def test_the_powered_page_renders_each_stage(tmp_path, monkeypatch):
    render = _render_module()
    monkeypatch.setattr(render.common, "FIG", tmp_path)
    tmp_path = tmp_path / "sib200_powered"  # the work dir the page reads
    tmp_path.mkdir()
    assert "Not screened yet" in _page(render, "experiment-sib200-powered.md")
    env = {"cpu": "CPU", "dtype": "float32"}
    (tmp_path / "screen.json").write_text(
        json.dumps(
            {
                "n_items": 99,
                "split": "dev",
                "layer": 9,
                "pooling": "mean",
                "env": env,
                "languages": {"a_Latn": {"raw": 0.1, "centered": 0.3}, "b_Cyrl": {"raw": 0.2, "centered": 0.4}},
            }
        )
    )
    (tmp_path / "selection.json").write_text(
        json.dumps(
            {
                "roles": {"A": ["a_Latn"], "B": ["b_Cyrl"]},
                "eligible": ["a_Latn", "b_Cyrl"],
                "excluded_low": [],
                "excluded_high": [],
                "selected": ["a_Latn", "b_Cyrl"],
                "latin_share": [1, 2],
            }
        )
    )
    page = _page(render, "experiment-sib200-powered.md")
    assert "| A | a_Latn | 10.0 | 30.0 |" in page and "0 units finished so far" in page
    assert "No confirmatory result exists" in page
    assert "plan not yet written" in importlib.import_module("renderers.powered").block_sib200_powered_headline()
