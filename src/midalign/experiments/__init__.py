"""Experiments: real-data studies (xSID, the method comparison, SIB-200) and the synthetic transfer study, all on
one harness (:mod:`midalign.experiments.harness`). Speed benchmarks live in ``benchmarks/``, not here."""

EXPERIMENTS = {
    "transfer": "midalign.experiments.transfer:main",
    "xsid": "midalign.experiments.xsid:main",
    "methods": "midalign.experiments.methods:main",
    "sib200": "midalign.experiments.sib200:main",
    "powered": "midalign.experiments.powered:main",
}


def main(argv: list[str]) -> None:
    """``midalign experiment {transfer,xsid,methods,sib200,powered}``."""
    import importlib

    from ..dispatch import dispatch

    def load(target):
        module, fn = target.split(":")
        return lambda rest: getattr(importlib.import_module(module), fn)(rest)

    dispatch("midalign experiment", {name: load(t) for name, t in EXPERIMENTS.items()}, argv)
