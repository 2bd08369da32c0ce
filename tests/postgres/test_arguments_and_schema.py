"""Bad input refused at construction; tables made once, versioned, never misread."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys
from typing import Any

import psycopg
import psycopg_pool
import pytest

import rxresilience as rxr

from .._postgres_server import PostgresServer, fresh_name

BUILDERS: list[Any] = [
    pytest.param(
        lambda c, **k: rxr.PostgresIdempotencyStore(c, **k), "table", id="store"
    ),
    pytest.param(
        lambda c, **k: rxr.PostgresSagaJournal(c, **k), "table_prefix", id="journal"
    ),
]
ERRORS = (rxr.IdempotencyError, rxr.SagaError)


@pytest.mark.parametrize(("build", "name"), BUILDERS)
@pytest.mark.parametrize(
    "bad",
    ['a"b', "a b", "a-b", "a.b", "a;drop", "", "tête", "x" * 70, "a'b", "a*", "%"],
)
def test_a_table_name_that_is_not_letters_digits_underscores_is_refused(
    build: Any, name: str, bad: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{name} "):
        build("postgresql://nobody@127.0.0.1:1/none", **{name: bad})
    with pytest.raises(ValueError, match=r"^schema "):
        build("postgresql://nobody@127.0.0.1:1/none", schema=bad)


@pytest.mark.parametrize(("build", "name"), BUILDERS)
def test_bad_arguments_are_refused_naming_them(build: Any, name: str) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"
    with pytest.raises(TypeError, match=rf"^{name} "):
        build(url, **{name: 7})
    for value in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^timeout "):
            build(url, timeout=value)
    with pytest.raises(TypeError, match=r"^timeout "):
        build(url, timeout=True)
    with pytest.raises(TypeError, match=r"^create_schema "):
        build(url, create_schema=1)
    with pytest.raises(TypeError, match=r"^connection "):
        build(object())
    with pytest.raises(ValueError, match=r"^connection "):
        build("host=a port")


def test_a_negative_lease_is_refused_by_the_operator() -> None:
    store = rxr.PostgresIdempotencyStore("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ValueError, match=r"in_progress_timeout"):
        rxr.idempotent(store, key="k", in_progress_timeout=-1.0)
    with pytest.raises(ValueError, match=r"lease"):
        rxr.Saga("s", lease=-1.0)
    store.close()


@pytest.mark.parametrize(("build", "name"), BUILDERS)
def test_a_closed_pool_fails_clearly_at_first_use(
    build: Any, name: str, postgres_server: PostgresServer
) -> None:
    pool = psycopg_pool.ConnectionPool(postgres_server.url, min_size=1, open=True)
    pool.close()
    part = build(pool, **{name: fresh_name()})
    with pytest.raises(ERRORS, match="pool is closed"):
        part.create_schema()


@pytest.mark.parametrize(("build", "name"), BUILDERS)
def test_a_missing_table_with_create_schema_false_names_the_sql_to_run(
    build: Any, name: str, postgres_server: PostgresServer
) -> None:
    part = build(postgres_server.url, create_schema=False, **{name: fresh_name()})
    with pytest.raises(ERRORS, match="create_schema=False") as refused:
        part.unfinished() if name == "table_prefix" else part.get("k", now=0.0)
    assert "CREATE TABLE IF NOT EXISTS" in str(refused.value)
    part.create_schema()  # as a role that may create tables would
    assert (
        part.unfinished() if name == "table_prefix" else part.get("k", now=0.0)
    ) in (
        [],
        None,
    )
    part.close()


def test_the_schema_sql_made_ahead_by_a_dba_is_what_the_store_uses(
    postgres_server: PostgresServer,
) -> None:
    table = fresh_name()
    store = rxr.PostgresIdempotencyStore(
        postgres_server.url, table=table, create_schema=False
    )
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(store.schema_sql())
    assert store.claim("k", None, "o", now=0.0, lease_until=10.0).status is (
        rxr.ClaimStatus.CLAIMED
    )
    store.close()


@pytest.mark.parametrize(("build", "name"), BUILDERS)
def test_a_newer_schema_version_is_refused(
    build: Any, name: str, postgres_server: PostgresServer
) -> None:
    table = fresh_name()
    first = build(postgres_server.url, **{name: table})
    first.create_schema()
    first.close()
    component = ("idempotency_store:" if name == "table" else "saga_journal:") + table
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(
            "UPDATE rxr_schema_versions SET version = 99 WHERE component = %s",
            (component,),
        )
    newer = build(postgres_server.url, **{name: table})
    with pytest.raises(ERRORS, match=r"version 99.*understands version 1"):
        newer.create_schema()
    newer.close()


def test_a_table_of_that_name_that_is_not_ours_is_refused(
    postgres_server: PostgresServer,
) -> None:
    table = fresh_name()
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{table}" (x int)')
    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=table)
    with pytest.raises(rxr.IdempotencyError, match="without a schema version"):
        store.get("k", now=0.0)
    store.close()


def test_tables_in_a_schema_of_their_own_with_mixed_case_names(
    postgres_server: PostgresServer,
) -> None:
    schema = fresh_name("Ns")
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    store = rxr.PostgresIdempotencyStore(
        postgres_server.url, table="Keys", schema=schema
    )
    journal = rxr.PostgresSagaJournal(
        postgres_server.url, table_prefix="Sagas", schema=schema
    )
    store.claim("k", None, "o", now=0.0, lease_until=10.0)
    journal.begin("s", "n", now=0.0)
    with postgres_server.connect() as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        }
    assert tables == {"Keys", "Sagas_sagas", "Sagas_entries", "rxr_schema_versions"}
    store.close()
    journal.close()


def test_processes_opening_at_once_create_the_tables_once(
    postgres_server: PostgresServer,
) -> None:
    import threading

    table = fresh_name()
    errors: list[BaseException] = []
    stores = [
        rxr.PostgresIdempotencyStore(postgres_server.url, table=table) for _ in range(8)
    ]

    def open_one(store: rxr.PostgresIdempotencyStore) -> None:
        try:
            store.get("k", now=0.0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_one, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for store in stores:
        store.close()


def test_a_bare_connection_works_and_one_inside_a_transaction_is_refused(
    postgres_server: PostgresServer,
) -> None:
    with postgres_server.connect() as conn:
        store = rxr.PostgresIdempotencyStore(conn, table=fresh_name())
        assert store.claim("k", None, "o", now=0.0, lease_until=9.0).status is (
            rxr.ClaimStatus.CLAIMED
        )
        assert store.complete("k", "o", b"r", expires_at=99.0)
        conn.execute("SELECT 1")  # the user opens a transaction of their own
        with pytest.raises(rxr.IdempotencyError, match="inside a transaction"):
            store.get("k", now=0.0)
        conn.rollback()
        assert store.get("k", now=0.0) == b"r"
        store.close()
        assert not conn.closed  # the user's connection stays the user's


def test_keys_postgresql_text_cannot_hold_are_refused_naming_the_key(
    postgres_server: PostgresServer,
) -> None:
    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=fresh_name())
    for key in ("a\x00b", "\udcff"):
        with pytest.raises(ValueError, match=r"^key "):
            store.claim(key, None, "o", now=0.0, lease_until=9.0)
    store.close()


def test_an_unreachable_server_fails_within_the_timeout(tmp_path: pathlib.Path) -> None:
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = rxr.PostgresIdempotencyStore(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=0.5
    )
    journal = rxr.PostgresSagaJournal(
        f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=0.5
    )
    started = time.monotonic()
    with pytest.raises(rxr.IdempotencyError, match="PostgreSQL idempotency store"):
        store.claim("k", None, "o", now=0.0, lease_until=9.0)
    with pytest.raises(rxr.SagaError, match="PostgreSQL saga journal"):
        journal.begin("s", "n", now=0.0)
    assert time.monotonic() - started < 10
    store.close()
    journal.close()


def test_importing_works_without_psycopg_and_building_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None\n"
        "import rxresilience as rxr\n"
        "for build in (rxr.PostgresIdempotencyStore, rxr.PostgresSagaJournal):\n"
        "    try:\n"
        "        build('postgresql://x')\n"
        "    except ImportError as error:\n"
        "        assert \"pip install 'rxresilience[postgres]'\" in str(error), error\n"
        "    else:\n"
        "        raise AssertionError('built without psycopg')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_psycopg_is_what_the_tests_run_against() -> None:
    assert psycopg.__version__ >= "3.2"


def test_the_connection_strings_own_options_stand(
    postgres_server: PostgresServer,
) -> None:
    """A ``search_path`` given in the connection string's ``options`` keeps two
    services' tables apart; the library's own ``statement_timeout`` goes
    with it (it used to replace them: both services shared one table)."""
    schema = fresh_name("app")
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    table = fresh_name()
    url = f"{postgres_server.url}?options=-c%20search_path%3D{schema}"
    store = rxr.PostgresIdempotencyStore(url, table=table)
    store.create_schema()
    assert store.claim("k", None, "o", 0.0, 1e9).status.name == "CLAIMED"
    store.close()
    with postgres_server.connect() as conn:
        found = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = %s",
            (table,),
        ).fetchall()
    assert found == [(schema,)]


def test_a_users_pool_that_makes_dict_rows_works_and_keeps_its_factory(
    postgres_server: PostgresServer,
) -> None:
    """Rows as dicts and parameters as ``$1`` (a raw cursor): the library's
    statements work all the same, and the user's factories come back."""
    from psycopg.rows import dict_row

    with psycopg_pool.ConnectionPool(
        postgres_server.url,
        min_size=1,
        max_size=2,
        kwargs={"row_factory": dict_row, "cursor_factory": psycopg.RawCursor},
        open=True,
    ) as pool:
        store = rxr.PostgresIdempotencyStore(pool, table=fresh_name())
        store.create_schema()
        assert store.claim("k", None, "o", 0.0, 1e9).status.name == "CLAIMED"
        journal = rxr.PostgresSagaJournal(pool, table_prefix=fresh_name())
        journal.begin("s", "saga", 0.0)
        assert journal.unfinished() == ["s"]
        with pool.connection() as conn:
            assert conn.execute("SELECT $1::int AS one", (1,)).fetchone() == {"one": 1}


