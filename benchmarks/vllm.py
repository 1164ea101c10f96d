"""midalign's generation engine vs vLLM (``--engine vllm``), side by side in one run, on the xSID inference
command's prompts with the real Gemma 3 270M: sentences/s after load, model load time, and the share of identical
outputs. Interleaved rounds (ours, vLLM, ours, ...), medians, ratios.

    make vllm-env && python benchmarks/vllm.py [--sentences 32] [--rounds 2] [--langs en,de] [--dtype float32]
        [--adapter DIR]   # a LoRA adapter: merged into our engine's weights, served by vLLM through LoRARequest

Writes ``fig/vllm.json``. Needs the prepared Gemma 3 and the xSID release (``--data-dir``, default
``$MIDALIGN_XSID_DIR`` or ../shared/data/xsid-0.7).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=32, help="per language, the first N of the test split")
    p.add_argument("--langs", default="en,de")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--batch-size", type=int, default=16, help="midalign engine's batch (vLLM schedules its own)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--data-dir", default=os.environ.get("MIDALIGN_XSID_DIR", "../shared/data/xsid-0.7"))
    p.add_argument("--vllm-python", default=None)
    p.add_argument("--adapter", default=None, help="a LoRA adapter directory (both engines apply it)")
    p.add_argument("--out", default="fig/vllm.json")
    args = p.parse_args()

    import torch

    from midalign.inference.engine import run_generation, stop_token_ids
    from midalign.inference.task_cli import prompt_rows
    from midalign.inference.vllm_engine import VllmWorker
    from midalign.models import GEMMA3_MODEL_NAME, load_model_with_adapters, load_tokenizer, prepared_model_path
    from midalign.models.hardware import cpu_description
    from midalign.tasks import xsid
    from midalign.tasks.xsid_cli import examples

    path = prepared_model_path(GEMMA3_MODEL_NAME)
    tokenizer = load_tokenizer(path)
    exs = [
        e
        for lang in args.langs.split(",")
        for e in examples(xsid.load_xsid(lang, "test", args.data_dir))[: args.sentences]
    ]
    for i, e in enumerate(exs):
        e["id"] = f"{i}"
    rows, special = prompt_rows(tokenizer, exs)
    dtype = None if args.dtype == "float32" else args.dtype
    t = time.perf_counter()
    model = load_model_with_adapters(path, [args.adapter] if args.adapter else [], torch_dtype=dtype).eval()
    load_ours = time.perf_counter() - t
    stops = stop_token_ids(model, tokenizer)
    worker = VllmWorker(path, max_new_tokens=args.max_new_tokens, stop_token_ids=stops, dtype=args.dtype,
                        adapters=[args.adapter] if args.adapter else [], python=args.vllm_python)  # fmt: skip
    t = time.perf_counter()
    worker.__enter__()
    load_vllm = time.perf_counter() - t
    times: dict[str, list[float]] = {"midalign": [], "vllm": []}
    outputs: dict[str, list[str]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for engine in ("midalign", "vllm"):
                    out = os.path.join(tmp, f"{engine}_{r}.jsonl")
                    t = time.perf_counter()
                    got = run_generation(model if engine == "midalign" else None, tokenizer, rows, out,
                                         batch_size=args.batch_size if engine == "midalign" else max(len(rows), 1),
                                         max_new_tokens=args.max_new_tokens, add_special_tokens=special,
                                         progress=False,
                                         backend=worker.generate if engine == "vllm" else None)  # fmt: skip
                    times[engine].append(time.perf_counter() - t)
                    outputs[engine] = [g["prediction"] for g in got]
                    print(f"round {r} {engine}: {times[engine][-1]:.1f} s", flush=True)
    finally:
        worker.__exit__(None, None, None)
    med = {k: statistics.median(v) for k, v in times.items()}
    same = sum(a.strip() == b.strip() for a, b in zip(outputs["midalign"], outputs["vllm"])) / len(rows)
    result = {
        "command": "python benchmarks/vllm.py "
                   + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                              if k in ("sentences", "langs", "rounds", "dtype", "adapter") and v),  # fmt: skip
        "adapter": args.adapter,
        "cpu": cpu_description(), "threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "vllm": worker.version, "dtype": args.dtype, "n_prompts": len(rows),
        "max_new_tokens": args.max_new_tokens, "rounds": args.rounds,
        "seconds": med, "sentences_per_second": {k: len(rows) / v for k, v in med.items()},
        "ratio_vllm_over_midalign": med["vllm"] / med["midalign"],
        "load_seconds": {"midalign": load_ours, "vllm": load_vllm},
        "identical_outputs": same,
        "example": {"prompt_tail": rows[0]["prompt"][-80:], "midalign": outputs["midalign"][0],
                    "vllm": outputs["vllm"][0]},
    }  # fmt: skip
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, ensure_ascii=False)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
