"""The README and docs/ stand alone in a clone, and their examples are what ladder prints."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import write_config

from ladder.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_design_and_contracts_are_in_the_repository():
    design = (ROOT / "docs/DESIGN.md").read_text()
    for contract in ("## CLI contract", "## Config contract", "## Run folder contract"):
        assert contract in design
    assert "docs/DESIGN.md" in (ROOT / "README.md").read_text()


def test_no_document_sends_the_reader_outside_the_repository():
    for doc in DOCS:
        text = " ".join(doc.read_text().split())  # one line: phrases may wrap
        assert "../shared" not in text and "shared DESIGN" not in text, doc.name
        for target in re.findall(r"\]\(([^)#]+)\)", text):  # markdown links to files
            if not target.startswith(("http://", "https://")):
                path = (doc.parent / target).resolve()
                assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: {target}"


def header_cells(text: str) -> list[str]:
    """The column names of the first rich table header (┃ a ┃ b ┃) in `text`."""
    line = next(line for line in text.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.strip("┃").split("┃")]


def test_the_readme_leaderboard_has_the_columns_ladder_prints(tmp_path, table_csv, capsys):
    models = [
        {"name": "logreg", "type": "logistic_regression"},
        {"name": "tree", "type": "decision_tree"},
    ]
    config = write_config(tmp_path, str(table_csv), models, evaluate={"bootstrap": 50})
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0
    printed = header_cells(capsys.readouterr().out)
    readme = (ROOT / "README.md").read_text()
    example = readme[readme.index("$ ladder run examples/digits.yaml") :]
    assert header_cells(example) == printed


def test_the_readme_config_is_a_valid_config():
    import yaml

    from ladder.config import validate_config

    readme = (ROOT / "README.md").read_text()
    block = readme.split("## The config\n\n```yaml\n", 1)[1].split("```", 1)[0]
    config = validate_config(yaml.safe_load(block))
    assert config.data.task == "auto" and config.model("mlp").train.loss == "auto"
