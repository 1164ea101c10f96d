"""What the CPU can do fast: bf16 matrix units or not.

On a CPU with native bf16 matrix instructions (Intel AMX ``amx_bf16``, or AVX-512 ``avx512_bf16``) torch runs bf16
matmuls on oneDNN, 1.2-10x faster than float32. On a CPU without them (e.g. an AVX2-only AMD EPYC) torch falls back
to a scalar bf16 kernel, many times slower than float32 (``benchmarks/bf16.py --matmul-only``; the docs' bf16 page
has the figures). So "bf16" is a choice that depends on the machine: ``resolve_dtype``
turns ``"auto"`` into bf16 only where it is native, and :func:`warn_if_slow_bf16` says so when bf16 is asked for
on a CPU without it.
"""

from __future__ import annotations

import functools
import logging

import torch

__all__ = ["cpu_bf16_native", "cpu_description", "resolve_dtype", "warn_if_slow_bf16"]

logger = logging.getLogger("midalign")
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def cpu_bf16_native() -> bool:
    """True when the CPU has bf16 matrix instructions torch uses (AMX-BF16 or AVX512-BF16)."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        if (probe and probe()) or (amx and amx()):
            return True
    except RuntimeError:
        pass
    return bool(_cpu_flags() & set(_BF16_FLAGS))


def cpu_description() -> str:
    """CPU model name and torch's vector capability, e.g. ``"AMD EPYC (AVX2, no bf16 units)"``."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cap = torch.backends.cpu.get_cpu_capability()
    return f"{name} ({cap}, {'bf16 units' if cpu_bf16_native() else 'no bf16 units'})"


def resolve_dtype(dtype: str, device: str = "cpu") -> str:
    """``"auto"`` -> ``"bfloat16"`` on a GPU or a CPU with bf16 units, else ``"float32"``; other names unchanged."""
    if dtype != "auto":
        return dtype
    if device != "cpu" or cpu_bf16_native():
        return "bfloat16"
    return "float32"


_warned = False


def warn_if_slow_bf16(dtype, what: str = "bfloat16") -> None:
    """One warning per process when bf16 compute is asked for on a CPU without bf16 units (it runs, slowly)."""
    global _warned
    if _warned or dtype not in ("bfloat16", torch.bfloat16) or torch.cuda.is_available() or cpu_bf16_native():
        return
    _warned = True
    logger.warning(
        "%s on %s: without bf16 matrix instructions torch runs bf16 matmuls on a scalar fallback, far slower than "
        "float32 (`python benchmarks/bf16.py --matmul-only` measures it). Use float32 on this machine (drop --bf16 "
        "/ --dtype bfloat16; the experiments' --dtype auto does this).",
        what,
        cpu_description(),
    )
