"""Keys and saga ids of any length: rows found by a digest, the text kept whole.

A btree index row holds at most 2704 bytes, so an 8000-character key once
failed at its first use ("index row size 8016 exceeds btree version 4
maximum 2704"). The tables are keyed by the SHA-256 of the key (or saga id),
``CHECK``-ed against the text they keep, so the text can still be listed and
purged, and a row written by hand with a wrong digest is refused.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
import re
from typing import Any

import psycopg
import pytest

import rxresilience as rxr

from .._postgres_server import PostgresServer, fresh_name

LONG_KEY = base64.b64encode(os.urandom(6000)).decode()  # 8000 characters


def test_an_incompressible_8000_character_key_works_through_a_users_pool(
    postgres_pool: Any,
) -> None:
    store = rxr.PostgresIdempotencyStore(postgres_pool, table=fresh_name())
    assert store.claim(LONG_KEY, None, "o", 1.0, 100.0).status is (
        rxr.ClaimStatus.CLAIMED
    )
    assert store.complete(LONG_KEY, "o", b"r", expires_at=200.0)
    assert store.get(LONG_KEY, now=2.0) == b"r"
    store.close()


def test_the_table_keeps_the_whole_key_beside_its_digest(
    postgres_server: PostgresServer,
) -> None:
    table = fresh_name()
    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=table)
    store.claim(LONG_KEY, None, "o", 1.0, 100.0)
    with postgres_server.connect(autocommit=True) as conn:
        rows = conn.execute(f'SELECT key, key_sha256 FROM "{table}"').fetchall()
        assert rows == [(LONG_KEY, hashlib.sha256(LONG_KEY.encode()).digest())]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                f'INSERT INTO "{table}" (key_sha256, key, status, expires_at) '
                "VALUES (%s, 'other', 'completed', 1e9)",
                (hashlib.sha256(b"not other").digest(),),
            )
    assert store.purge_expired(now=1000.0) == 1
    store.close()


def test_the_journal_keeps_the_whole_saga_id_and_checks_its_digest(
    postgres_server: PostgresServer,
) -> None:
    prefix = fresh_name()
    journal = rxr.PostgresSagaJournal(postgres_server.url, table_prefix=prefix)
    saga_id = LONG_KEY + "é"
    entry = rxr.JournalEntry("step_started", "s" * 9000, b"1")
    assert journal.write_owned(
        [rxr.JournalWrite(saga_id, "me", 1.0, (entry,), begin="n", lease_until=9.0)]
    ) == [True]
    with postgres_server.connect(autocommit=True) as conn:
        assert conn.execute(f'SELECT saga_id FROM "{prefix}_sagas"').fetchall() == [
            (saga_id,)
        ]
        assert conn.execute(f'SELECT count(*) FROM "{prefix}_entries"').fetchone() == (
            1,
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                f'INSERT INTO "{prefix}_sagas" '
                "(id_sha256, saga_id, saga_name, status, touched) "
                "VALUES (%s, 'x', 'n', 'running', 0)",
                (hashlib.sha256(b"y").digest(),),
            )
    assert journal.unfinished() == [saga_id]
    journal.close()


def _collapsed(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()


@pytest.mark.parametrize(
    "build",
    [
        lambda url: rxr.PostgresIdempotencyStore(url),
        lambda url: rxr.PostgresSagaJournal(url),
    ],
    ids=["store", "journal"],
)
def test_the_sql_in_the_docstring_is_the_schema_sql(
    postgres_server: PostgresServer, build: Any
) -> None:
    made = build(postgres_server.url)
    doc = inspect.getdoc(type(made)) or ""
    shown = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    assert _collapsed(shown) == _collapsed(made.schema_sql())
    made.close()
