"""Journals and sagas the recorder and group-commit tests share."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import reactivex as rx

import rxresilience as rxr


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
