"""The README's NumPy training example runs as written and prints what the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    return text[start : text.index("\n## ", start + len(heading))]


def test_the_readme_numpy_example_prints_its_stated_accuracy() -> None:
    section = _section(README.read_text(), "## From scratch: the formulas in NumPy")
    code = re.search(r"```python\n(.*?)```", section, re.S)
    claimed = re.search(r"prints `(test accuracy [0-9.]+)`", section)
    assert code is not None and claimed is not None
    assert "import torch" not in code.group(1)
    done = subprocess.run(
        [sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == claimed.group(1)
