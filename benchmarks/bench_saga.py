"""Sagas per second: a 3-step saga of immediate steps."""

from __future__ import annotations

import itertools
import os
import tempfile
from typing import Any

import reactivex as rx
from reactivex import operators as ops

import rxresilience as rxr

from ._harness import Comparison, compare


def _noop(*_: Any) -> None:
    pass


def _step(n: int) -> rx.Observable[int]:
    return rx.of(n + 1)


def _saga() -> rxr.Saga[int]:
    return (
        rxr.Saga[int]("bench")
        .step("one", execute=_step, compensate=lambda n: rx.empty())
        .step("two", execute=_step, compensate=lambda n: rx.empty())
        .step("three", execute=_step, compensate=lambda n: rx.empty())
    )


def run() -> list[Comparison]:
    rows: list[Comparison] = []
    bare = rx.of(0).pipe(
        ops.concat_map(_step), ops.concat_map(_step), ops.concat_map(_step)
    )
    in_memory = _saga().run(0)
    rows.append(
        compare(
            "3-step saga, no journal, vs the three steps chained with concat_map",
            lambda: in_memory.subscribe(_noop, _noop, _noop),
            lambda: bare.subscribe(_noop, _noop, _noop),
            target=None,
            loops=300,
            unit="saga",
        )
    )
    memory_journal = rxr.InMemorySagaJournal()
    journaled_saga = _saga()
    ids = itertools.count()
    rows.append(
        compare(
            "3-step saga, in-memory journal, vs the chained steps",
            lambda: journaled_saga.run(
                0, journal=memory_journal, saga_id=f"m{next(ids)}"
            ).subscribe(_noop, _noop, _noop),
            lambda: bare.subscribe(_noop, _noop, _noop),
            target=None,
            loops=300,
            unit="saga",
        )
    )
    folder = tempfile.mkdtemp()
    sqlite_journal = rxr.SQLiteSagaJournal(os.path.join(folder, "sagas.db"))
    sqlite_saga = _saga()
    rows.append(
        compare(
            "3-step saga, SQLite journal, vs the chained steps",
            lambda: sqlite_saga.run(
                0, journal=sqlite_journal, saga_id=f"s{next(ids)}"
            ).subscribe(_noop, _noop, _noop),
            lambda: bare.subscribe(_noop, _noop, _noop),
            target=None,
            loops=100,
            batches=7,
            unit="saga",
        )
    )
    sqlite_journal.close()
    return rows
