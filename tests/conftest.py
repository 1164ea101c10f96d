import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ASSETS = Path(__file__).parent / "assets"
ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer integration tests (still run by CI)")
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ASSETS / "tokenizer")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A 4-layer random Llama + the asset tokenizer saved as a checkpoint directory (safetensors)."""
    from midalign.models import tiny_model

    path = tmp_path_factory.mktemp("tiny-llama")
    model = tiny_model("llama", vocab_size=len(tokenizer), num_layers=4)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


TASK_ROWS = [
    (
        "<|im_start|>user\nwake me up at nine am on friday<|im_end|>\n<|im_start|>assistant\n",
        "time: nine am; date: friday<|im_end|>",
    ),
    ("<|im_start|>user\nplay some jazz music<|im_end|>\n<|im_start|>assistant\n", "music_genre: jazz<|im_end|>"),
    ("<|im_start|>user\nturn off the lights<|im_end|>\n<|im_start|>assistant\n", "None<|im_end|>"),
    (
        "<|im_start|>user\nwhat is the weather in berlin tomorrow<|im_end|>\n<|im_start|>assistant\n",
        "place_name: berlin; date: tomorrow<|im_end|>",
    ),
]
PAIRS = [
    ("wake me up at nine am on friday", "weck mich am freitag um neun uhr"),
    ("set an alarm for seven thirty", "stell einen wecker für halb acht"),
    ("what is the weather in berlin tomorrow", "wie ist das wetter morgen in berlin"),
    ("play some jazz music", "réveille-moi à neuf heures vendredi"),
    ("turn off the lights in the kitchen", "разбуди меня в девять утра в пятницу"),
    ("remind me to call mom at noon", "金曜日の午前九時に起こして"),
]


def write_jsonl(path, rows):
    path = Path(path)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def data_files(tmp_path):
    """Task-only, pairs-only and task+pairs files in the paper's format (16 rows each)."""
    task = [{"prefix": p, "text": t} for p, t in TASK_ROWS] * 4
    pairs = [{"text_parallel_0": a, "text_parallel_1": b} for a, b in PAIRS] * 3
    both = [{**t, **pairs[i % len(pairs)]} for i, t in enumerate(task)]
    return {
        "task": write_jsonl(tmp_path / "task.json", task),
        "pairs": write_jsonl(tmp_path / "pairs.json", pairs[:16]),
        "both": write_jsonl(tmp_path / "both.json", both),
    }


@pytest.fixture(scope="session")
def xsid_dir():
    """The xSID 0.7 release: $MIDALIGN_XSID_DIR, else ../shared/data/xsid-0.7 beside the checkout. Missing data
    skips the test with the reason (a clone alone); with MIDALIGN_REQUIRE_DATA=1 (CI) it fails instead."""
    path = Path(os.environ.get("MIDALIGN_XSID_DIR") or ROOT.parent / "shared" / "data" / "xsid-0.7")
    if not (path / "en.valid.conll").is_file():
        message = f"xSID data not found at {path}: set MIDALIGN_XSID_DIR to the xSID-0.7 release folder"
        if os.environ.get("MIDALIGN_REQUIRE_DATA"):  # CI: the data is there, a missing copy is a failure
            pytest.fail(message)
        pytest.skip(message)
    return str(path)
