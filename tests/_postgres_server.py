"""A real PostgreSQL server for the tests: started on a free port, stopped after.

The binaries come from the ``pgserver`` wheel (a test dependency: PostgreSQL
in a wheel), else from ``postgres`` on PATH, so ``make test`` gets a server
by itself on a fresh machine. PostgreSQL refuses to run as root: as root the
server runs as the system user ``pgserver`` (the one the ``pgserver`` wheel
makes for itself; created with ``useradd`` if missing), and the data
directory, under the test's temporary folder, is handed to it. If no server
can be started the PostgreSQL tests fail: they are never skipped.

``postgres_server`` is the session's server (one per test session: each test
uses fresh table names on it); a test that stops and starts a server makes
its own :class:`PostgresServer`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pathlib
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

#: The system user a server runs as when the tests run as root.
SERVER_USER = "pgserver"


def _bin_dir() -> pathlib.Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        folder = pathlib.Path(next(iter(spec.submodule_search_locations)))
        if (folder / "pginstall" / "bin" / "pg_ctl").exists():
            return folder / "pginstall" / "bin"
    found = shutil.which("pg_ctl") or shutil.which("postgres")
    if found is None:
        raise RuntimeError("no PostgreSQL: pip install pgserver, or put pg_ctl on PATH")
    return pathlib.Path(os.path.realpath(found)).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_user() -> str | None:
    """Who runs the server: ``pgserver`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SERVER_USER],
            check=True,
            capture_output=True,
        )
    return SERVER_USER


def _let_through(folder: pathlib.Path) -> None:
    """Let other users traverse the folders above ``folder`` (x, never r)."""
    for parent in folder.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


class PostgresServer:
    """One PostgreSQL server in a folder of its own, on a free TCP port.

    ``settings`` are ``postgres -c`` settings (``fsync=off`` for speed on the
    session's server; the restart test keeps the defaults).
    """

    def __init__(
        self, folder: pathlib.Path, *, settings: dict[str, str] | None = None
    ) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = _free_port()
        self.settings = {"max_connections": "300", **(settings or {})}
        self.bin = _bin_dir()
        self.user = _server_user()
        self.pid = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, connect_timeout=10, **kwargs)

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            # as root, the server's own user and group, no supplementary
            # groups (root's group would be refused by the 0700 folders above)
            user=self.user,
            group=self.user,
            extra_groups=None if self.user is None else [],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.folder,
        )
        if done.returncode != 0:
            log = self.folder / "server.log"
            text = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr}{done.stdout}\n{text}")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            _let_through(self.folder)
            shutil.chown(self.folder, self.user)
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            )
        options = [
            "-h 127.0.0.1",
            f"-p {self.port}",
            f"-k {self.folder}",
            *(f"-c {name}={value}" for name, value in self.settings.items()),
        ]
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
        )
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop``: ``"fast"`` (a clean shutdown), or ``"immediate"``
        (no checkpoint: the next start replays the WAL, as after a crash)."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        except RuntimeError:
            # pg_ctl could not reach the data directory (a test narrowed the
            # modes of the folders above it): stop the postmaster by its pid
            # (SIGQUIT: PostgreSQL's immediate shutdown).
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGQUIT)


def fresh_name(stem: str = "t") -> str:
    """A table name (or prefix) no other test uses."""
    return f"{stem}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session (never a fake, never skipped)."""
    server = PostgresServer(
        tmp_path_factory.mktemp("postgres"),
        settings={"fsync": "off", "synchronous_commit": "off"},
    )
    server.start()
    yield server
    server.stop("immediate")


@pytest.fixture(scope="session")
def postgres_pool(postgres_server: PostgresServer) -> Iterator[Any]:
    """A ``psycopg_pool.ConnectionPool`` on the session's server (plain
    connections: not autocommit, as a user's pool may be)."""
    import psycopg_pool

    with psycopg_pool.ConnectionPool(
        postgres_server.url, min_size=1, max_size=4, open=True
    ) as pool:
        yield pool
