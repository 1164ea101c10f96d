import json

import pytest
import torch

from midalign.data import (
    IGNORE_INDEX,
    AlignmentCollator,
    ContrastiveDataMode,
    DataFormatError,
    build_dataset,
    read_rows,
    tokenize_task,
)
from tests.conftest import write_jsonl


def test_prompt_tokens_are_masked(tokenizer):
    prefix, text = "<|im_start|>user\nwake me up<|im_end|>\n<|im_start|>assistant\n", "time: nine am<|im_end|>"
    f = tokenize_task(tokenizer, prefix, text, block_size=None)
    n_prompt = len(tokenizer(prefix)["input_ids"])
    assert f["input_ids"] == tokenizer(prefix + text)["input_ids"]
    assert f["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert f["labels"][n_prompt:] == f["input_ids"][n_prompt:]
    assert tokenizer.decode(f["labels"][n_prompt:]).endswith("<|im_end|>")


def test_mask_is_exact_when_the_tokenizer_merges_across_the_boundary(tokenizer):
    # "hel" + "lo world" tokenizes as he|ll|o|...: the prompt's tokens he|l are not a prefix, so masking 2 tokens
    # of the joint tokenization would have trained on "ll" as if it were target-only and hidden nothing wrong.
    f = tokenize_task(tokenizer, "hel", "lo world", None)
    prompt = tokenizer("hel")["input_ids"]
    assert f["input_ids"][: len(prompt)] == prompt
    assert f["labels"][: len(prompt)] == [IGNORE_INDEX] * len(prompt)
    target = [t for t in f["labels"] if t != IGNORE_INDEX]
    assert target == tokenizer("lo world", add_special_tokens=False)["input_ids"]
    # no merge: the joint tokenization is kept as before
    g = tokenize_task(tokenizer, "the qu", "ick", None)
    assert g["input_ids"] == tokenizer("the quick")["input_ids"]


def test_block_size_never_cuts_a_target_silently(tokenizer):
    # formerly cut to 4 tokens of prompt, all labels -100: trained on nothing. Now an error.
    from midalign.data import TargetTooLongError

    with pytest.raises(TargetTooLongError, match="exceed --block_size 4"):
        tokenize_task(tokenizer, "a b c d e f", " g h i j", block_size=4)
    fits = tokenize_task(tokenizer, "a b", " c", block_size=64)
    assert fits == tokenize_task(tokenizer, "a b", " c", block_size=None)
    assert fits["labels"][-1] != IGNORE_INDEX


@pytest.mark.parametrize(
    "mode,keys",
    [
        (0, {"input_ids", "attention_mask", "labels"}),
        (1, {"input_ids_parallel_0", "attention_mask_parallel_0", "input_ids_parallel_1", "attention_mask_parallel_1"}),
        (
            2,
            {
                "input_ids",
                "attention_mask",
                "labels",
                "input_ids_parallel_0",
                "attention_mask_parallel_0",
                "input_ids_parallel_1",
                "attention_mask_parallel_1",
            },
        ),
    ],
)
def test_modes_produce_their_columns(tokenizer, data_files, mode, keys):
    file = {0: "task", 1: "pairs", 2: "both"}[mode]
    ds = build_dataset(data_files[file], tokenizer, ContrastiveDataMode(mode), 64)
    assert set(ds[0]) == keys


def test_pairs_are_raw_text(tokenizer, data_files):
    ds = build_dataset(data_files["both"], tokenizer, ContrastiveDataMode.TASK_AND_PAIRS, 64)
    row = json.loads(open(data_files["both"]).readline())
    assert tokenizer.decode(ds[0]["input_ids_parallel_0"]) == row["text_parallel_0"]
    assert tokenizer.decode(ds[0]["input_ids_parallel_1"]) == row["text_parallel_1"]


def test_collator_pads_each_group_to_its_own_multiple_of_8(tokenizer):
    feats = [
        {
            "input_ids": [5] * 3,
            "attention_mask": [1] * 3,
            "labels": [-100, 5, 5],
            "input_ids_parallel_0": [7] * 10,
            "attention_mask_parallel_0": [1] * 10,
            "input_ids_parallel_1": [8],
            "attention_mask_parallel_1": [1],
        },
        {
            "input_ids": [6] * 9,
            "attention_mask": [1] * 9,
            "labels": [6] * 9,
            "input_ids_parallel_0": [7] * 2,
            "attention_mask_parallel_0": [1] * 2,
            "input_ids_parallel_1": [8] * 2,
            "attention_mask_parallel_1": [1] * 2,
        },
    ]
    b = AlignmentCollator(pad_token_id=0)(feats)
    assert b["input_ids"].shape == (2, 16)
    assert b["input_ids_parallel_0"].shape == (2, 16)
    assert b["input_ids_parallel_1"].shape == (2, 8)
    assert b["labels"][0, 3:].eq(IGNORE_INDEX).all() and b["attention_mask"][0, 3:].eq(0).all()
    assert b["input_ids"][0, 3:].eq(0).all()
    assert torch.equal(b["attention_mask_parallel_1"][1], torch.tensor([1, 1, 0, 0, 0, 0, 0, 0]))


def test_alignment_file_cycles_independently(tokenizer, data_files, tmp_path):
    pairs = write_jsonl(
        tmp_path / "p.json", [{"text_parallel_0": f"s{i}", "text_parallel_1": f"t{i}"} for i in range(5)]
    )
    ds = build_dataset(data_files["task"], tokenizer, ContrastiveDataMode.TASK, 64, alignment_file=pairs)
    seen = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        seen += [tokenizer.decode(ds[i]["input_ids_parallel_0"]) for i in range(len(ds))]
    assert seen[:7] == ["s0", "s1", "s2", "s3", "s4", "s0", "s1"]
    assert seen[16] == "s1"  # epoch 1 continues where epoch 0 left off: 16 % 5 = 1
    assert set(ds[0]) >= {"labels", "input_ids_parallel_1"}


def test_streaming_yields_the_same_rows_lazily(tokenizer, data_files, tmp_path):
    mem = build_dataset(data_files["both"], tokenizer, ContrastiveDataMode.TASK_AND_PAIRS, 64)
    stream = build_dataset(data_files["both"], tokenizer, ContrastiveDataMode.TASK_AND_PAIRS, 64, streaming=True)
    assert isinstance(stream, torch.utils.data.IterableDataset)
    assert len(stream) == len(mem)
    assert list(stream) == [mem[i] for i in range(len(mem))]


def test_streaming_reports_bad_line_when_reached(tokenizer, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"prefix": "a", "text": "b"}\n{"prefix": "a"}\n')
    ds = build_dataset(str(path), tokenizer, ContrastiveDataMode.TASK, 64, streaming=True)
    it = iter(ds)
    next(it)
    with pytest.raises(DataFormatError, match=r"bad\.json:2: missing field 'text'"):
        next(it)


@pytest.mark.parametrize("shuffle_buffer", [0, 4])
def test_streaming_names_the_file_and_line_of_an_over_long_row(tokenizer, tmp_path, shuffle_buffer):
    """Issue 22 item 12: a streamed row longer than --block_size is an error naming its file:line."""
    from midalign.data.processing import TargetTooLongError

    path = tmp_path / "long.json"
    path.write_text('{"prefix": "a", "text": "b"}\n\n{"prefix": "a", "text": "' + "word " * 200 + '"}\n')
    ds = build_dataset(
        str(path), tokenizer, ContrastiveDataMode.TASK, 64, streaming=True, shuffle_buffer=shuffle_buffer
    )
    with pytest.raises(
        TargetTooLongError, match=r"long\.json:3: prompt \(\d+ tokens\) \+ target \(\d+ tokens\) exceed"
    ):
        list(ds)


@pytest.mark.parametrize(
    "line,fields,match",
    [
        ('{"prefix": "a", "text": "b"', ("prefix", "text"), r":2: malformed JSON"),
        ('{"prefix": "a"}', ("prefix", "text"), r":2: missing field 'text'"),
        ('{"prefix": "a", "text": 3}', ("prefix", "text"), r":2: field 'text' must be a string, got int"),
        (
            '{"text_parallel_0": "a", "text_parallel_1": "  "}',
            ("text_parallel_0", "text_parallel_1"),
            r":2: field 'text_parallel_1' is empty",
        ),
        ('["a", "b"]', ("prefix", "text"), r":2: expected a JSON object"),
    ],
)
def test_errors_name_file_and_line(tmp_path, line, fields, match):
    path = tmp_path / "train.json"
    good = json.dumps({k: "x" for k in ("prefix", "text", "text_parallel_0", "text_parallel_1")})
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataFormatError, match="train.json" + match):
        read_rows(str(path), fields)


