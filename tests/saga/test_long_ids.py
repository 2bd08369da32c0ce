"""Sagas: ids and step names of any length, on every journal alike.

A saga id of 10,000 incompressible characters, or a step name of 5,000, is
written, read, fenced, listed and recovered as a short one is: PostgreSQL
keys its rows by a digest of the id (its btree rows hold at most 2704 bytes),
and ids that differ in their last character only are kept apart.
"""

from __future__ import annotations

import base64
import pathlib
import random
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .. import _saga_worker as worker


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    yield from worker.journal_of(request, tmp_path)


def long_text(seed: int, length: int) -> str:
    """``length`` incompressible characters."""
    return base64.b64encode(random.Random(seed).randbytes(length)).decode()[:length]


SAGA_ID = long_text(0, 10_000)
TWIN_ID = SAGA_ID[:-1] + "!"  # differs from SAGA_ID in its last character only
STEP = long_text(1, 5_000)


def test_a_saga_with_a_long_id_and_long_step_names_runs_and_is_journaled(
    journal: rxr.SagaJournal,
) -> None:
    def two_steps() -> rxr.Saga[int]:
        return (
            rxr.Saga[int]("long")
            .step(STEP, execute=lambda n: rx.of(n + 1), compensate=lambda n: rx.empty())
            .step(STEP + "2", execute=lambda n: rx.of(n + 1))
        )

    assert two_steps().run(0, journal=journal, saga_id=SAGA_ID).run() == 2
    failing = two_steps().step("boom", execute=lambda n: rx.throw(OSError("down")))
    with pytest.raises(rxr.SagaFailed):
        failing.run(0, journal=journal, saga_id=TWIN_ID).run()
    done = journal.state(SAGA_ID)
    assert done is not None
    assert (done.status, done.completed_steps) == ("completed", (STEP, STEP + "2"))
    undone = journal.state(TWIN_ID)
    assert undone is not None
    assert (undone.status, undone.compensated_steps) == ("compensated", (STEP,))
    assert journal.state(SAGA_ID[:-1]) is None
    with pytest.raises(rxr.SagaError, match="already"):
        journal.begin(SAGA_ID, "long", 0.0)


def test_the_journal_fences_lists_and_hands_over_long_ids(
    journal: rxr.SagaJournal,
) -> None:
    started = rxr.JournalEntry("step_started", STEP, b"1")
    assert journal.write_owned(
        [
            rxr.JournalWrite(SAGA_ID, "me", 1.0, (started,), begin="n", lease_until=5),
            rxr.JournalWrite(TWIN_ID, "me", 1.0, begin="n", lease_until=5),
            rxr.JournalWrite(TWIN_ID, "me", 1.0, begin="n", lease_until=5),
            rxr.JournalWrite(SAGA_ID, "other", 2.0, (started,)),
        ]
    ) == [True, True, False, False]
    assert sorted(journal.unfinished()) == sorted([SAGA_ID, TWIN_ID])
    assert journal.append_owned(SAGA_ID, started, 2.0, owner="me")
    assert not journal.append_owned(SAGA_ID, started, 2.0, owner="other")
    assert journal.renew(SAGA_ID, 2.0, owner="me", lease_until=6.0)
    assert not journal.take(
        SAGA_ID, 3.0, owner="other", lease_until=9.0, stale_before=5.0
    )
    assert journal.take(SAGA_ID, 7.0, owner="other", lease_until=9.0, stale_before=7.0)
    assert not journal.finish_owned(SAGA_ID, "failed", 7.0, owner="me")
    assert journal.finish_owned(SAGA_ID, "failed", 7.0, owner="other")
    record = journal.load(SAGA_ID)
    assert record is not None
    assert (record.saga_id, record.status, record.owner) == (SAGA_ID, "failed", "other")
    assert [entry.step for entry in record.entries] == [STEP, STEP]
    assert journal.unfinished() == [TWIN_ID]
    twin = journal.load(TWIN_ID)
    assert twin is not None
    assert twin.entries == ()


def test_recovery_compensates_a_saga_with_a_long_id(journal: rxr.SagaJournal) -> None:
    undone: list[str] = []
    saga = rxr.Saga[int]("long").step(
        STEP,
        execute=rx.of,
        compensate=lambda n: rx.empty().pipe(
            rx.operators.do_action(on_completed=lambda: undone.append("undone"))
        ),
    )
    started = rxr.JournalEntry("step_started", STEP, b"1")
    succeeded = rxr.JournalEntry("step_succeeded", STEP, b"1")
    journal.write_owned(
        [
            rxr.JournalWrite(
                SAGA_ID, "gone", 0.0, (started, succeeded), begin="long", lease_until=1
            )
        ]
    )
    scheduler = TestScheduler()
    scheduler.advance_to(100.0)
    events: list[Any] = []
    rxr.recover(
        journal, {"long": saga}, stale_after=1.0, scheduler=scheduler
    ).subscribe(on_next=events.append, on_error=events.append)
    scheduler.advance_by(100.0)
    assert undone == ["undone"]
    state = journal.state(SAGA_ID)
    assert state is not None
    assert state.status == "compensated"
    assert journal.unfinished() == []
