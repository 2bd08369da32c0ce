"""Hypothesis profiles: a fast default, a thorough ``ci`` profile (CI=true or HYPOTHESIS_PROFILE=ci)."""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import rxresilience as rxr

from ._postgres_server import (  # postgres_server: a fixture, for every test
    PostgresServer,
    fresh_name,
    postgres_pool,  # noqa: F401
    postgres_server,  # noqa: F401
)
from ._redis_server import RedisClusterServer, RedisServer

settings.register_profile("default", max_examples=100, deadline=None, print_blob=True)
settings.register_profile(
    "ci",
    max_examples=400,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# CI (which sets CI=true) runs the thorough profile unless told otherwise.
_default_profile = "ci" if os.environ.get("CI") else "default"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default_profile))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole session (never a fake, never skipped)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisClusterServer]:
    """One real Redis Cluster (a single node serving every slot) for the session."""
    server = RedisClusterServer(tmp_path_factory.mktemp("redis-cluster"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def breaker_on(request: pytest.FixtureRequest) -> Callable[..., rxr.CircuitBreaker]:
    """Build breakers whose state lives in memory, or in a real Redis."""

    def make(**settings: Any) -> rxr.CircuitBreaker:
        if request.param == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            settings["storage"] = rxr.RedisBreakerStorage(
                server.client(), name=uuid.uuid4().hex
            )
        return rxr.CircuitBreaker(**settings)

    return make


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    """An idempotency store: in memory, on SQLite, or on a real Redis or PostgreSQL."""
    if request.param == "memory":
        yield rxr.InMemoryIdempotencyStore()
    elif request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        pg_store = rxr.PostgresIdempotencyStore(server.url, table=fresh_name())
        yield pg_store
        pg_store.close()
    elif request.param == "redis":
        server = request.getfixturevalue("redis_server")
        yield rxr.RedisIdempotencyStore(server.client(), prefix=f"{tmp_path.name}:")
    else:
        sqlite_store = rxr.SQLiteIdempotencyStore(tmp_path / "idempotency.db")
        yield sqlite_store
        sqlite_store.close()
