"""`ladder serve`'s set-up: who can reach it, and the warning when anyone can without a key."""

from __future__ import annotations

import pytest

from ladder.serve.server import exposure_warning, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_without_a_key_warns():
    warning = exposure_warning("0.0.0.0", None)
    assert warning is not None and warning.startswith("warning: serving on 0.0.0.0")
    assert "--api-key-env" in warning and "\n" not in warning
    assert exposure_warning("0.0.0.0", "k") is None
    assert exposure_warning("127.0.0.1", None) is None
