import json

import pytest

pytestmark = pytest.mark.slow


def test_quick_mode_end_to_end(tmp_path):
    from midalign.bench.transfer import main

    result = main(
        [
            "--quick",
            "--work-dir",
            str(tmp_path / "work"),
            "--fig-dir",
            str(tmp_path / "fig"),
            "--pretrain-steps",
            "150",
            "--finetune-steps",
            "30",
        ]
    )
    summary = result["summary"]
    assert {(r["method"], r["language"]) for r in summary} == {
        (m, lang) for m in ("baseline", "alignment") for lang in ("src", "sov", "cyr")
    }
    assert all(0.0 <= r["f1_mean"] <= 1.0 for r in summary)
    runs = result["runs"]
    assert len(runs) == 2 and runs[1]["final_align_loss"] is not None and runs[0]["final_align_loss"] is None
    assert len(runs[0]["retrieval_by_layer"]["sov"]) == 5  # embeddings + 4 layers
    saved = json.loads((tmp_path / "fig" / "transfer_quick.json").read_text())
    assert saved["config"]["seeds"] == [0]
    assert (tmp_path / "fig" / "transfer_quick.png").stat().st_size > 1000
