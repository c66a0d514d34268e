"""The "try it" page served at `/`: one self-contained HTML file (inline CSS and JS, requests
to its own server only) that lists the served models, builds a form from the chosen model's
schema and shows its prediction."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def try_page() -> str:
    """The page's HTML (read once from the package's templates)."""
    template = resources.files("ladder.serve").joinpath("templates/try.html")
    return template.read_text(encoding="utf-8")
