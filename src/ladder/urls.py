"""URLs shown to people: a password in one is never printed or written."""

from __future__ import annotations

import urllib.parse


def redacted(url: str) -> str:
    """`url` with the password of its user:password@ part replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
