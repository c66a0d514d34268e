"""Finding a pretrained model on disk: a local folder, the Hugging Face cache, or the hub.

huggingface_hub reads `HF_HUB_OFFLINE`, `HF_ENDPOINT` and the cache location from the
environment once, when it is first imported. Ladder reads them on every call instead and passes
the cache folder and endpoint explicitly, so what the user (or a test) set last is what counts.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from ladder.errors import LadderError

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # an unreachable hub should fail in seconds, not hang on retries
HUB_ID = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")  # name or org/name

# What a fine-tune needs and nothing more: no pickled .bin weights, no ONNX/TF/Flax copies.
DOWNLOAD_PATTERNS = [
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "*.model",  # sentencepiece vocabularies
]
SKIP_SUBFOLDERS = ["*/*"]  # onnx/, openvino/, 1_Pooling/ ...: the top-level model is enough

_TRUE = {"1", "true", "yes", "on"}


def hf_offline() -> bool:
    """Whether `HF_HUB_OFFLINE` is set to a truthy value ("1", "true", "yes", "on")."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hub_endpoint() -> str:
    """The hub's base URL: `HF_ENDPOINT` if set, else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_cache_dir() -> Path:
    """The Hugging Face cache folder as the environment names it now (same rules as the hub)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "huggingface" / "hub"


def resolve_pretrained(path_or_id: str) -> Path:
    """The local folder of a pretrained model given as a folder path or a hub id (`org/name`).

    A hub id is looked up in the local cache first; it is downloaded only when not cached and
    `HF_HUB_OFFLINE` is not set. Raises LadderError with what to do instead on any failure.
    """
    if not path_or_id.strip():
        raise LadderError("the pretrained model path is empty: give a local folder or a hub id")
    folder = Path(path_or_id).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise LadderError(
                f"{folder}: not a pretrained model folder: no config.json; expected a folder "
                "written by save_pretrained (config.json, weights, tokenizer)"
            )
        return folder.resolve()
    if _looks_local(path_or_id):
        what = "not a folder" if folder.exists() else "no such folder"
        raise LadderError(f"pretrained model path {path_or_id!r}: {what}")
    if not HUB_ID.fullmatch(path_or_id) or ".." in path_or_id or "--" in path_or_id:
        raise LadderError(
            f"{path_or_id!r} is neither an existing folder nor a Hugging Face hub id "
            "('name' or 'org/name' of letters, digits, '_', '.', '-')"
        )
    cached = _from_cache(path_or_id)
    if cached is not None:
        return cached
    if hf_offline():
        raise LadderError(
            f"{path_or_id!r} is not a local folder nor in the Hugging Face cache, and "
            "HF_HUB_OFFLINE is set; give a local path (or download it once while online)"
        )
    return _download(path_or_id)


def _looks_local(text: str) -> bool:
    """True for strings that can only mean a path on this machine."""
    return os.path.isabs(text) or text.startswith(("./", "../", "~", ".\\", "..\\"))


def _from_cache(repo_id: str) -> Path | None:
    """The cached snapshot folder of `repo_id`, or None when it is not (fully) cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        found = snapshot_download(
            repo_id,
            cache_dir=hub_cache_dir(),
            local_files_only=True,
            allow_patterns=DOWNLOAD_PATTERNS,
            ignore_patterns=SKIP_SUBFOLDERS,
        )
    except LocalEntryNotFoundError:
        return None
    except HFValidationError as exc:
        raise LadderError(f"{repo_id!r} is not a valid Hugging Face hub id: {exc}") from exc
    folder = Path(found)
    return folder if (folder / "config.json").is_file() else None


def ensure_hub_reachable(what: str) -> None:
    """Open (and close) a TCP connection to the hub's host, so that a machine without a route
    fails in seconds with a clear LadderError naming `what` instead of hanging on retries."""
    endpoint = hub_endpoint()
    url = urlsplit(endpoint)
    host = url.hostname or endpoint
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise LadderError(
            f"cannot reach the Hugging Face hub ({host}) to download {what}: {exc}; "
            "give a local path or set HF_HUB_OFFLINE=1"
        ) from exc


def _download(repo_id: str) -> Path:
    """Download the config, safetensors weights and tokenizer of `repo_id` into the cache."""
    ensure_hub_reachable(repr(repo_id))
    endpoint = hub_endpoint()
    host = urlsplit(endpoint).hostname or endpoint

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        found = snapshot_download(
            repo_id,
            cache_dir=hub_cache_dir(),
            endpoint=endpoint,
            allow_patterns=DOWNLOAD_PATTERNS,
            ignore_patterns=SKIP_SUBFOLDERS,
        )
    except GatedRepoError as exc:
        raise LadderError(
            f"{repo_id!r} is gated on the Hugging Face hub: accept its terms on {endpoint} and "
            "log in (hf auth login), or give a local path"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise LadderError(
            f"no model {repo_id!r} on the Hugging Face hub ({host}): check the id, or log in if "
            "it is private; or give a local folder"
        ) from exc
    except HFValidationError as exc:
        raise LadderError(f"{repo_id!r} is not a valid Hugging Face hub id: {exc}") from exc
    except LocalEntryNotFoundError as exc:
        raise LadderError(f"could not download {repo_id!r} from {host}: {exc}") from exc
    except Exception as exc:  # network and HTTP failures come in many classes; all mean the same
        raise LadderError(
            f"could not download {repo_id!r} from {host}: {type(exc).__name__}: {exc}"
        ) from exc
    folder = Path(found)
    if not (folder / "config.json").is_file():
        raise LadderError(f"{repo_id!r} on the Hugging Face hub has no config.json")
    if not any(folder.glob("*.safetensors")):
        raise LadderError(
            f"{repo_id!r} on the Hugging Face hub has no safetensors weights; ladder does not "
            "load pickled (.bin) checkpoints from the hub"
        )
    return folder
