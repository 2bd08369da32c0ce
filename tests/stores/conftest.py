"""The ``store`` fixtures: one store of each backend, in turn."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest

import rxresilience as rxr

from .._postgres_server import PostgresServer, fresh_name
from .._redis_server import RedisServer
from ._store_values import odd_prefix


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[Callable[[], rxr.IdempotencyStore]]:
    """Build stores of one backend; Redis ones on a prefix full of glob characters."""
    made: list[rxr.IdempotencyStore] = []

    def make() -> rxr.IdempotencyStore:
        store: rxr.IdempotencyStore
        if request.param == "memory":
            store = rxr.InMemoryIdempotencyStore()
        elif request.param == "postgres":
            pg: PostgresServer = request.getfixturevalue("postgres_server")
            store = rxr.PostgresIdempotencyStore(pg.url, table=fresh_name())
        elif request.param == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            store = rxr.RedisIdempotencyStore(server.client(), prefix=odd_prefix())
        else:
            store = rxr.SQLiteIdempotencyStore(tmp_path / f"{len(made)}.db")
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[[], rxr.IdempotencyStore]) -> rxr.IdempotencyStore:
    return make_store()
