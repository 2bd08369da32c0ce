"""``rxr.hedge`` per subscription when the source answers at once."""

from __future__ import annotations

from typing import Any

import reactivex as rx
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject

import rxresilience as rxr

from ._harness import Comparison, compare


def _noop(*_: Any) -> None:
    pass


def _identity(x: int) -> int:
    return x


def _answer(
    observer: abc.ObserverBase[int], _: abc.SchedulerBase | None
) -> abc.DisposableBase:
    observer.on_next(1)
    observer.on_completed()
    return Disposable()


def run() -> list[Comparison]:
    rows: list[Comparison] = []
    # A source that answers inside its own subscribe call.
    answering = rx.create(_answer)
    hedged = answering.pipe(rxr.hedge(0.2))
    mapped = answering.pipe(ops.map(_identity))
    rows.append(
        compare(
            "per subscription, answer inside subscribe: create + hedge(0.2) vs "
            "create + map(identity)",
            lambda: hedged.subscribe(_noop, _noop, _noop),
            lambda: mapped.subscribe(_noop, _noop, _noop),
            target=1.3,
            batches=15,
        )
    )
    # rx.of answers from the current thread's trampoline, just after subscribe
    # returns: the hedge is armed first, as a deadline on the default
    # scheduler's shared timer (no thread of its own), and cancelled at the answer.
    hedged_of = rx.of(1).pipe(rxr.hedge(0.2))
    mapped_of = rx.of(1).pipe(ops.map(_identity))
    rows.append(
        compare(
            "per subscription, answer from the trampoline: of(1) + hedge(0.2) vs "
            "of(1) + map(identity)",
            lambda: hedged_of.subscribe(_noop, _noop, _noop),
            lambda: mapped_of.subscribe(_noop, _noop, _noop),
            target=1.3,
            batches=15,
        )
    )
    # A source that answers after subscribe has returned, outside the
    # trampoline (a reply that arrives soon): the hedge's deadline is armed
    # and then cancelled, with no thread started for it.
    hedge, identity = rxr.hedge(0.2), ops.map(_identity)

    def answer_after(operator: Any) -> None:
        subject: Subject[int] = Subject()
        subject.pipe(operator).subscribe(_noop, _noop, _noop)
        subject.on_next(1)
        subject.on_completed()

    rows.append(
        compare(
            "per subscription, answer after subscribe returned: Subject + "
            "hedge(0.2) vs Subject + map(identity)",
            lambda: answer_after(hedge),
            lambda: answer_after(identity),
            target=None,
            batches=15,
        )
    )
    policy = rxr.HedgePolicy(0.2, max_hedges=2)
    rows.append(
        compare(
            "building the operator: rxr.hedge(policy) vs ops.map(identity)",
            lambda: rxr.hedge(policy),
            lambda: ops.map(_identity),
            target=None,
            loops=5000,
            batches=7,
            unit="operator",
        )
    )
    return rows
