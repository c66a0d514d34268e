"""Where tracking goes: the tracking URI of a config, shown without its password, and whether
an MLflow server answers before ladder relies on it."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.parse
import urllib.request

from ladder.config import Config

PROBE_TIMEOUT_S = 3.0


def tracking_uri(config: Config) -> str | None:
    """The config's `tracking.mlflow`, else $MLFLOW_TRACKING_URI; None: tracking is off."""
    uri = config.tracking.mlflow or os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri.strip() or None


def host_port(uri: str) -> str:
    """The host:port an http(s) URI points at (the scheme's default port when it names none)."""
    parts = urllib.parse.urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def unreachable(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the MLflow server at an http(s) `uri` does not answer GET /health within `timeout`
    seconds, or None when it answers (any HTTP status) or the URI is not http(s)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    plain = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="")
    health = urllib.parse.urlunsplit(plain).rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered: a proxy or an auth wall in front of MLflow is still a server
    except (urllib.error.URLError, OSError) as exc:
        return _reason(getattr(exc, "reason", exc), timeout)


def _reason(reason: object, timeout: float) -> str:
    """A short, lower-case reason for a failed connection."""
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror[:1].lower() + reason.strerror[1:]
    return str(reason)
