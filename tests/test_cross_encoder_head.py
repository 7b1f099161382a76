"""A checkpoint without a trained classification head is refused as a cross-encoder in one line (a
bi-encoder passed as --reranker cross-encoder:PATH ran 275 s with a randomly initialised head); a trained
cross-encoder loads as before; --allow-new-head scores anyway, with a warning."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from lmeb.cli import main as cli
from lmeb.errors import LmebError, LmebWarning


def test_a_bi_encoder_as_reranker_is_one_line_before_any_work(minilm_path: Path, sample_data: Path,
                                                              tmp_path: Path, capsys, monkeypatch) -> None:
    for heavy in ("torch", "sentence_transformers"):  # refused before either is imported (seconds of work)
        monkeypatch.setitem(sys.modules, heavy, None)
    rc = cli(["run", "--model", "bm25", "--reranker", f"cross-encoder:{minilm_path}", "--tasks",
              "Gorilla/gorilla_tensor", "--data", str(sample_data), "--output", str(tmp_path / "out"), "--no-cache",
              "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "has no trained classification head" in err and "(BertModel)" in err and "--allow-new-head" in err
    assert not (tmp_path / "out").exists()


def test_the_check_reads_the_saved_architectures(tmp_path: Path) -> None:
    from lmeb.models.cross_encoder import check_trained_head, saved_architectures

    (tmp_path / "config.json").write_text('{"architectures": ["XLMRobertaForSequenceClassification"]}')
    assert saved_architectures(tmp_path) == ["XLMRobertaForSequenceClassification"]
    check_trained_head(saved_architectures(tmp_path), "m", allow_new_head=False)  # a trained head: accepted
    assert saved_architectures(tmp_path / "none") is None  # no local config: checked after loading instead
    with pytest.raises(LmebError, match="no architecture"):
        check_trained_head([], "m", allow_new_head=False)
    with pytest.warns(LmebWarning, match="allow-new-head"):
        check_trained_head(["BertModel"], "m", allow_new_head=True)


@pytest.mark.slow
def test_allow_new_head_loads_the_bi_encoder_with_a_warning(minilm_path: Path, tmp_path: Path) -> None:
    from lmeb.models.cross_encoder import CrossEncoderReranker

    local = shutil.copytree(minilm_path, tmp_path / "bi")
    with pytest.warns(LmebWarning, match="randomly initialised"):
        model = CrossEncoderReranker(local, device="cpu", allow_new_head=True)
    assert model.score([("a query", "a passage")]).shape == (1,)
