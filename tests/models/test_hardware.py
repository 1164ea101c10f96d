"""bf16 is chosen by what the CPU can do: ``auto`` resolves to bf16 only with bf16 matrix units, and bf16 asked for
on a CPU without them is one warning (it runs ~100x slower there than float32)."""

import logging

import pytest

from midalign.models import hardware


@pytest.fixture
def cpu(monkeypatch):
    def set_native(native: bool):
        monkeypatch.setattr(hardware, "cpu_bf16_native", lambda: native)
        monkeypatch.setattr(hardware, "_warned", False)

    return set_native


@pytest.mark.parametrize("native, expected", [(True, "bfloat16"), (False, "float32")])
def test_auto_is_bf16_only_with_bf16_units(cpu, native, expected):
    cpu(native)
    assert hardware.resolve_dtype("auto") == expected
    assert hardware.resolve_dtype("auto", device="cuda") == "bfloat16"
    assert hardware.resolve_dtype("float32") == "float32" and hardware.resolve_dtype("bfloat16") == "bfloat16"


def test_bf16_without_units_is_warned_once(cpu, caplog):
    cpu(False)
    with caplog.at_level(logging.WARNING, logger="midalign"):
        hardware.warn_if_slow_bf16("float32")
        assert not caplog.records
        hardware.warn_if_slow_bf16("bfloat16", "--bf16 True")
        hardware.warn_if_slow_bf16("bfloat16", "--bf16 True")
    assert len(caplog.records) == 1
    assert "--bf16 True on" in caplog.text and "no bf16 units" in caplog.text and "float32" in caplog.text


def test_no_warning_with_bf16_units(cpu, caplog):
    cpu(True)
    with caplog.at_level(logging.WARNING, logger="midalign"):
        hardware.warn_if_slow_bf16("bfloat16")
    assert not caplog.records


def test_the_probe_agrees_with_the_cpu_flags():
    flags = hardware._cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags on this system")
    hardware.cpu_bf16_native.cache_clear()
    assert hardware.cpu_bf16_native() == bool(flags & {"amx_bf16", "avx512_bf16"})
