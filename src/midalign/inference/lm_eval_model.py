"""midalign as a model backend of lm-evaluation-harness (optional extra ``lmeval``).

``loglikelihood`` requests go through midalign's exact label scorer
(:func:`midalign.inference.scoring.score_token_ids`): the requests of one context (a multiple-choice item's choices)
are scored from one forward over the context and one over the choices, the prompt prefix every context shares (a
system prompt, a few-shot block) is computed once, and the LM head runs only where a log-probability is read.
lm-eval's ``hf`` backend runs one row per (context, choice) instead. Tokenization follows lm-eval's own
(:class:`lm_eval.api.model.TemplateLM`: trailing spaces of the context move to the continuation, the pair is
encoded whole and split), so both backends score the same token ids.

Model arguments (``--model_args``): ``pretrained`` (a directory or hub id), ``adapter`` (LoRA adapter directories,
``+``-separated for a composition: merged one after another, their deltas add up), ``dtype`` (``float32``,
``bfloat16`` or ``auto``), ``batch_size``, ``max_length``, ``trust_remote_code`` (off unless given).

Use: ``midalign lm-eval --model midalign --model_args pretrained=DIR,adapter=ADAPTER --tasks ...`` (the command
registers the backend, then runs lm-eval's own command line with the rest of the arguments), or from Python
``lm_eval.simple_evaluate(model=MidalignLM(pretrained=...), tasks=[...])``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import lm_eval.models  # noqa: F401 -- lm-eval fills its model registry lazily only while it is empty: built-ins first
import torch
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from ..models.hardware import resolve_dtype
from ..models.loading import load_model_with_adapters, load_tokenizer
from .engine import generate_batch
from .scoring import score_token_ids

__all__ = ["MidalignLM", "main"]

logger = logging.getLogger("midalign")


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")


@register_model("midalign")
class MidalignLM(TemplateLM):
    def __init__(
        self,
        pretrained: str | None = None,
        adapter: str | None = None,
        dtype: str = "float32",
        batch_size: int | str | None = 16,
        max_length: int | None = None,
        trust_remote_code: bool | str = False,
        device: str | None = None,
        max_batch_size: int | None = None,
        **unused,
    ) -> None:
        super().__init__()
        if unused:
            raise ValueError(f"--model_args: unknown arguments {sorted(unused)} for the midalign backend "
                             "(pretrained, adapter, dtype, batch_size, max_length, trust_remote_code)")  # fmt: skip
        if device not in (None, "cpu") and not str(device).startswith("cuda"):
            raise ValueError(f"--device {device}: the midalign backend runs on cpu or cuda")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            logger.warning(
                "--device %s: no CUDA device here; running on the CPU (as lm-eval's hf backend does)", device
            )
            device = "cpu"
        adapters = [a for a in (adapter or "").split("+") if a]
        self.dtype = resolve_dtype(dtype, "cuda" if str(device).startswith("cuda") else "cpu")
        remote = _flag(trust_remote_code)
        self.tokenizer = load_tokenizer(pretrained, trust_remote_code=remote)
        self.model = load_model_with_adapters(pretrained, adapters,
                                              torch_dtype=None if self.dtype == "float32" else self.dtype,
                                              trust_remote_code=remote)  # fmt: skip
        if str(device).startswith("cuda"):
            self.model.to(device)
        self.batch_size = 16 if batch_size in (None, "auto") or str(batch_size).startswith("auto") else int(batch_size)
        config_max = getattr(self.model.config, "max_position_embeddings", None)
        self._max_length = int(max_length) if max_length else min(config_max or 2048, 8192)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id

    # ---- what TemplateLM needs ----------------------------------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer.name_or_path.replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        bos = self.tokenizer.bos_token
        if add_special_tokens is None:  # as lm-eval's hf backend: no second BOS when the text starts with one
            add_special_tokens = not (bos and string.startswith(bos))
        return self.tokenizer.encode(string, add_special_tokens=add_special_tokens)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """``requests``: ``[((context, continuation), context ids, continuation ids)]``. The continuations of one
        context are scored together; contexts are left-truncated to fit ``max_length``."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (_, ctx, cont) in enumerate(requests):
            if not cont:
                raise ValueError(f"lm-eval request {i}: the continuation adds no tokens")
            ctx = list(ctx)[-max(self.max_length - len(cont), 1) :]
            groups.setdefault(tuple(ctx), []).append(i)
        encoded = [(list(ctx), [list(requests[i][2]) for i in members]) for ctx, members in groups.items()]
        scores, greedy = score_token_ids(self.model, self.pad_id, encoded, batch_size=self.batch_size,
                                         return_greedy=True)  # fmt: skip
        out: list = [None] * len(requests)
        for g, members in enumerate(groups.values()):
            for j, i in enumerate(members):
                out[i] = (float(scores[g][j]), bool(greedy[g][j]))
                if self.cache_hook is not None and requests[i][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[i][0], out[i])
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """The whole text's log-likelihood in disjoint windows of ``max_length`` (lm-eval's rolling windows)."""
        out = []
        for req in requests:
            (text,) = req.args
            windows = [make_disjoint_window(w) for w in get_rolling_token_windows(
                token_list=self.tok_encode(text, add_special_tokens=False), prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length, context_len=1)]  # fmt: skip
            pieces = self._loglikelihood_tokens([(None, ctx, cont) for ctx, cont in windows])
            total = sum(ll for ll, _ in pieces)
            out.append(total)
            if self.cache_hook is not None:
                self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
        return out

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy generation through midalign's engine, cut at the first ``until`` string."""
        out = []
        for req in requests:
            context, gen_kwargs = req.args
            kw = dict(gen_kwargs or {})
            if kw.get("do_sample") or float(kw.get("temperature", 0) or 0) > 0:
                raise ValueError("the midalign backend generates greedily: use do_sample=False, temperature 0")
            until = kw.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kw.get("max_gen_toks", 256))
            ids = self.tok_encode(context)[-max(self.max_length - max_new, 1) :]
            texts, _ = generate_batch(self.model, self.tokenizer, [context], max_new_tokens=max_new, token_ids=[ids])
            text = texts[0]
            for stop in until:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            out.append(text)
            if self.cache_hook is not None:
                self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return out


def main(argv: Sequence[str] | None = None) -> None:
    """``midalign lm-eval ...``: lm-eval's command line with the ``midalign`` model backend registered."""
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *(sys.argv[1:] if argv is None else argv)]
    with torch.inference_mode():
        cli_evaluate()