@pytest.mark.parametrize("taken", ["entries", "sagas_running"])
def test_a_journal_refuses_any_relation_of_its_names_that_is_not_its_own(
    taken: str, postgres_server: PostgresServer
) -> None:
    """Not only its main table: its entries table, or a table where its index
    would go (it used to take them over, and fail at every append)."""
    prefix = fresh_name()
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{prefix}_{taken}" (x int)')
    journal = rxr.PostgresSagaJournal(postgres_server.url, table_prefix=prefix)
    with pytest.raises(rxr.SagaError, match=f"{prefix}_{taken}"):
        journal.begin("s", "saga", 0.0)
    journal.close()


def test_an_index_name_taken_by_a_table_is_refused(
    postgres_server: PostgresServer,
) -> None:
    table = fresh_name()
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{table}_expires_at" (x int)')
    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=table)
    with pytest.raises(rxr.IdempotencyError, match="_expires_at"):
        store.get("k", now=0.0)
    store.close()


@pytest.mark.parametrize(("build", "name"), BUILDERS)
def test_a_table_dropped_after_its_version_was_written_is_made_again(
    build: Any, name: str, postgres_server: PostgresServer
) -> None:
    table = fresh_name()
    first = build(postgres_server.url, **{name: table})
    first.create_schema()
    first.close()
    dropped = table if name == "table" else f"{table}_entries"
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{dropped}"')

    def use(part: Any) -> Any:
        return part.unfinished() if name == "table_prefix" else part.get("k", now=0.0)

    kept = build(postgres_server.url, create_schema=False, **{name: table})
    with pytest.raises(ERRORS, match="create_schema=False"):
        use(kept)
    kept.close()
    again = build(postgres_server.url, **{name: table})
    assert use(again) in ([], None)
    again.close()


