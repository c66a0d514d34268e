"""A real, throwaway PostgreSQL server for the tests: a fresh cluster in a temporary folder,
listening on 127.0.0.1 only (its unix socket inside that folder), trust auth, fsync off.

    from pg_server import postgres_server

    with postgres_server() as url:  # postgresql://ladder@127.0.0.1:PORT/ladder_tune
        ...

The binaries come from PATH or from Debian's /usr/lib/postgresql/<version>/bin (`.ci/run`
installs the `postgresql` package). PostgreSQL refuses to run as root, so as root (CI) the
server runs as the `postgres` user (`nobody` where there is none) and owns the folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "ladder"
DATABASE = "ladder_tune"
TOOLS = ("initdb", "pg_ctl", "createdb")
TIMEOUT_S = 60  # pg_ctl's own default wait for start and stop
INITDB_OPTIONS = ("-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync")


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and createdb: PATH first, else the newest Debian one."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    version = re.compile(r"/postgresql/(\d+)(?:\.(\d+))?/")

    def newest_first(path: str) -> tuple[int, int]:
        match = version.search(path + "/")
        return (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)

    candidates += [Path(path) for path in sorted(debian, key=newest_first, reverse=True)]
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in TOOLS):
            return folder
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerUser:
    """Who the server processes run as: None for the current user, else a passwd entry."""

    entry: pwd.struct_passwd | None

    @classmethod
    def pick(cls) -> ServerUser:
        """The current user, or, as root, `postgres` (Debian's package creates it) or `nobody`."""
        if os.geteuid() != 0:
            return cls(None)
        for name in ("postgres", "nobody"):
            try:
                return cls(pwd.getpwnam(name))
            except KeyError:
                continue
        pytest.skip("running as root, and neither a `postgres` nor a `nobody` user exists")

    def give(self, path: Path) -> None:
        """Hand `path` over to the server's user (a no-op when that is us)."""
        if self.entry is not None:
            os.chown(path, self.entry.pw_uid, self.entry.pw_gid)

    def run(self, *command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        """Run a command as this user; raise naming it and its output if it fails."""
        args = [str(part) for part in command]
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(HOME=str(cwd), LC_ALL="C")
        as_user = {}
        if self.entry is not None:
            env.update(USER=self.entry.pw_name, LOGNAME=self.entry.pw_name)
            as_user = {"user": self.entry.pw_uid, "group": self.entry.pw_gid, "extra_groups": []}
        done = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S + 30,
            check=False,
            **as_user,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
            )
        return done


def _log_tail(log: Path, lines: int = 30) -> str:
    """The end of the server log, for an error message."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh PostgreSQL cluster with a `ladder_tune` database; yield its SQLAlchemy URL.

    Stops the server (`pg_ctl stop -m fast`) and deletes its folder on exit. Skips the test
    only when no PostgreSQL binaries are installed; any other failure raises.
    """
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL binaries (initdb, pg_ctl, createdb) are neither on PATH nor in "
            "/usr/lib/postgresql/*/bin (Debian package: postgresql)"
        )
    user = ServerUser.pick()
    root = Path(tempfile.mkdtemp(prefix="ladder-pg-"))
    data, sockets, log = root / "data", root / "socket", root / "server.log"
    try:
        sockets.mkdir()
        for path in (root, sockets):
            user.give(path)
        user.run(bindir / "initdb", "-D", data, *INITDB_OPTIONS, cwd=root)
        # A throwaway cluster: durability off makes commits (every Optuna trial update) cheap.
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{sockets}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        for attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            config = {**settings, "port": str(port)}
            with (data / "postgresql.conf").open("a") as conf:  # the last setting wins
                conf.writelines(f"{key} = {value}\n" for key, value in config.items())
            try:
                user.run(bindir / "pg_ctl", "start", "-w", "-D", data, "-l", log, cwd=root)
            except RuntimeError as error:
                if attempt == 2 or "could not bind" not in _log_tail(log):
                    raise RuntimeError(f"{error}\nserver log:\n{_log_tail(log)}") from None
                continue
            break
        client = ("-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER)
        user.run(bindir / "createdb", *client, DATABASE, cwd=root)
        yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        try:
            if (data / "postmaster.pid").exists():  # also after a start that timed out
                user.run(bindir / "pg_ctl", "stop", "-m", "fast", "-w", "-D", data, cwd=root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
