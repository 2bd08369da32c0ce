"""The tables of a PostgreSQL store or journal: made once, versioned, never misread.

Every component (an idempotency table, a saga journal's tables) writes its
schema version in one shared table, ``rxr_schema_versions`` (in the same
PostgreSQL schema), under a name of its own. On its first operation a
component reads that row: its own version, and it goes on; a newer one, and
it refuses (an older release must not misread a newer layout); none, and it
creates its tables, unless told not to (``create_schema=False``, for roles
without DDL rights, since PostgreSQL 15's ``public`` schema no longer lets
everyone create tables) or unless its main table exists without a version
row (a table of the same name that is not ours). Creators are serialised by
an advisory lock held for their transaction, so processes starting together
create each table once.

The statements are built with ``psycopg.sql``: every name is an
``Identifier`` (quoted), never formatted into the SQL text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._child_safe_lock import ChildSafeLock
from ._postgres import PostgresConnections, import_psycopg

__all__ = ["VERSIONS_TABLE", "SchemaOpening", "TableSchema"]

#: The table that holds every component's schema version.
VERSIONS_TABLE = "rxr_schema_versions"

#: The advisory lock (a bigint: "rxrschem" in ASCII) creators take.
_CREATION_LOCK = int.from_bytes(b"rxrschem", "big") - 2**63

_VERSIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS {versions} "
    "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class TableSchema:
    """One component's tables.

    Attributes:
        component: the name of its row in the versions table.
        version: the version of the layout this release writes.
        names: the identifiers its statements name, by placeholder
            (``{"table": "rxr_idempotency"}``); ``schema`` qualifies each,
            but those whose placeholder ends in ``_index`` (an index lives
            in its table's schema).
        main: the placeholder of the table whose presence without a version
            row means "not ours".
        ddl: ``CREATE ... IF NOT EXISTS`` statements with ``{placeholder}``
            names.
        schema: the PostgreSQL schema the tables live in, or None for the
            connection's ``search_path``.
    """

    component: str
    version: int
    names: Mapping[str, str]
    main: str
    ddl: tuple[str, ...]
    schema: str | None = None

    def identifier(self, name: str) -> Any:
        """``name`` as a ``psycopg.sql.Identifier``, qualified by the schema."""
        sql = import_psycopg().sql
        if self.schema is None:
            return sql.Identifier(name)
        return sql.Identifier(self.schema, name)

    def render(self, template: str) -> str:
        """``template`` with every ``{placeholder}`` a quoted identifier, and
        ``{component}`` and ``{version}`` literals."""
        sql = import_psycopg().sql
        names = {
            # an index lives in its table's schema: its name is never qualified
            key: sql.Identifier(value)
            if key.endswith("_index")
            else self.identifier(value)
            for key, value in self.names.items()
        }
        names["versions"] = self.identifier(VERSIONS_TABLE)
        names["component"] = sql.Literal(self.component)
        names["version"] = sql.Literal(self.version)
        text: str = sql.SQL(template).format(**names).as_string(None)
        return text

    def statements(self) -> list[str]:
        """The SQL that creates the tables and records their version."""
        return [
            self.render(_VERSIONS_DDL),
            *(self.render(statement) for statement in self.ddl),
            self.render(
                "INSERT INTO {versions} (component, version) "
                "VALUES ({component}, {version}) ON CONFLICT (component) DO NOTHING"
            ),
        ]

    def sql_text(self) -> str:
        """The statements as one script, for a DBA to run."""
        return ";\n".join(self.statements()) + ";\n"

    def ensure(self, connections: PostgresConnections, *, create: bool) -> None:
        """Check (and, with ``create``, make) the tables, in one transaction.

        Raises the connections' error when the tables hold a newer version;
        when one of them, or a relation named as one of its indexes, exists
        without a version row, or is not what it should be (not ours); or
        when any is missing and ``create`` is false. A table dropped since
        its version was written is made again (with ``create``).
        """
        with connections.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATION_LOCK,))
            layout = self
            if self.schema is None:
                # Where the search_path creates (its first schema that exists):
                # every name read and made there, so that a versions table in
                # a later schema of the path is neither taken for ours nor
                # shadowed by a new one.
                row = conn.execute("SELECT current_schema()").fetchone()
                if row is None or row[0] is None:
                    raise connections.failed(
                        "no schema of the connection's search_path exists to "
                        "hold the tables: create one, or give schema="
                    )
                layout = dataclasses.replace(self, schema=row[0])
            layout._check(conn, connections, create=create)

    def _check(
        self, conn: Any, connections: PostgresConnections, *, create: bool
    ) -> None:
        """:meth:`ensure`, inside its transaction, names qualified by the schema."""
        versions = self.render("{versions}")
        main = self.render("{" + self.main + "}")
        relations = {key: self.render("{" + key + "}") for key in self.names}
        relations.update(  # an index is named as in its table's schema
            (key, self.identifier(value).as_string(None))
            for key, value in self.names.items()
            if key.endswith("_index")
        )
        kinds = {
            key: conn.execute(
                "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
                (relation,),
            ).fetchone()
            for key, relation in {"versions": versions, **relations}.items()
        }
        found = None
        if kinds["versions"] is not None:
            row = conn.execute(
                self.render("SELECT version FROM {versions} WHERE component = %s"),
                (self.component,),
            ).fetchone()
            found = None if row is None else int(row[0])
        if found is not None and found > self.version:
            raise connections.failed(
                f"{main} holds schema version {found} of "
                f"{self.component!r}; this release of rxresilience "
                f"understands version {self.version} at most: upgrade it"
            )
        for key, relation in relations.items():
            kind = kinds[key]
            expected = "i" if key.endswith("_index") else "r"
            if kind is None:
                continue
            if found is None:
                raise connections.failed(
                    f"{relation} exists without a schema version row in "
                    f"{versions}; refusing a relation this release did not make"
                )
            if kind[0] != expected:
                what = "an index" if expected == "i" else "a table"
                raise connections.failed(
                    f"{relation} is not {what}, as this release makes it; "
                    "refusing a relation this release did not make"
                )
            if expected == "i" and not _indexes_ours(conn, relation, relations):
                raise connections.failed(
                    f"{relation} is an index of a table that is not this "
                    "component's; refusing a relation this release did not make"
                )
        if all(kinds[key] is not None for key in relations):
            return  # ours, whole (no older version has been released)
        if not create:
            raise connections.failed(
                f"{main} (or a table or index of it) does not exist and "
                "create_schema=False: call create_schema() with a role that "
                f"may create tables, or run this SQL:\n{self.sql_text()}"
            )
        for statement in self.statements():
            conn.execute(statement)


def _indexes_ours(conn: Any, index: str, relations: Mapping[str, str]) -> bool:
    """Whether the index ``index`` is on one of the component's tables."""
    tables = [
        relation for key, relation in relations.items() if not key.endswith("_index")
    ]
    row = conn.execute(
        "SELECT indrelid = ANY(SELECT to_regclass(t) FROM unnest(%s::text[]) AS t) "
        "FROM pg_index WHERE indexrelid = to_regclass(%s)",
        (tables, index),
    ).fetchone()
    return row is not None and bool(row[0])


class SchemaOpening:
    """A component's tables, checked (or made) once, at its first operation.

    ``create`` is the component's ``create_schema``: whether a missing table
    is made or refused. :meth:`now` is the component's ``create_schema()``.
    """

    __slots__ = (
        "_attempts",
        "_connections",
        "_create",
        "_failure",
        "_layout",
        "_lock",
        "_ready",
    )

    def __init__(
        self, layout: TableSchema, connections: PostgresConnections, *, create: bool
    ) -> None:
        self._layout = layout
        self._connections = connections
        self._create = create
        # Made anew in a forked child (a parent thread inside it at the fork).
        self._lock = ChildSafeLock()
        self._ready = False
        self._attempts = 0
        self._failure: Exception | None = None

    def once(self) -> None:
        """Check the tables unless that was done: the first caller does it,
        the others starting meanwhile wait for it, and fail with it if it
        failed (each trying again in turn, against a server that does not
        answer, would wait a whole timeout after another)."""
        if not self._ready:
            self._check(self._attempts)

    def _check(self, attempts: int) -> None:
        """:meth:`once`, for a caller that saw ``attempts`` made so far."""
        with self._lock:
            if self._ready:
                return
            failure = self._failure
            if failure is not None and self._attempts != attempts:
                raise type(failure)(str(failure)) from failure
            try:
                self._layout.ensure(self._connections, create=self._create)
            except Exception as error:
                # Counted once it failed: whoever waited meanwhile fails with it.
                self._failure = error
                self._attempts += 1
                raise
            self._ready = True
            self._failure = None

    def now(self) -> None:
        """Make the tables now if missing (whatever ``create``), and check them."""
        self._layout.ensure(self._connections, create=True)
        self._ready = True