def test_a_timeout_no_connection_could_meet_and_a_system_schema_are_refused() -> None:
    url = "postgresql://app@127.0.0.1:1/app"  # never reached: refused first
    with pytest.raises(ValueError, match="timeout must be at least"):
        rxr.PostgresIdempotencyStore(url, timeout=1e-300)
    for schema in ("information_schema", "pg_catalog", "PG_temp"):
        with pytest.raises(ValueError, match="schema must be one of the application"):
            rxr.PostgresIdempotencyStore(url, schema=schema)
        with pytest.raises(ValueError, match="schema must be one of the application"):
            rxr.PostgresSagaJournal(url, schema=schema)


def test_an_index_of_that_name_on_another_table_is_refused(
    postgres_server: PostgresServer,
) -> None:
    table = fresh_name()
    first = rxr.PostgresIdempotencyStore(postgres_server.url, table=table)
    first.create_schema()
    first.close()
    with postgres_server.connect(autocommit=True) as conn:
        conn.execute(f'DROP INDEX "{table}_expires_at"')
        conn.execute(f'CREATE TABLE "{table}_other" (x int)')
        conn.execute(f'CREATE INDEX "{table}_expires_at" ON "{table}_other" (x)')
    store = rxr.PostgresIdempotencyStore(postgres_server.url, table=table)
    with pytest.raises(rxr.IdempotencyError, match="index of a table that is not"):
        store.get("k", now=0.0)
    store.close()
