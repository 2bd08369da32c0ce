"""Journal writes off the event loop, several sagas per transaction.

Under asyncio a journal write must not run on the loop: a SQLite commit, a
Redis round trip, a lock held by another process would stall every
coroutine. Runs hand their writes to their journal's :class:`GroupCommit`;
a writer thread (a small pool of our own, one batch of a journal at a time)
writes everything handed in meanwhile in one ``write_owned`` call (one transaction: group commit), then
gives each run its answer back on the loop. While a batch is being written
the next one gathers, so the more sagas are ready at once, the fewer
transactions per saga.

Answers come back a few at a time, each turn of the loop: one turn never
advances hundreds of sagas while timers and other coroutines wait.

The writer thread writes, in effect, while the loop idles: it needs the GIL
after every call into SQLite, and CPython hands the GIL to a waiting thread
only when the holder has kept it a whole switch interval (5 ms) without
letting go, while a loop lets go and takes it back at every turn. So the
writes of the runs a busy loop advances wait for one another, and a batch
is written at the loop's speed, not the writer's (starting the writer
earlier, or only once the loop is quiet, measured the same).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

from .._loop_scheduler import in_loop_thread, loop_of_scheduler
from .._weak_identity_map import WeakIdentityMap
from ._journal import JournalWrite, SagaJournal

__all__ = ["GroupCommit", "JournalCalls", "checked", "group_commit_for", "write_owned"]

_log = logging.getLogger("rxresilience")

_R = TypeVar("_R")

#: Answers given back per turn of the loop.
ANSWERS_PER_TURN = 32

#: Writes in one transaction at most (a longer queue waits for the next one).
LONGEST_BATCH = 512

#: Bytes of contexts and errors in one transaction at most (a Redis script's
#: arguments, a SQLite transaction): one write larger than this goes alone.
LARGEST_BATCH = 16 * 1024 * 1024

#: Threads writing journals at once (each journal's writes one batch at a time).
WRITER_THREADS = 4

Answer = Callable[[bool | Exception], None]


class GroupCommit:
    """One journal's writer under one event loop."""

    __slots__ = ("_busy", "_journal", "_lock", "_loop", "_queue")

    def __init__(self, journal: SagaJournal, loop: asyncio.AbstractEventLoop) -> None:
        # Its runs hold the journal and run on the loop; held strongly here,
        # they would never leave the registry that maps them to this writer.
        self._journal = weakref.ref(journal)
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[JournalWrite, Answer]] = (
            collections.deque()
        )
        self._busy = False

    def submit(self, write: JournalWrite, answer: Answer) -> None:
        """Write ``write`` with the next batch; ``answer`` is called on the loop
        with its outcome (True, False or the journal's error)."""
        with self._lock:
            self._queue.append((write, answer))
            if self._busy:
                return
            self._busy = True
        loop = self._loop()
        try:
            if loop is None:
                raise RuntimeError("the event loop is gone")
            # Started at the end of this turn of the loop, so that what the
            # other sagas of the turn write joins the first batch.
            if in_loop_thread(loop):
                loop.call_soon(self._start)
            else:
                loop.call_soon_threadsafe(self._start)
        except RuntimeError as error:  # the loop is closing: write here, now
            with self._lock:
                self._busy = False
            _log.debug("journal writer unavailable (%s): writing on the loop", error)
            self._drain(in_place=True)

    def _start(self) -> None:
        try:
            _writers_pool().submit(self._drain)
        except RuntimeError:  # the interpreter is shutting down: write here, now
            self._drain(in_place=True)

    def _drain(self, in_place: bool = False) -> None:
        """On a worker thread (or, ``in_place``, the caller's): write batch
        after batch until none is waiting."""
        while True:
            with self._lock:
                if not self._queue:
                    self._busy = False
                    return
                batch = [self._queue.popleft()]
                size = _size(batch[0][0])
                while self._queue and len(batch) < LONGEST_BATCH:
                    size += _size(self._queue[0][0])
                    if size > LARGEST_BATCH:
                        break
                    batch.append(self._queue.popleft())
            journal = self._journal()
            try:
                if journal is None:  # unreachable while a run holds it
                    raise RuntimeError("the saga journal is gone")
                done = write_owned(journal, [write for write, _ in batch])
            except Exception as error:  # nothing of the batch is known to be written
                done = [error] * len(batch)
            except BaseException as error:  # answered, not lost
                if in_place:  # a Ctrl-C on the caller's thread is the caller's
                    with self._lock:
                        self._busy = False
                    raise
                # A cancellation out of a journal on an async driver, say:
                # raised here it would end this thread's work and leave the
                # writer busy for good, every later saga waiting on it.
                failure = _caught(f"{type(journal).__name__}.write_owned", error)
                done = [failure] * len(batch)
            answers = [
                (answer, outcome)
                for (_, answer), outcome in zip(batch, done, strict=True)
            ]
            try:
                loop = self._loop()
                if loop is None:
                    raise RuntimeError("the event loop is gone")
                loop.call_soon_threadsafe(self._answer, answers)
            except RuntimeError:  # the loop closed: nobody is left to answer
                _log.warning(
                    "event loop closed before %d journal writes were answered",
                    len(answers),
                )

    def _answer(self, answers: list[tuple[Answer, bool | Exception]]) -> None:
        """On the loop: a few answers now, the rest on the next turns."""
        now, later = answers[:ANSWERS_PER_TURN], answers[ANSWERS_PER_TURN:]
        loop = self._loop()
        if later and loop is not None:
            loop.call_soon(self._answer, later)
        for answer, outcome in now:
            try:
                answer(outcome)
            except Exception:
                _log.exception("a saga run failed on a journal answer")


