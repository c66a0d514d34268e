"""Artifact writing is atomic and loading verifies every file."""

from __future__ import annotations

import json

import pytest

from ladder.errors import ArtifactError
from ladder.export.artifact import read_manifest, write_artifact

MANIFEST = {"name": "m", "family": "classical", "labels": [0, 1]}


def write_model(text: str):
    def write(folder):
        (folder / "model.bin").write_text(text)
        return "model.bin"

    return write


def test_written_artifact_verifies(tmp_path):
    folder = write_artifact(tmp_path / "a", MANIFEST, {"kind": "tabular"}, write_model("v1"))
    manifest = read_manifest(folder)
    assert manifest["model_file"] == "model.bin"
    assert set(manifest["files"]) == {"preprocess.json", "labels.json", "model.bin"}
    assert json.loads((folder / "labels.json").read_text()) == [0, 1]


def test_a_failed_write_keeps_the_previous_artifact(tmp_path):
    folder = write_artifact(tmp_path / "a", MANIFEST, {}, write_model("v1"))

    def explode(folder):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(tmp_path / "a", MANIFEST, {}, explode)
    assert (folder / "model.bin").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no staging folder left


def test_rewrite_replaces_the_artifact(tmp_path):
    write_artifact(tmp_path / "a", MANIFEST, {}, write_model("v1"))
    folder = write_artifact(tmp_path / "a", MANIFEST, {}, write_model("v2"))
    assert (folder / "model.bin").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_modified_file_is_detected(tmp_path):
    folder = write_artifact(tmp_path / "a", MANIFEST, {}, write_model("v1"))
    (folder / "model.bin").write_text("evil")
    with pytest.raises(ArtifactError, match=r"model\.bin: checksum mismatch"):
        read_manifest(folder)


def test_modified_manifest_is_detected(tmp_path):
    folder = write_artifact(tmp_path / "a", MANIFEST, {}, write_model("v1"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["labels"] = [1, 0]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="manifest checksum mismatch"):
        read_manifest(folder)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "labels.json").unlink(), "labels.json is missing"),
        (lambda f: (f / "manifest.json").unlink(), "not an artifact"),
        (lambda f: (f / "manifest.json").write_text("{"), "not valid JSON"),
        (lambda f: (f / "manifest.json").write_text('{"format_version": 99}'), "unsupported"),
    ],
)
def test_incomplete_or_broken_artifacts(tmp_path, damage, message):
    folder = write_artifact(tmp_path / "a", MANIFEST, {}, write_model("v1"))
    damage(folder)
    with pytest.raises(ArtifactError, match=message):
        read_manifest(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(ArtifactError, match="no such artifact folder"):
        read_manifest(tmp_path / "nothing")
