"""Atomic writes: a reader never sees half a file, and files get the umask's modes."""

from __future__ import annotations

import os
import stat

import pytest

from ladder.io import atomic_write, atomic_write_text, make_temp_dir, umask


@pytest.fixture
def mask(request):
    """Run the test under the umask it is parametrized with."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077], indirect=True)
def test_written_files_and_folders_follow_the_umask(tmp_path, mask):
    assert umask() == mask
    path = atomic_write_text(tmp_path / "a" / "metrics.json", "{}")
    assert mode(path) == 0o666 & ~mask  # 0644 under umask 022, not mkstemp's 0600
    folder = make_temp_dir(tmp_path, ".artifact-")
    assert mode(folder) == 0o777 & ~mask  # 0755 under 022, not mkdtemp's 0700


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = atomic_write_text(tmp_path / "x.txt", "old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]  # no temp file left
