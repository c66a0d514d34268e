"""resolve_pretrained: local folders, the Hugging Face cache, offline mode and the hub.

Nothing here touches the network beyond 127.0.0.1. huggingface_hub freezes its environment
variables at import, so these tests set the variables ladder reads on each call, and pin the
library's own offline flag where a test needs it "online".
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from ladder.errors import LadderError
from ladder.hub import hf_offline, hub_cache_dir, resolve_pretrained

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache in tmp_path, online mode, no custom endpoint."""
    import huggingface_hub.constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    # the library read HF_HUB_OFFLINE when first imported; "online" tests need it off too
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf" / "hub"


def fake_cached_model(cache: Path, repo_id: str) -> Path:
    """The layout snapshot_download leaves in the cache: refs/main -> snapshots/<commit>/."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "bert"}')
    return snapshot


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_local_folder_with_config_is_returned(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_pretrained(str(tmp_path)) == tmp_path.resolve()


def test_relative_local_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert resolve_pretrained("enc") == (tmp_path / "enc").resolve()


def test_folder_without_config_json_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(LadderError, match=r"no config\.json") as info:
        resolve_pretrained(str(tmp_path))
    assert str(tmp_path) in str(info.value)
    assert "save_pretrained" in str(info.value)


@pytest.mark.parametrize("path", ["./no-such-model", "../no/such/model", "~/no-such-model-xyz"])
def test_missing_local_path(path: str) -> None:
    with pytest.raises(LadderError, match="no such folder"):
        resolve_pretrained(path)


def test_missing_absolute_path(tmp_path: Path) -> None:
    with pytest.raises(LadderError, match="no such folder"):
        resolve_pretrained(str(tmp_path / "missing"))


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(LadderError, match="not a folder"):
        resolve_pretrained(str(tmp_path / "weights.bin"))


@pytest.mark.parametrize("bad", ["bad id!", "a/b/c", "org/na me", "org/a..b", "x--y"])
def test_bad_hub_ids_are_named(bad: str, hf_env: Path) -> None:
    with pytest.raises(LadderError) as info:
        resolve_pretrained(bad)
    assert repr(bad) in str(info.value)


def test_empty_path_is_rejected() -> None:
    with pytest.raises(LadderError, match="empty"):
        resolve_pretrained(" ")


@pytest.mark.parametrize("value", ["1", "TRUE", "yes", "On", " true "])
def test_hf_offline_truthy(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hf_offline()


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
def test_hf_offline_falsy(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert not hf_offline()


def test_cache_dir_follows_the_environment_now(tmp_path: Path, hf_env: Path, monkeypatch) -> None:
    assert hub_cache_dir() == hf_env
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"


def test_offline_and_not_cached(hf_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LadderError, match="HF_HUB_OFFLINE is set") as info:
        resolve_pretrained("some-org/some-model")
    assert "'some-org/some-model' is not a local folder nor in the Hugging Face cache" in str(
        info.value
    )


def test_offline_finds_a_cached_snapshot(hf_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the cache lives where HF_HUB_CACHE points now, not where it pointed at import
    snapshot = fake_cached_model(hf_env, "some-org/tiny-bert")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_pretrained("some-org/tiny-bert") == snapshot


def test_cached_snapshot_is_used_without_touching_the_hub(
    hf_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = fake_cached_model(hf_env, "tiny-bert")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert resolve_pretrained("tiny-bert") == snapshot


def test_unreachable_hub_fails_fast(hf_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    start = time.perf_counter()
    with pytest.raises(LadderError, match=r"cannot reach the Hugging Face hub \(127\.0\.0\.1\)"):
        resolve_pretrained("some-org/some-model")
    assert time.perf_counter() - start < 5
    assert not any(hf_env.glob("models--*"))  # nothing was written to the cache


class _NotFoundHandler(http.server.BaseHTTPRequestHandler):
    """A hub that knows no repository (the answer the real hub gives for unknown ids)."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("X-Error-Message", "Repository not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


def test_unknown_repository_is_named(hf_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFoundHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(LadderError, match="no model 'some-org/nope' on the Hugging Face hub"):
            resolve_pretrained("some-org/nope")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
