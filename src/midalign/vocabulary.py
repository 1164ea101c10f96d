"""One spelling per concept across every command line.

Every ``midalign`` command names a concept the same way: a file it writes is ``--output``, a folder it writes is
``--output-dir``, languages are ``--lang`` (comma-separated when several), predictions read back are
``--predictions``, and the alignment settings are spelled as ``midalign train`` spells them
(``--alignment-layer``, ``--alignment-weight``, ``--alignment-temperature``, ``--alignment-pooling``,
``--alignment-center``), optimizer steps ``--max-steps``. The paper's own flags stay as aliases where its scripts
used them (:data:`PAPER_ALIASES`). A spelling retired for its concept's one name is an error that says the new one
(:func:`check_retired`); ``tests/test_vocabulary.py`` fails when a command adds a second spelling.
"""

from __future__ import annotations

__all__ = ["FIELD_FLAGS", "RETIRED", "PAPER_ALIASES", "PAPER_NO_OPS", "flag", "check_retired"]

# a configuration field whose flag is not its own name (experiments derive flags from their config dataclasses)
FIELD_FLAGS = {
    "steps": "--max-steps",
    "layer": "--alignment-layer",
    "align_layer": "--alignment-layer",  # the synthetic transfer experiment's name for it
    "layers": "--num-layers",  # the synthetic model's depth (--layers is a list of layers where it is a flag)
    "weight": "--alignment-weight",
    "temperature": "--alignment-temperature",
    "pooling": "--alignment-pooling",
    "remedy": "--alignment-center",
    "center": "--paper-arm-center",
    "languages": "--lang",
    "work_dir": "--output-dir",
}

# spellings retired for the concept's one name: old spelling -> the name to use
RETIRED = {
    "--output-json": "--output",
    "--results": "--output",
    "--work-dir": "--output-dir",
    "--pred-file": "--predictions",
    "--bsz": "--batch-size",
    "--base": "--model",
    "--langs": "--lang",
    "--languages": "--lang",
    "--center": "--paper-arm-center",
    "--remedy": "--alignment-center",
    "--align-layer": "--alignment-layer",
    "--layer": "--alignment-layer",
    "--steps": "--max-steps",
    "--temperature": "--alignment-temperature",
    "--pooling": "--alignment-pooling",
}

# the paper repository's flags, kept beside our spelling of the same concept
PAPER_ALIASES = {
    "--output-path": "--output",
    "--partition": "--split",
    "--base-model-name": "--model",
    "--peft-model-id": "--adapter",
    "--pred-slots-file": "--predictions",
    "--result-directory": "--output-dir",
}
# the paper's flags that name a default and do nothing (accepted so its commands run unchanged)
PAPER_NO_OPS = ("--use-default-template",)


def flag(field: str) -> str:
    """The command-line flag of a configuration field (``steps`` -> ``--max-steps``, ``test_size`` ->
    ``--test-size``)."""
    return FIELD_FLAGS.get(field, "--" + field.replace("_", "-"))


def check_retired(argv: list[str], command: str) -> None:
    """A retired spelling in ``argv`` is one error naming the spelling to use (not a bare "unrecognized arguments")."""
    for arg in argv:
        if arg == "--":
            return
        name = arg.split("=", 1)[0]
        if name in RETIRED:
            raise ValueError(f"{name} is now spelled {RETIRED[name]} (one spelling per concept in every command; "
                             f"see `midalign {command} --help`)")  # fmt: skip