def test_comma_separated_files_and_missing_file(tmp_path, data_files):
    rows = read_rows(f"{data_files['task']},{data_files['task']}", ("prefix", "text"))
    assert len(rows) == 32
    with pytest.raises(FileNotFoundError, match="nope.json"):
        read_rows(f"{data_files['task']},{tmp_path}/nope.json", ("prefix", "text"))


def test_atomic_writes_use_a_temp_file_of_their_own_and_leave_none_behind(tmp_path):
    """Two processes (shards of one experiment) may write the same file: each uses its own temp file; a refused
    value (NaN) leaves the old file and no temp file."""
    import os

    import pytest

    from midalign.data.jsonl import write_json, write_jsonl

    path = tmp_path / "x.json"
    write_json(str(path), {"a": 1})
    with pytest.raises(ValueError):
        write_json(str(path), {"a": float("nan")})
    assert path.read_text().strip().startswith("{") and '"a": 1' in path.read_text()
    assert not list(tmp_path.glob("*.tmp"))
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(src)
        return real_replace(src, dst)

    os.replace = spy
    try:
        write_jsonl(str(tmp_path / "rows.jsonl"), [{"r": 1}])
    finally:
        os.replace = real_replace
    assert seen == [f"{tmp_path / 'rows.jsonl'}.{os.getpid()}.tmp"]
