"""Fixtures of the PostgreSQL tests that stop, start or freeze a server."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from .._postgres_server import PostgresServer


@pytest.fixture
def own_server(tmp_path: pathlib.Path) -> Iterator[PostgresServer]:
    """A server of the test's own, with PostgreSQL's default durability."""
    server = PostgresServer(tmp_path / "pg")
    server.start()
    yield server
    server.stop("immediate")