class JournalCalls:
    """How a recovery calls its journal: in place, or off its event loop.

    Under asyncio (the subscribe-time scheduler an ``AsyncIOScheduler``), with
    a journal whose calls may block, each call runs on the journal writers'
    threads and its answer is posted to the caller's mailbox on the loop;
    elsewhere it runs at once and its answer is posted straight away.
    """

    __slots__ = ("_loop", "_post")

    def __init__(
        self,
        journal: SagaJournal,
        scheduler: abc.SchedulerBase | None,
        post: Callable[[Callable[[], None]], None],
    ) -> None:
        self._post = post
        self._loop = (
            loop_of_scheduler(scheduler)
            if journal.writes_may_block and isinstance(scheduler, AsyncIOScheduler)
            else None
        )

    def run(
        self,
        call: Callable[[], _R],
        then: Callable[[_R | Exception], None],
        dropped: Callable[[_R | Exception], None] = lambda _: None,
    ) -> None:
        """``then`` gets ``call``'s answer, or what it raised, from the mailbox;
        ``dropped`` gets it, on the thread that has it, if the loop closed."""
        loop = self._loop
        if loop is None:  # here: a Ctrl-C out of ``call`` is the caller's
            try:
                answer: _R | Exception = call()
            except Exception as error:
                answer = error
            self._post(lambda: then(answer))
            return

        def off_the_loop() -> None:
            answer = _answer_of(call)
            try:
                loop.call_soon_threadsafe(self._post, lambda: then(answer))
            except RuntimeError:  # the loop closed: nobody is left to hear it
                dropped(answer)

        try:
            _writers_pool().submit(off_the_loop)
        except RuntimeError:  # the interpreter is shutting down: here, now
            off_the_loop()


def _answer_of(call: Callable[[], _R]) -> _R | Exception:
    """On a pool thread: what ``call`` answered, or raised."""
    try:
        return call()
    except Exception as error:
        return error
    except BaseException as error:  # here it would be lost, and the caller with it
        return _caught("a journal call", error)


def _caught(what: str, error: BaseException) -> RuntimeError:
    """A BaseException out of ``what`` on a pool thread, as an error to answer with."""
    failure = RuntimeError(f"{what} raised {type(error).__name__}: {error}")
    failure.__cause__ = error
    return failure


def write_owned(
    journal: SagaJournal, writes: list[JournalWrite]
) -> list[bool | Exception]:
    """``journal.write_owned(writes)``, its answers :func:`checked`."""
    return checked(journal, writes, journal.write_owned(writes))


def checked(
    journal: SagaJournal, writes: list[JournalWrite], answers: Any
) -> list[bool | Exception]:
    """``journal``'s ``answers`` to ``writes``: one per write, each True, False
    or an exception (an answer of 1 or None is no answer: taken for one, a
    step would start on a start never written).

    Raises:
        TypeError: the journal answered otherwise, naming it.
    """
    done: list[Any] = answers if type(answers) is list else list(answers)
    if len(done) == len(writes):
        for answer in done:  # on the hot path: no allocation when all is well
            if (
                answer is not True
                and answer is not False
                and not isinstance(answer, Exception)
            ):
                break
        else:
            return done
    name = f"{type(journal).__name__}.write_owned"
    if len(done) != len(writes):
        raise TypeError(f"{name} answered {len(done)} times for {len(writes)} writes")
    wrong = next(a for a in done if not isinstance(a, bool | Exception))
    raise TypeError(
        f"{name} answered {wrong!r} for a write: True (written), False "
        "(not the writer's) or an exception expected"
    )


def _size(write: JournalWrite) -> int:
    size = 0
    for entry in write.entries:
        if entry.context is not None:
            size += len(entry.context)
        if entry.error is not None:
            size += len(entry.error)
    return size


@functools.lru_cache(maxsize=1)
def _pool(pid: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=WRITER_THREADS, thread_name_prefix="rxresilience-journal"
    )


def _writers_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The journal writers' threads: our own, not the loop's default executor,
    which user code may fill (``asyncio.to_thread``) while sagas wait; made
    again in a forked child, where the parent's threads do not exist."""
    return _pool(os.getpid())


#: Each journal's writers, by loop (both by identity: two journals that
#: compare equal still write each to its own database).
_writers: WeakIdentityMap[
    SagaJournal, WeakIdentityMap[asyncio.AbstractEventLoop, GroupCommit]
] = WeakIdentityMap()


def group_commit_for(
    journal: SagaJournal | None, scheduler: abc.SchedulerBase | None
) -> GroupCommit | None:
    """The journal's writer when ``scheduler`` (the subscribe-time one) runs
    on an asyncio loop and the journal's writes may block; None (write on
    the caller's thread) otherwise."""
    if (
        journal is None
        or not journal.writes_may_block
        or not isinstance(scheduler, AsyncIOScheduler)
    ):
        return None
    loop = loop_of_scheduler(scheduler)
    # Weakly referenced: a SagaJournal always can be (the base has no slots).
    by_loop = _writers.setdefault(journal, WeakIdentityMap)
    return by_loop.setdefault(loop, lambda: GroupCommit(journal, loop))
