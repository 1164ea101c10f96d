"""Synthetic benchmarks that run on a CPU."""


def main(argv: list[str]) -> None:
    """``midalign bench {transfer,xsid,methods}``."""
    from ..dispatch import dispatch
    from . import methods, transfer, xsid

    dispatch("midalign bench", {"transfer": transfer.main, "xsid": xsid.main, "methods": methods.main}, argv)
