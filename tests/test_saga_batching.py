"""Sagas, part 3: a journal that keeps up with the saga.

An n-step saga commits at most n + 1 transactions (a step's success goes
with the next step's start; the first start with the saga's beginning; the
last success with the finish). Under asyncio the writes happen off the
loop, several sagas' writes in one transaction (group commit), each still
fenced on its own owner token; outside asyncio they stay on the caller's
thread. A step's start is committed before the step is subscribed.
"""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr

from . import _saga_worker as worker


@pytest.fixture(params=["memory", "sqlite", "redis"])
def journal(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    yield from worker.journal_of(request, tmp_path)


class Counting(rxr.InMemorySagaJournal):
    """Counts the journal's write calls (each one transaction) and their threads;
    written as a journal on a disk would be (its writes may block)."""

    writes_may_block = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.batches: list[int] = []

    def _note(self, what: str) -> None:
        self.calls.append(what)
        self.threads.add(threading.get_ident())

    def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[bool]:
        self._note("write_owned")
        self.batches.append(len(writes))
        return super().write_owned(writes)

    def begin_owned(self, *args: Any, **kwargs: Any) -> None:
        self._note("begin_owned")
        super().begin_owned(*args, **kwargs)

    def append_owned(self, *args: Any, **kwargs: Any) -> bool:
        self._note("append_owned")
        return super().append_owned(*args, **kwargs)

    def finish_owned(self, *args: Any, **kwargs: Any) -> bool:
        self._note("finish_owned")
        return super().finish_owned(*args, **kwargs)


def three_steps(log: list[str] | None = None) -> rxr.Saga[int]:
    def step(name: str) -> Any:
        def execute(n: int) -> rx.Observable[int]:
            if log is not None:
                log.append(name)
            return rx.of(n + 1)

        return execute

    saga = rxr.Saga[int]("three")
    for name in ("a", "b", "c"):
        saga = saga.step(name, execute=step(name), compensate=lambda n: rx.empty())
    return saga


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


def test_a_begin_that_finds_its_id_taken_is_a_saga_error(journal: Any) -> None:
    journal.begin_owned("s-1", "three", 0.0, owner="other", lease_until=30.0)
    log: list[str] = []
    with pytest.raises(rxr.SagaError, match="already in the journal"):
        three_steps(log).run(0, journal=journal, saga_id="s-1").run()
    assert log == []


# --- under asyncio ----------------------------------------------------------------------


def run_concurrently(journal: rxr.SagaJournal, sagas: int) -> list[int]:
    saga = three_steps()

    async def main() -> list[int]:
        return await asyncio.gather(
            *(
                rxr.to_async(saga.run(0, journal=journal, saga_id=f"s-{i}"))
                for i in range(sagas)
            )
        )

    return asyncio.run(main())


def test_under_asyncio_the_journal_is_written_off_the_loop_in_group_commits() -> None:
    journal = Counting()
    loop_thread = threading.get_ident()
    assert run_concurrently(journal, 50) == [3] * 50
    assert loop_thread not in journal.threads
    assert set(journal.calls) == {"write_owned"}
    assert sum(journal.batches) == 50 * 4  # each saga's 4 writes, none lost
    assert len(journal.batches) < 50 * 4 / 2  # several sagas per transaction
    for i in range(50):
        state = journal.state(f"s-{i}")
        assert state is not None
        assert state.status == "completed"


def test_under_asyncio_a_step_is_subscribed_only_once_its_start_is_committed() -> None:
    subscribed_before_commit: list[str] = []

    class Watching(Counting):
        def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[bool]:
            done = super().write_owned(writes)
            started.update(
                (w.saga_id, e.step)
                for w in writes
                for e in w.entries
                if e.kind == "step_started"
            )
            return done

    started: set[tuple[str, str]] = set()

    def watched(name: str) -> Any:
        def execute(n: int, key: str) -> rx.Observable[int]:
            saga_id = key.rsplit(":", 1)[0]
            if (saga_id, name) not in started:
                subscribed_before_commit.append(key)
            return rx.of(n + 1)

        return execute

    saga = rxr.Saga[int]("w")
    for name in ("a", "b"):
        saga = saga.step(name, execute=watched(name), compensate=lambda n: rx.empty())
    journal = Watching()

    async def main() -> None:
        await asyncio.gather(
            *(
                rxr.to_async(saga.run(0, journal=journal, saga_id=f"w-{i}"))
                for i in range(20)
            )
        )

    asyncio.run(main())
    assert subscribed_before_commit == []


def test_under_asyncio_a_journal_that_fails_fails_the_sagas_of_that_batch() -> None:
    class Down(Counting):
        def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[bool]:
            if any(e.step == "b" for w in writes for e in w.entries):
                raise OSError("journal down")
            return super().write_owned(writes)

    journal = Down()
    saga = three_steps()

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                rxr.to_async(saga.run(0, journal=journal, saga_id=f"s-{i}"))
                for i in range(5)
            ),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())
    # A batch that fails fails every saga in it: those it would have begun
    # end with the journal's error (nothing of them happened), the others
    # fail at step b and are compensated.
    assert all(isinstance(o, rxr.SagaFailed | OSError) for o in outcomes)
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, rxr.SagaFailed):
            assert outcome.step == "b"
            assert journal.state(f"s-{i}") is not None
        else:
            assert "journal down" in str(outcome)


