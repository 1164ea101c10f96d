"""The task registry: lookup, the shared interface on the committed SIB-200 sample, clear errors."""

import pytest

from midalign.tasks.registry import TASKS, Task, get_task, register
from tests.conftest import ROOT


def test_registered_tasks_share_one_interface():
    assert {"sib200", "xsid"} <= set(TASKS)
    task = get_task("sib200")
    sample = str(ROOT / "tests" / "assets" / "sib200")
    assert "deu_Latn" in task.languages(sample)
    examples = task.load("deu_Latn", "test", sample)
    scores = task.score(examples, [e.category for e in examples])
    assert scores["accuracy"] == 1.0 and task.kind == "labels"


def test_unknown_and_duplicate_tasks_are_errors():
    with pytest.raises(ValueError, match="unknown task 'nope'; choose one of .*sib200"):
        get_task("nope")
    with pytest.raises(ValueError, match="registered twice"):
        register(Task("sib200", "labels", list, list, list, ""))


def test_xsid_languages_are_the_files_present(tmp_path):
    from midalign.tasks import xsid

    (tmp_path / "nl.test.conll").write_text("")
    (tmp_path / "en.valid.conll").write_text("")
    assert xsid.available_languages(str(tmp_path)) == ["en", "nl"]
    assert xsid._check_lang("nl", str(tmp_path)) == "nl"
    with pytest.raises(ValueError, match="files in"):
        xsid._check_lang("xx", str(tmp_path))
