"""File helpers: atomic writes (a reader never sees a half-written file) and checksums.

Each helper writes to a temporary file in the target's folder and then `os.replace`s it over the
target, which is atomic on POSIX and Windows when both are on the same filesystem. What ladder
writes gets the modes any other tool's files get under the umask (0644 and 0755 under umask
022), not the private 0600/0700 of temporary files.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | Path, write_fn: Callable[[Path], None]) -> Path:
    """Write `path` atomically: `write_fn(tmp_path)` writes a temporary file that then replaces it.

    Parent folders are created. On any error the temporary file is removed and `path` is left
    as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~umask())
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically (UTF-8 by default)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def sha256_file(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_tensors(tensors: dict[str, Any], path: str | Path, metadata: dict | None = None) -> Path:
    """Save torch tensors (or numpy arrays) as safetensors at `path`, with the umask's mode
    (safetensors itself writes 0600)."""
    if any(isinstance(value, np.ndarray) for value in tensors.values()):
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    save_file(tensors, str(path), metadata=metadata)
    Path(path).chmod(0o666 & ~umask())
    return Path(path)


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A new, uniquely named folder in `parent` with the umask's mode (not mkdtemp's 0700), to
    be filled and then renamed into place."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    folder.chmod(0o777 & ~umask())
    return folder


def umask() -> int:
    """The process's umask, read without changing it where Linux's /proc shows it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read (set and restore)
    os.umask(mask)
    return mask