def test_ownership_lost_in_a_group_commit_stops_only_that_saga() -> None:
    class Stealing(Counting):
        def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[bool]:
            for w in writes:
                if w.saga_id == "s-3" and w.begin is None:
                    # A recoverer took s-3 after its first commit.
                    held = self.load("s-3")
                    assert held is not None
                    self.take(
                        "s-3",
                        w.now,
                        owner="recoverer",
                        lease_until=w.now + 30,
                        stale_before=0.0,
                        gone_owner=held.owner,
                    )
            return super().write_owned(writes)

    journal = Stealing()
    saga = three_steps()

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(
                rxr.to_async(saga.run(0, journal=journal, saga_id=f"s-{i}"))
                for i in range(6)
            ),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[3], rxr.SagaOwnershipLostError)
    assert [o for i, o in enumerate(outcomes) if i != 3] == [3] * 5


def test_under_asyncio_a_journal_whose_writes_never_block_is_written_in_place() -> None:
    journal = rxr.InMemorySagaJournal()
    assert not journal.writes_may_block
    assert run_concurrently(journal, 20) == [3] * 20


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_real_journals_under_asyncio(
    kind: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    journal: rxr.SagaJournal
    if kind == "sqlite":
        journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    else:
        server = request.getfixturevalue("redis_server")
        journal = rxr.RedisSagaJournal(server.client(), prefix=f"batch-{kind}")
    assert journal.writes_may_block
    assert run_concurrently(journal, 30) == [3] * 30
    for i in range(30):
        record = journal.load(f"s-{i}")
        assert record is not None
        assert record.status == "completed"
        assert len(record.entries) == 6
    journal.close()


def test_a_context_mutated_in_place_is_journaled_as_it_was_at_each_entry() -> None:
    """The start of a step records the very object the step before it
    succeeded with, encoded once; a step (or a merge) that mutates it in
    place must not leave a stale copy in the journal."""

    def add(name: str) -> Any:
        def execute(ctx: dict[str, int]) -> rx.Observable[dict[str, int]]:
            ctx[name] = 1  # in place, and returned as it was given
            return rx.of(ctx)

        return execute

    def merge(ctx: dict[str, int], results: list[dict[str, int]]) -> dict[str, int]:
        ctx["merged"] = len(results)
        return ctx

    saga = (
        rxr.Saga[dict[str, int]]("m")
        .step("a", add("a"))
        .step("b", add("b"))
        .parallel("p", [rxr.SagaStep("c", add("c"))], merge=merge)
        .step("d", add("d"))
    )
    journal = rxr.InMemorySagaJournal()
    saga.run({}, journal=journal, saga_id="m-1").run()
    record = journal.load("m-1")
    assert record is not None
    contexts = [(e.kind, e.step, e.context) for e in record.entries]
    assert contexts == [
        ("step_started", "a", b"{}"),
        ("step_succeeded", "a", b'{"a":1}'),
        ("step_started", "b", b'{"a":1}'),
        ("step_succeeded", "b", b'{"a":1,"b":1}'),
        ("step_started", "c", b'{"a":1,"b":1}'),
        ("step_succeeded", "c", b'{"a":1,"b":1,"c":1}'),
        ("step_started", "d", b'{"a":1,"b":1,"c":1,"merged":1}'),
        ("step_succeeded", "d", b'{"a":1,"b":1,"c":1,"merged":1,"d":1}'),
    ]
