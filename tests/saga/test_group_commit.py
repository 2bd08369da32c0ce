"""Journal writes under asyncio: off the loop, several sagas per transaction.

Under asyncio the writes happen off the loop, several sagas' writes in one
transaction (group commit), each still fenced on its own owner token. A
step's start is committed before the step is subscribed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler

import rxresilience as rxr

from .._postgres_server import fresh_name
from ._journals import Counting, three_steps

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


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_real_journals_under_asyncio(
    kind: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    journal: rxr.SagaJournal
    if kind == "sqlite":
        journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    elif kind == "postgres":
        pg = request.getfixturevalue("postgres_server")
        journal = rxr.PostgresSagaJournal(pg.url, table_prefix=fresh_name())
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


# --- found by a hostile review ------------------------------------------------------------


def test_no_step_starts_once_a_siblings_failed_write_turned_the_saga_back() -> None:
    """a's success fails to commit while b's success and c's start queue behind
    it: the saga compensates, and c, though its start is committed, never runs."""
    log: list[str] = []
    finished_b = threading.Event()
    subject: rx.subject.Subject[int] = rx.subject.Subject()
    loop_of: list[asyncio.AbstractEventLoop] = []

    class Flaky(Counting):
        def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[bool]:
            if any(
                [(e.kind, e.step) for e in w.entries] == [("step_succeeded", "a")]
                for w in writes
            ):

                def finish_b() -> None:
                    subject.on_next(2)
                    subject.on_completed()

                loop_of[0].call_soon_threadsafe(finish_b)
                assert finished_b.wait(10)  # b's commit is queued behind this one
                raise OSError("disk hiccup")
            return super().write_owned(writes)

    def undo(name: str) -> Any:
        return lambda n: rx.empty().pipe(
            ops.do_action(on_completed=lambda: log.append(f"undo {name}"))
        )

    def run(name: str, source: Any) -> Any:
        def execute(n: int) -> Any:
            log.append(f"run {name}")
            return source

        return execute

    saga = (
        rxr.Saga[int]("r1")
        .parallel(
            "g",
            [
                rxr.SagaStep("a", run("a", rx.of(1)), undo("a")),
                rxr.SagaStep(
                    "b",
                    run("b", subject.pipe(ops.finally_action(finished_b.set))),
                    undo("b"),
                ),
            ],
            merge=lambda ctx, results: sum(results),
        )
        .step("c", run("c", rx.of(3)), undo("c"))
    )
    journal = Flaky()

    async def main() -> Any:
        loop_of.append(asyncio.get_running_loop())
        try:
            return await rxr.to_async(saga.run(0, journal=journal, saga_id="s1"))
        except Exception as error:
            return error

    outcome = asyncio.run(main())
    assert isinstance(outcome, rxr.SagaFailed)
    assert "run c" not in log
    state = journal.state("s1")
    assert state is not None
    assert state.status == "compensated"
    # a's success, lost with the failed commit, was written with the next one.
    assert set(state.completed_steps) == {"a", "b"}


def test_a_failed_commit_publishes_no_start_and_keeps_the_facts() -> None:
    class FailStartB(Counting):
        def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[bool]:
            if any(
                e.kind == "step_started" and e.step == "b"
                for w in writes
                for e in w.entries
            ):
                raise OSError("disk full")
            return super().write_owned(writes)

    ran: list[str] = []
    saga = (
        rxr.Saga[int]("e")
        .step("a", lambda n: rx.of(n + 1), lambda n: rx.empty())
        .step("b", lambda n: (ran.append("b"), rx.of(n))[1], lambda n: rx.empty())
    )
    journal = FailStartB()
    events: list[Any] = []
    with pytest.raises(rxr.SagaFailed):
        saga.execute(0, journal=journal, saga_id="x").pipe(
            ops.do_action(events.append)
        ).run()
    names = [f"{type(e).__name__}:{getattr(e, 'step', '')}" for e in events]
    assert ran == []
    assert "StepStarted:b" not in names
    assert "StepSucceeded:a" in names
    record = journal.load("x")
    assert record is not None
    kinds = [(e.kind, e.step) for e in record.entries]
    assert ("step_succeeded", "a") in kinds  # kept for the next commit
    assert ("step_started", "b") not in kinds
    assert record.status == "compensated"


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_an_error_text_no_store_can_encode_fails_only_its_own_saga(
    kind: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    """os.fsdecode of undecodable bytes gives lone surrogates."""
    journal: rxr.SagaJournal
    if kind == "memory":
        journal = Counting()
    elif kind == "sqlite":
        journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    elif kind == "postgres":
        pg = request.getfixturevalue("postgres_server")
        journal = rxr.PostgresSagaJournal(pg.url, table_prefix=fresh_name())
    else:
        server = request.getfixturevalue("redis_server")
        journal = rxr.RedisSagaJournal(server.client(), prefix="surrogates")
    bad = os.fsdecode(b"/tmp/\xff")
    failing = rxr.Saga[int]("f").step(
        "a", lambda n: rx.throw(RuntimeError(f"cannot open {bad}"))
    )
    good = three_steps()

    async def main() -> list[Any]:
        return await asyncio.gather(
            rxr.to_async(failing.run(0, journal=journal, saga_id="bad")),
            *(
                rxr.to_async(good.run(0, journal=journal, saga_id=f"s-{i}"))
                for i in range(10)
            ),
            return_exceptions=True,
        )

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[0], rxr.SagaFailed)
    assert outcomes[1:] == [3] * 10
    record = journal.load("bad")
    assert record is not None
    assert record.status == "compensated"
    assert "\\udcff" in (record.entries[-1].error or "")
    journal.close()


def test_names_no_store_can_encode_are_refused_when_given() -> None:
    bad = os.fsdecode(b"\xff")
    with pytest.raises(ValueError, match=r"saga_id .*UTF-8"):
        three_steps().run(0, saga_id=bad)
    with pytest.raises(ValueError, match=r"name .*UTF-8"):
        rxr.Saga(bad)
    with pytest.raises(ValueError, match=r"name .*UTF-8"):
        rxr.Saga("s").step(bad, rx.of)


def test_a_renewal_is_never_written_on_the_event_loop() -> None:
    renewed_on: list[int] = []

    class Recording(Counting):
        def renew(self, *args: Any, **kwargs: Any) -> bool:
            renewed_on.append(threading.get_ident())
            return super().renew(*args, **kwargs)

    journal = Recording()

    async def step() -> int:
        await asyncio.sleep(0.25)  # a step outliving a few renewals
        return 1

    saga = rxr.Saga[int]("slow", lease=0.3).step("a", lambda n: rxr.from_async(step))

    async def main() -> int:
        loop_thread.append(threading.get_ident())
        return await rxr.to_async(saga.run(0, journal=journal))

    loop_thread: list[int] = []
    assert asyncio.run(main()) == 1
    assert renewed_on  # it did renew
    assert loop_thread[0] not in renewed_on


def test_event_loops_that_ran_journaled_sagas_are_let_go() -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    journal = Counting()
    saga = rxr.Saga[int]("leak").step("a", lambda n: rx.of(n + 1))

    async def main() -> int:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await rxr.to_async(saga.run(0, journal=journal))

    for _ in range(5):
        assert asyncio.run(main()) == 1
    # A writer thread may still be on its way out of handing its last answer
    # to a loop (its frame holds the loop until then): wait for that, bounded.
    deadline = time.monotonic() + 10
    while True:
        gc.collect()
        alive = [ref for ref in loops if ref() is not None]
        if not alive or time.monotonic() > deadline:
            break
        threading.Event().wait(0.01)  # the writer thread's turn
    assert alive == []


def test_a_batch_is_bounded_in_bytes_as_well_as_in_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rxresilience.saga import _group_commit

    monkeypatch.setattr(_group_commit, "LARGEST_BATCH", 2500)
    journal = Counting()
    saga = rxr.Saga[str]("big").step("a", rx.of)

    async def main() -> list[str]:
        return await asyncio.gather(
            *(
                rxr.to_async(saga.run("x" * 1000, journal=journal, saga_id=f"b-{i}"))
                for i in range(10)
            )
        )

    assert asyncio.run(main()) == ["x" * 1000] * 10
    # Each write carries about 1 kB (a start) or 2 kB (a success and the end):
    # never more than 2.5 kB in one transaction, one write alone if it must.
    assert max(journal.batches) <= 2


class EqualToAll(rxr.InMemorySagaJournal):
    """A journal that compares equal to every other (a dataclass of equal
    settings would), whose writes may block."""

    writes_may_block = True

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


def test_two_journals_that_compare_equal_each_get_their_own_writes() -> None:
    first, second = EqualToAll(), EqualToAll()
    saga = three_steps()

    async def main() -> list[int]:
        return await asyncio.gather(
            rxr.to_async(saga.run(0, journal=first, saga_id="in-first")),
            rxr.to_async(saga.run(0, journal=second, saga_id="in-second")),
        )

    assert asyncio.run(main()) == [3, 3]
    assert first.state("in-first") is not None
    assert first.state("in-second") is None
    assert second.state("in-second") is not None
    assert second.state("in-first") is None


@pytest.mark.parametrize("own_scheduler", [False, True])
def test_a_saga_whose_event_loop_closed_under_it_is_renewed_no_more(
    own_scheduler: bool,
) -> None:
    # The loop closed while the saga ran (a task left pending, a write's
    # answer with nobody left to hear it): its lease was renewed on a thread
    # for as long as the process lived, so no recoverer could finish it.
    closed = threading.Event()
    renewed_after_close = threading.Event()

    class Recording(Counting):
        def renew(self, *args: Any, **kwargs: Any) -> bool:
            if closed.is_set():
                renewed_after_close.set()
            return super().renew(*args, **kwargs)

    journal = Recording()
    # With a clock of its own (a real one) the run still lives on the loop
    saga = rxr.Saga[int](
        "stuck", lease=0.3, scheduler=TimeoutScheduler() if own_scheduler else None
    ).step("a", lambda n: rx.never())
    loop = asyncio.new_event_loop()
    task = loop.create_task(rxr.to_async(saga.run(0, journal=journal, saga_id="s")))
    loop.run_until_complete(asyncio.sleep(0.15))  # begun, a renewal or so
    loop.close()  # the task still pending
    closed.set()
    # a renewal is due every 0.1 s: five would have come
    assert not renewed_after_close.wait(0.5)
    record = journal.load("s")
    assert record is not None
    assert record.status == "running"
    del task


class Answering(rxr.InMemorySagaJournal):
    """Writes as the in-memory journal does, then answers ``answer`` for the
    ``nth`` batch (1-based) instead of what it did."""

    def __init__(self, answer: Any, nth: int = 1, *, may_block: bool = True) -> None:
        super().__init__()
        self.answer = answer
        self.nth = nth
        self.batches = 0
        self._may_block = may_block

    @property
    def writes_may_block(self) -> bool:
        return self._may_block

    def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[Any]:
        self.batches += 1
        done: list[Any] = list(super().write_owned(writes))
        if self.batches == self.nth:
            if isinstance(self.answer, BaseException):
                raise self.answer
            return self.answer(done)  # type: ignore[no-any-return]
        return done


def outcome_of(
    journal: rxr.SagaJournal, *, under_asyncio: bool
) -> tuple[Any, list[str]]:
    ran: list[str] = []
    saga = (
        rxr.Saga[int]("s")
        .step(
            "a",
            execute=lambda n: rx.of(n + 1).pipe(
                ops.do_action(lambda _: ran.append("a"))
            ),
            compensate=lambda n: rx.empty(),
        )
        .step(
            "b",
            execute=lambda n: rx.of(n + 1).pipe(
                ops.do_action(lambda _: ran.append("b"))
            ),
            compensate=lambda n: rx.empty(),
        )
    )
    source = saga.run(0, journal=journal, saga_id="s-1")
    try:
        if under_asyncio:

            async def main() -> Any:
                return await asyncio.wait_for(rxr.to_async(source), 5.0)

            return asyncio.run(main()), ran
        return source.run(), ran
    except Exception as error:  # the outcome under test
        return error, ran


@pytest.mark.parametrize("under_asyncio", [True, False])
@pytest.mark.parametrize(
    ("answer", "nth"),
    [
        (lambda done: [1 for _ in done], 1),  # ints, not bools: it hung under asyncio
        (lambda done: [None for _ in done], 1),  # None read as committed
        (lambda done: [None for _ in done], 2),  # b ran on a start never written
        (lambda done: [*done, True], 2),  # one answer too many
    ],
)
def test_a_journal_answering_what_is_not_a_bool_or_an_error_fails_the_saga_naming_it(
    answer: Any, nth: int, under_asyncio: bool
) -> None:
    journal = Answering(answer, nth, may_block=under_asyncio)
    outcome, ran = outcome_of(journal, under_asyncio=under_asyncio)
    assert isinstance(outcome, TypeError | rxr.SagaFailed), outcome
    error = outcome if isinstance(outcome, TypeError) else outcome.cause
    assert "Answering.write_owned" in str(error)
    assert ran == ([] if nth == 1 else ["a"])  # no step on an unwritten start


def test_a_base_exception_out_of_a_batch_fails_its_sagas_and_the_writer_goes_on() -> (
    None
):
    # asyncio.CancelledError out of a journal on an async driver left the
    # writer busy for good: every later saga of that journal and loop hung.
    journal = Answering(asyncio.CancelledError("driver call cancelled"), 1)
    saga = three_steps()

    async def main() -> list[Any]:
        outcomes: list[Any] = []
        for saga_id in ("s-1", "s-2"):
            try:
                outcomes.append(
                    await asyncio.wait_for(
                        rxr.to_async(saga.run(0, journal=journal, saga_id=saga_id)),
                        5.0,
                    )
                )
            except Exception as error:  # the outcome under test
                outcomes.append(error)
        return outcomes

    first, second = asyncio.run(main())
    assert isinstance(first, RuntimeError)
    assert isinstance(first.__cause__, asyncio.CancelledError)
    assert "Answering.write_owned" in str(first)
    assert second == 3


def test_a_disposal_while_the_end_is_being_written_lets_the_saga_complete() -> None:
    ending = threading.Event()
    go_on = threading.Event()

    class Slow(Counting):
        def write_owned(self, writes: Sequence[rxr.JournalWrite]) -> list[bool]:
            if any(write.status is not None for write in writes):
                ending.set()
                go_on.wait(5.0)
            return super().write_owned(writes)

    journal = Slow()
    log: list[str] = []
    undone: list[str] = []
    saga = rxr.Saga[int]("s").step(
        "a", execute=lambda n: rx.of(n + 1), compensate=lambda n: undo("a")
    )

    def undo(name: str) -> rx.Observable[int]:
        undone.append(name)
        return rx.empty()

    saga.events.subscribe(lambda event: log.append(type(event).__name__))

    async def main() -> None:
        task = asyncio.ensure_future(
            rxr.to_async(saga.run(0, journal=journal, saga_id="s-1"))
        )
        await asyncio.get_running_loop().run_in_executor(None, ending.wait, 5.0)
        task.cancel()  # disposes the run while its end is written
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the end's answer comes back on a later turn
            if "SagaCompleted" in log:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    record = journal.load("s-1")
    assert record is not None
    assert record.status == "completed"
    assert undone == []
    assert log[-1] == "SagaCompleted"


def test_recovery_under_asyncio_calls_the_journal_off_the_loop() -> None:
    # rxr.recover took its sagas, loaded them and gave them up on the loop:
    # a SQLite write lock held by another process froze every coroutine for
    # as long as it was held (up to the journal's 30 s timeout).
    entered = threading.Event()
    release = threading.Event()
    called_on: list[int] = []

    class SlowTake(Counting):
        def unfinished(self) -> list[str]:
            called_on.append(threading.get_ident())
            return super().unfinished()

        def load(self, saga_id: str) -> rxr.SagaRecord | None:
            called_on.append(threading.get_ident())
            return super().load(saga_id)

        def take(self, *args: Any, **kwargs: Any) -> bool:
            called_on.append(threading.get_ident())
            entered.set()
            release.wait(5.0)  # a write lock held elsewhere
            return super().take(*args, **kwargs)

    journal = SlowTake()
    now = time.time()
    journal.begin_owned("old", "s", now - 100, owner="dead", lease_until=now - 50)
    journal.append_owned(
        "old", rxr.JournalEntry("step_succeeded", "a", b"1"), now - 100, owner="dead"
    )
    undone: list[int] = []
    saga = rxr.Saga[int]("s").step(
        "a",
        execute=rx.of,
        compensate=lambda n: rx.from_callable(lambda: undone.append(n)),
    )

    async def main() -> list[Any]:
        loop_thread.append(threading.get_ident())
        events = asyncio.ensure_future(
            rxr.to_async(rxr.recover(journal, {"s": saga}).pipe(ops.to_list()))
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, entered.wait, 5.0)
        ticked = time.monotonic()
        await asyncio.sleep(0.01)  # the loop turns while the journal waits
        assert time.monotonic() - ticked < 1.0
        release.set()
        return await asyncio.wait_for(events, 5.0)

    loop_thread: list[int] = []
    events = asyncio.run(main())
    assert rxr.StepCompensated("a", "old") in events
    assert undone == [1]
    assert called_on
    assert loop_thread[0] not in called_on
