"""The Makefile's set-up: torch is installed first, from an index the user may choose."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned(*args: str) -> list[str]:
    """The commands `make install` would run (dry run, as if nothing were installed)."""
    done = subprocess.run(
        ["make", "-n", "-B", "install", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def torch_line(lines: list[str]) -> str:
    return next(line for line in lines if "torch==" in line)


def test_torch_comes_from_the_default_index_unless_told():
    assert torch_line(planned()).endswith("pip install -q torch==2.13.0")


def test_torch_index_takes_the_cpu_build():
    lines = planned("TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    expected = "pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert torch_line(lines).endswith(expected)
    assert lines.index(torch_line(lines)) < next(
        i for i, line in enumerate(lines) if "install -q -e " in line
    )  # torch first, so the package never resolves an unpinned torch
