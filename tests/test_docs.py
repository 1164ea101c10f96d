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


def test_the_xsid_remedy_section_says_what_its_intervals_say(tmp_path, monkeypatch):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    monkeypatch.setattr(render, "FIG", tmp_path)
    assert render.block_xsid_remedy().startswith("Not run yet")
    paired = {"seeds": [0, 1, 2], "english": [-0.02, -0.05, 0.01], "aligned": [0.04, 0.01, 0.08],
              "transfer": [0.01, -0.03, 0.05]}  # fmt: skip
    config = {"methods": ["baseline_2x", "alignment_center"], "languages": ["en", "de"], "remedy": "batch",
              "steps": 32, "seeds": [0, 1, 2], "test_size": 32}  # fmt: skip
    summary = {"paired": {"alignment_center - baseline_2x": paired}, "wall_clock_seconds_this_invocation": 600}
    result = {"config": config, "summary": summary}
    (tmp_path / "xsid_remedy.json").write_text(json.dumps(result))
    (tmp_path / "xsid_remedy.md").write_text("| method |\n")
    text = render.block_xsid_remedy()
    assert "| method |" in text and "64 optimizer steps" in text and "10 min" in text
    assert "aligned languages 4.0 [1.0, 8.0] points (higher, interval above zero)" in text
    assert "transfer languages 1.0 [-3.0, 5.0] points (no difference beyond noise" in text
    assert "xSID, `alignment_center - baseline_2x`** (3 seeds" in render.block_headline()


# A decimal in a page's prose is either rendered from a results file (between the render markers) or a literal in
# code (a flag value, a setting). What remains are versions and citations, named here.
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
    for path in render.BLOCK_FILES:  # the pages render.py writes whole (render.PAGES) are generated text
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
    monkeypatch.setattr(render, "FIG", tmp_path)
    for name, obj in files.items():
        (tmp_path / name).write_text(json.dumps(obj))
    return render


def test_paired_readings_are_per_seed_differences_with_their_sign_agreement(tmp_path, monkeypatch):
    groups = {"english": ["en"], "aligned": ["de"], "transfer": ["da", "it"]}
    f1 = {("a", 0): (0.8, 0.2, 0.1, 0.3), ("a", 1): (0.7, 0.1, 0.2, 0.2), ("b", 0): (0.8, 0.1, 0.1, 0.1),
          ("b", 1): (0.6, 0.2, 0.1, 0.1)}  # fmt: skip
    runs = [{"method": m, "seed": s, "f1": dict(zip(("en", "de", "da", "it"), v))} for (m, s), v in f1.items()]
    render = _render(monkeypatch, tmp_path, {})
    table = render._paired_table({"runs": runs, "summary": {"groups": groups}}, [("a", "b")])
    # english 0, +10: mixed; aligned +10, -10: mixed, mean 0; transfer +10, +10: all higher
    assert (
        table[2]
        == "| a − b | +0.0, +10.0; +5.0 (mixed) | +10.0, −10.0; +0.0 (mixed) | +10.0, +10.0; +10.0 (all higher) |"
    )
    assert render._consistent({"runs": runs, "summary": {"groups": groups}}, [("a", "b")]) == [
        "a − b on transfer (all higher)"
    ]
    assert render._agreement([0.0, 0.0]) == "unchanged"


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
    text = render.block_transfer()
    assert "Alignment above `baseline_2x` on 1 of 2 (seed, target language) pairs" in text
    assert "at layer 2: 0.02–0.02 after `baseline_2x`, 0.20–0.20 after alignment" in text
    assert "NOT identical to the default run" in text  # seed 1's retrained baseline differs
    assert "| alignment at layer 1 (`--layer 1`) | 0.500 ± 0.100 | 0.500 ± 0.100 |" in text


def test_benchmark_sections_say_not_measured_and_judge_targets_from_the_file(tmp_path, monkeypatch):
    render = _render(monkeypatch, tmp_path, {})
    assert render.block_bench_train_recipe().startswith("Not measured yet")
    meta = {"command": "python benchmarks/alignment_step.py", "date": "2026-12-02", "cpu": "c", "torch": "t",
            "threads": 2}  # fmt: skip
    variants = {"task": {"median_s": 2.0, "peak_rss_increase_mb": 1000},
                "align": {"median_s": 0.4, "peak_rss_increase_mb": 100},
                "naive": {"median_s": 1.0, "peak_rss_increase_mb": 400}}  # fmt: skip
    step = {**meta, "repeats": 3, "batch": 8, "pair_tokens": 24, "task_tokens": 64, "layer": 15, "variants": variants}
    render = _render(monkeypatch, tmp_path, {"alignment_step.json": step})
    text = render.block_bench_alignment_step()
    assert "**0.40× the time, 0.25× the peak memory**" in text and "time met, memory met" in text


def test_benchmark_results_record_the_command_without_the_output_flags():
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    argv = [str(ROOT / "benchmarks" / "x.py"), "--rounds", "2", "--json", "fig/x.json", "--overwrite", "--n", "4"]
    assert results.command(argv) == "python benchmarks/x.py --rounds 2 --n 4"
