"""An API model's identity is what the server serves, not only its name (issue 18: a different model under the
same ``openai:`` name mixed old document vectors with new query vectors). The test server of
tests/test_openai_api.py serves MiniLM, or "another model" (MiniLM reading each text backwards)
under the same name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lmeb.errors import LmebWarning
from tests.test_openai_api import Server, api, server  # noqa: F401  (the fixtures, reused; skips without openai)


def _score(res: Any) -> float:
    return res[0].score("gorilla_tensor")


def test_probe_vectors_decide_the_served_identity(tmp_path: Path) -> None:
    from lmeb.models.api_probe import STORE_NAME, served_identity

    base = {"class": "OpenAIEncoder", "model": "m", "api_base": "http://x/v1"}
    a = np.array([1.0, 0.0, 0.5])
    assert served_identity(base, a, tmp_path, "openai:m") is None  # the first model: its plain identity
    assert served_identity(base, a * 1.00001 + 1e-7, tmp_path, "openai:m") is None  # float noise: the same model
    with pytest.warns(LmebWarning, match="openai:m answers the probe text with another vector"):
        other = served_identity(base, np.array([0.0, 1.0, 0.5]), tmp_path, "openai:m")
    assert other and served_identity(base, np.array([0.0, 1.0, 0.5]), tmp_path, "openai:m") == other
    with pytest.warns(LmebWarning):
        assert served_identity(base, np.array([1.0, 0.0]), tmp_path, "openai:m") not in (None, other)  # another size
    assert served_identity({**base, "model": "n"}, np.array([0.0, 1.0, 0.5]), tmp_path, "openai:n") is None
    assert len(json.loads((tmp_path / STORE_NAME).read_text())) == 2  # one entry list per (name, URL, options)


@pytest.mark.slow
def test_another_model_under_the_same_name_gets_its_own_cache_and_results(api: Server, sample_data: Path,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    import warnings

    import lmeb

    options = {"api_base": api.url, "batch_size": 64, "concurrency": 1, "timeout": 60.0}
    common = {"tasks": "Gorilla/gorilla_tensor", "data": sample_data, "model_options": options}
    spec = "openai:all-MiniLM-L6-v2"
    with warnings.catch_warnings():
        warnings.simplefilter("error", LmebWarning)  # the first model seen: no warning, its plain identity
        first = lmeb.evaluate(spec, cache_dir=tmp_path / "cache", output=tmp_path / "res", **common)
    assert "served" not in first[0].provenance["model_config"]

    api.variant = True  # another model, the same name
    clean = _score(lmeb.evaluate(spec, cache_dir=tmp_path / "fresh", **common))  # its own cache, no output
    assert clean != _score(first)
    with pytest.warns(LmebWarning, match=r"answers the probe text with another vector than before: a different "
                                         r"model is served under this name, so it gets its own cache namespace"):
        second = lmeb.evaluate(spec, cache_dir=tmp_path / "cache", output=tmp_path / "res", **common)
    assert _score(second) == clean  # no old document vectors with new query vectors, no kept subset
    assert second.summaries[0].subsets_run == 1
    assert second[0].provenance["model_config"]["served"]

    api.variant = False  # the first model back: its old namespace and results, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", LmebWarning)
        third = lmeb.evaluate(spec, cache_dir=tmp_path / "cache", output=tmp_path / "res", **common)
    assert _score(third) == _score(first) and third[0].provenance["model_config"] == first[0].provenance["model_config"]


def test_the_probe_names_the_server_without_its_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The served-model warning names the API as every other message does: no user, password or query."""
    from lmeb.cache import Cache
    from lmeb.models import api_probe
    from lmeb.models.openai_api import OpenAIEncoder

    encoder = OpenAIEncoder("m", api_base="http://user:s3cret@127.0.0.1:9/v1?key=s3cret", cache=Cache(tmp_path))
    monkeypatch.setattr(encoder, "_request", lambda texts: np.ones((len(texts), 3)))
    named: list[str] = []
    monkeypatch.setattr(api_probe, "served_identity", lambda base, vector, cache, where: named.append(where))
    encoder.config()
    assert named == [encoder.where] and "s3cret" not in named[0] and "127.0.0.1:9" in named[0]
