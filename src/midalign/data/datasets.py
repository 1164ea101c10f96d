"""Datasets over the paper's JSON-lines files: in memory (map-style) or streamed (iterable), optionally with
parallel pairs drawn from a separate ``--alignment_file`` that cycles independently of the task rows."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from torch.utils.data import Dataset, IterableDataset

from .jsonl import PAIR_FIELDS, ContrastiveDataMode, count_rows, iter_located_rows, iter_rows, read_rows
from .processing import TargetTooLongError, tokenize_pair, tokenize_task

PAIR_ORDERS = ("file", "shuffle")

__all__ = ["PAIR_ORDERS", "Featurizer", "AlignmentDataset", "StreamingAlignmentDataset", "build_dataset"]


@dataclass
class Featurizer:
    """Row -> token features. ``task`` / ``pairs`` choose which column groups are produced."""

    tokenizer: object
    block_size: int | None
    task: bool = True
    pairs: bool = False

    def __call__(self, row: dict, pair: dict | None = None) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        if self.task:
            out.update(tokenize_task(self.tokenizer, row["prefix"], row["text"], self.block_size))
        if self.pairs:
            src = pair if pair is not None else row
            out.update(tokenize_pair(self.tokenizer, src["text_parallel_0"], src["text_parallel_1"], self.block_size))
        return out


class AlignmentDataset(Dataset):
    """Rows validated up front, tokenized on access.

    With ``pair_rows`` (from ``--alignment_file``), row ``i`` in epoch ``e`` is paired with
    ``pair_rows[(i + e * len(rows)) % len(pair_rows)]``: every epoch walks on through the pair list, so pairs
    cycle independently of the task rows. Call :meth:`set_epoch` at each epoch (the trainer does).
    """

    def __init__(self, rows: list[dict], featurize: Featurizer, pair_rows: list[dict] | None = None):
        self.rows, self.featurize, self.pair_rows = rows, featurize, pair_rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.rows)

    def pair_languages(self, draws: int) -> tuple[dict[str, int], dict[str, int]]:
        """Per ``lang`` of the pair rows (an optional field of ``--alignment_file``): how many pairs the file holds,
        and how many of them a run that draws ``draws`` task rows can pair with at most. Rows drawn in epoch ``e``
        take pairs ``e * len(rows) ...`` onward; a partial last epoch is counted as if whole, so a language missing
        from the second count is certainly never drawn. Both empty when the pairs carry no ``lang``."""
        if not self.pair_rows or not any("lang" in p for p in self.pair_rows):
            return {}, {}
        epochs = -(-max(draws, 0) // len(self.rows))  # the last, partial one counted whole
        reach = self.pair_rows[: epochs * len(self.rows)]  # pairs (e * len(rows) + i) mod len(pairs), e < epochs
        return dict(Counter(r.get("lang", "?") for r in self.pair_rows)), dict(
            Counter(r.get("lang", "?") for r in reach)
        )

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        pair = None
        if self.pair_rows is not None:
            pair = self.pair_rows[(i + self.epoch * len(self.rows)) % len(self.pair_rows)]
        return self.featurize(self.rows[i], pair)


class StreamingAlignmentDataset(IterableDataset):
    """Reads the files lazily on every pass (nothing is loaded in full). Its length is the number of non-blank
    lines, counted without parsing, so epoch-based training works. Errors surface with file:line when the bad
    line is reached. ``shuffle_buffer`` > 0 shuffles within a sliding buffer (seeded per epoch)."""

    def __init__(
        self,
        files: str,
        fields: tuple[str, ...],
        featurize: Featurizer,
        pair_files: str | None = None,
        shuffle_buffer: int = 0,
        seed: int = 0,
    ):
        self.files, self.fields, self.featurize, self.pair_files = files, fields, featurize, pair_files
        self.shuffle_buffer, self.seed, self.epoch = shuffle_buffer, seed, 0
        self._len = count_rows(files)
        self._pair_len = count_rows(pair_files) if pair_files else 0  # counted once, not re-parsed every epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._len

    def pair_languages(self, draws: int) -> tuple[dict[str, int], dict[str, int]]:
        """As :meth:`AlignmentDataset.pair_languages`, for pairs streamed in file order (epoch ``e`` starts
        ``e * len(self)`` pairs in): one pass over the pair file, reading only each row's ``lang``."""
        if not self.pair_files or not self._len:
            return {}, {}
        limit = -(-max(draws, 0) // self._len) * self._len  # the last, partial epoch counted whole
        in_file, reach = Counter(), Counter()
        for i, row in enumerate(iter_rows(self.pair_files, PAIR_FIELDS, keep=("lang",))):
            if i == 0 and "lang" not in row:
                return {}, {}
            lang = row.get("lang", "?")
            in_file[lang] += 1
            if i < limit:
                reach[lang] += 1
        return dict(in_file), dict(reach)

    def _rows(self) -> Iterator[tuple[str, dict]]:
        rows = iter_located_rows(self.files, self.fields)
        if self.shuffle_buffer <= 0:
            yield from rows
            return
        rng, buf = random.Random(self.seed + self.epoch), []
        for row in rows:
            buf.append(row)
            if len(buf) >= self.shuffle_buffer:
                yield buf.pop(rng.randrange(len(buf)))
        rng.shuffle(buf)
        yield from buf

    def __iter__(self) -> Iterator[dict[str, list[int]]]:
        pairs = None
        if self.pair_files is not None:
            pairs = _cycle(lambda: iter_rows(self.pair_files, PAIR_FIELDS), self._pair_len, skip=self.epoch * self._len)
        for where, row in self._rows():
            try:
                yield self.featurize(row, next(pairs) if pairs is not None else None)
            except TargetTooLongError as err:  # the row's file:line, as the in-memory check gives it
                raise TargetTooLongError(f"{where}: {err}") from None


def _cycle(make, n: int, skip: int = 0) -> Iterator[dict]:
    """Endless iteration over a re-openable stream of ``n`` rows, starting ``skip`` rows in (modulo ``n``)."""
    if n == 0:
        raise ValueError("alignment file has no rows")
    it = itertools.islice(make(), skip % n, None)
    while True:
        yield from it
        it = make()


def build_dataset(
    files: str,
    tokenizer,
    mode: ContrastiveDataMode,
    block_size: int | None,
    *,
    alignment_file: str | None = None,
    streaming: bool = False,
    shuffle_buffer: int = 0,
    seed: int = 0,
    max_samples: int | None = None,
    pair_order: str = "file",
):
    """The training or evaluation dataset for ``files`` in ``mode``; pairs come from the rows themselves
    (mode 1 or 2) or, when ``alignment_file`` is given, from that file.

    ``pair_order`` (in-memory datasets with ``alignment_file``): ``"file"`` walks the pairs in file order;
    ``"shuffle"`` permutes them once with ``seed`` first, so that a pair file written in language blocks still gives
    mixed-language batches and every language is drawn even when a run sees only part of the file. The training
    command's default is ``shuffle`` (``--alignment_pair_order``)."""
    if pair_order not in PAIR_ORDERS:
        raise ValueError(f"--alignment_pair_order {pair_order!r}: choose one of {list(PAIR_ORDERS)}")
    mode = ContrastiveDataMode(mode)
    if alignment_file is not None and mode == ContrastiveDataMode.PAIRS:
        raise ValueError(
            "--alignment_file is for task rows without pairs; with --contrastive_data_mode 1 give the "
            "pair file as --train_file"
        )
    with_pairs = mode.has_pairs or alignment_file is not None
    featurize = Featurizer(tokenizer, block_size, task=mode.has_task, pairs=with_pairs)
    fields = mode.fields
    if streaming:
        if max_samples:
            raise ValueError("--max_train_samples/--max_eval_samples are not supported with --streaming")
        return StreamingAlignmentDataset(files, fields, featurize, alignment_file, shuffle_buffer, seed)
    rows = read_rows(files, fields)
    if max_samples:
        rows = rows[:max_samples]
    if mode.has_task and block_size:
        from .jsonl import json_lines, split_files
        from .processing import check_task_lengths

        located = ((where, row) for path in split_files(files) for where, row in json_lines(path))
        check_task_lengths(itertools.islice(located, len(rows)), tokenizer, block_size)
    pair_rows = read_rows(alignment_file, PAIR_FIELDS, keep=("lang",)) if alignment_file else None
    if pair_rows is not None and pair_order == "shuffle":
        random.Random(seed).shuffle(pair_rows)
    return AlignmentDataset(rows, featurize, pair_rows)
