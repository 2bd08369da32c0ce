"""A run's journal writes: an n-step saga commits at most n + 1 transactions.

A step's success goes with the next step's start; the first start with the
saga's beginning; the last success with the finish. Outside asyncio the
writes stay on the caller's thread; each saga of a batch is fenced on its
own owner token. (Under asyncio: ``test_group_commit.py``.)
"""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr

from .. import _saga_worker as worker
from ._journals import Counting, three_steps


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    yield from worker.journal_of(request, tmp_path)


def test_an_n_step_saga_writes_n_plus_one_transactions() -> None:
    journal = Counting()
    assert three_steps().run(0, journal=journal, saga_id="s-1").run() == 3
    assert journal.calls == ["write_owned"] * 4
    record = journal.load("s-1")
    assert record is not None
    assert record.status == "completed"
    assert [(e.kind, e.step) for e in record.entries] == [
        ("step_started", "a"),
        ("step_succeeded", "a"),
        ("step_started", "b"),
        ("step_succeeded", "b"),
        ("step_started", "c"),
        ("step_succeeded", "c"),
    ]


def test_a_failing_saga_writes_its_failure_with_the_next_compensation() -> None:
    journal = Counting()
    saga = three_steps().step("d", execute=lambda n: rx.throw(OSError("down")))
    with pytest.raises(rxr.SagaFailed):
        saga.run(0, journal=journal, saga_id="s-1").run()
    # begin+a, a+b, b+c, c+d, failed d + undo c started, c undone + undo b
    # started, b undone + undo a started, a undone + finish.
    assert journal.calls == ["write_owned"] * 8
    state = journal.state("s-1")
    assert state is not None
    assert state.status == "compensated"
    assert state.compensated_steps == ("c", "b", "a")


def test_the_sqlite_journal_commits_n_plus_one_transactions(
    tmp_path: pathlib.Path,
) -> None:
    journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    before = journal.commits
    assert three_steps().run(0, journal=journal, saga_id="s-1").run() == 3
    assert journal.commits - before == 4
    journal.close()


def test_outside_asyncio_writes_stay_on_the_callers_thread() -> None:
    journal = Counting()
    results: list[int] = []
    three_steps().run(0, journal=journal, saga_id="s-1").subscribe(results.append)
    assert results == [3]
    assert journal.threads == {threading.get_ident()}  # no writer thread of ours


def test_a_batch_fences_each_saga_on_its_own(journal: Any) -> None:
    for saga_id in ("s-1", "s-2", "s-3"):
        journal.begin_owned(saga_id, "s", 0.0, owner=f"o-{saga_id}", lease_until=30.0)
    entry = rxr.JournalEntry("step_started", "a", b"1")
    done = journal.write_owned(
        [
            rxr.JournalWrite("s-1", "o-s-1", 1.0, entries=(entry,)),
            rxr.JournalWrite("s-2", "someone else", 1.0, entries=(entry,)),
            rxr.JournalWrite("s-3", "o-s-3", 1.0, entries=(entry,), status="completed"),
            rxr.JournalWrite("s-4", "o-s-4", 1.0, begin="s", lease_until=31.0),
            rxr.JournalWrite("s-1", "o-s-1", 1.0, begin="s", lease_until=31.0),
        ]
    )
    assert done == [True, False, True, True, False]  # s-1 exists: not begun again
    assert [e.kind for e in journal.load("s-1").entries] == ["step_started"]
    assert journal.load("s-2").entries == ()
    assert journal.load("s-3").status == "completed"
    four = journal.load("s-4")
    assert (four.status, four.owner, four.lease_until) == ("running", "o-s-4", 31.0)


def test_a_saga_written_twice_in_a_batch_is_touched_by_the_last_write(
    journal: Any,
) -> None:
    # Times in a batch need not grow (two threads, a clock stepped back): every
    # journal keeps the last write's, as the in-memory journal does.
    journal.begin_owned("s-1", "s", 0.0, owner="o", lease_until=30.0)
    entry = rxr.JournalEntry("step_started", "a", b"1")
    done = journal.write_owned(
        [
            rxr.JournalWrite("s-1", "o", 5.0, entries=(entry,)),
            rxr.JournalWrite("s-1", "o", 3.0, entries=(entry,)),
            rxr.JournalWrite("s-2", "o", 5.0, begin="s", lease_until=30.0),
            rxr.JournalWrite("s-2", "o", 4.0, entries=(entry,)),
        ]
    )
    assert done == [True, True, True, True]
    assert journal.load("s-1").touched == 3.0
    assert journal.load("s-2").touched == 4.0


def test_a_begin_that_finds_its_id_taken_is_a_saga_error(journal: Any) -> None:
    journal.begin_owned("s-1", "three", 0.0, owner="other", lease_until=30.0)
    log: list[str] = []
    with pytest.raises(rxr.SagaError, match="already in the journal"):
        three_steps(log).run(0, journal=journal, saga_id="s-1").run()
    assert log == []
