"""A reference model of ``rxr.hedge`` on a ``TestScheduler``, and scripted attempts.

The model replays what the operator promises, event by event, in the order a
``TestScheduler`` runs things (by due time, then by the order they were
scheduled), so property tests can compare every notification and every
subscription's start and end exactly.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import reactivex as rx
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.testing import TestScheduler

import rxresilience as rxr

#: What an attempt does after its latency: emit two items and complete, just
#: complete, fail (hedged), fail with an error ``should_hedge`` rejects, be
#: refused, emit an item and then fail, or never answer.
OUTCOMES = ("ok", "empty", "fail", "reject", "refuse", "partial", "hang")

Script = tuple[float, str]
Message = tuple[float, str, Any]


class AttemptFailed(Exception):
    """A scripted attempt's error; ``should_hedge`` accepts it."""


class AttemptRejected(Exception):
    """A scripted attempt's error that ``should_hedge`` rejects."""


def should_hedge(error: Exception) -> bool:
    return not isinstance(error, AttemptRejected)


def messages(index: int, script: Script) -> list[Message]:
    """Attempt ``index``'s notifications, relative to its subscription."""
    latency, outcome = script
    if outcome == "ok":
        return [
            (latency, "next", f"{index}a"),
            (latency, "next", f"{index}b"),
            (latency, "completed", None),
        ]
    if outcome == "empty":
        return [(latency, "completed", None)]
    if outcome == "fail":
        return [(latency, "error", AttemptFailed(index))]
    if outcome == "reject":
        return [(latency, "error", AttemptRejected(index))]
    if outcome == "refuse":
        return [(latency, "error", rxr.CallRefusedError(f"refused {index}", 1.0))]
    if outcome == "partial":
        return [
            (latency, "next", f"{index}a"),
            (latency, "error", AttemptFailed(index)),
        ]
    return []


@dataclass
class Attempts:
    """A source whose k-th subscription plays ``notes[k]`` (the last repeats), cold.

    Subscriptions are logged as ``(start, end)`` in float seconds (RxPY's
    ``ColdObservable`` truncates ends to ints and logs an end at 0 as never).
    """

    scheduler: TestScheduler
    notes: Sequence[list[Message]]
    spans: list[list[float | None]] = field(default_factory=list)

    def source(self) -> rx.Observable[Any]:
        return rx.create(self._subscribe)

    def _subscribe(self, observer: abc.ObserverBase[Any], _: Any = None) -> Any:
        scheduler = self.scheduler
        index = len(self.spans)
        span: list[float | None] = [scheduler.clock, None]
        self.spans.append(span)
        scheduled = CompositeDisposable()

        def act(kind: str, payload: Any) -> Callable[..., None]:
            def notify(*_: Any) -> None:
                if kind == "next":
                    observer.on_next(payload)
                elif kind == "error":
                    observer.on_error(payload)
                else:
                    observer.on_completed()

            return notify

        for time, kind, payload in self.notes[min(index, len(self.notes) - 1)]:
            scheduled.add(scheduler.schedule_relative(time, act(kind, payload)))

        def close() -> None:
            if span[1] is None:
                span[1] = scheduler.clock
            scheduled.dispose()

        return Disposable(close)

    def subscriptions(self) -> list[tuple[float, float | None]]:
        return [(start, end) for start, end in self.spans]  # type: ignore[misc]


@dataclass
class Expected:
    events: list[Message]
    subscriptions: list[tuple[float, float | None]]


def model(
    notes: Sequence[list[Message]],
    delays: Sequence[float],
    max_hedges: int,
    *,
    dispose_at: float | None = None,
) -> Expected:
    """What ``hedge`` does with these attempts, subscribed at 0.

    ``delays[n - 1]`` is the wait before hedge n, from the start of attempt n.
    """
    limit = 1 + max_hedges
    order = itertools.count()
    queue: list[tuple[float, int, tuple[Any, ...]]] = []
    spans: list[list[float | None]] = []
    live: dict[int, None] = {}
    out: list[Message] = []
    winner: int | None = None
    done = False
    started = to_start = 0
    timer: int | None = None  # the order number of the armed timer
    failure: Exception | None = None

    def push(time: float, event: tuple[Any, ...]) -> int:
        number = next(order)
        heapq.heappush(queue, (time, number, event))
        return number

    def ask() -> None:
        nonlocal to_start
        if not done and winner is None and started + to_start < limit:
            to_start += 1

    def launch(now: float) -> None:
        nonlocal to_start, started, timer
        while to_start and not done and winner is None:
            to_start -= 1
            index = started
            started += 1
            live[index] = None
            spans.append([now, None])
            for time, kind, payload in notes[min(index, len(notes) - 1)]:
                push(now + time, ("message", index, kind, payload))
            number = index + 1
            if number < limit and not to_start:
                delay = delays[number - 1]
                if delay == 0:
                    ask()
                else:
                    timer = push(now + delay, ("timer", number))

    def stop(now: float) -> None:
        nonlocal timer
        timer = None
        for other in live:
            spans[other][1] = now
        live.clear()

    to_start = 1
    launch(0.0)
    while queue:
        now, number, event = heapq.heappop(queue)
        if dispose_at is not None and now >= dispose_at:
            break
        if event[0] == "timer":
            if number != timer:
                continue
            timer = None
            if started == event[1] and not to_start:
                ask()
                launch(now)
            continue
        _, index, kind, payload = event
        if spans[index][1] is not None:  # ended or disposed
            continue
        if index == winner:
            out.append((now, kind, payload))
            if kind != "next":
                spans[index][1] = now
            continue
        if kind != "error":
            if done or winner is not None:
                continue
            winner = index
            del live[index]
            stop(now)
            out.append((now, kind, payload))
            if kind == "completed":
                spans[index][1] = now
            continue
        spans[index][1] = now
        del live[index]
        if isinstance(payload, AttemptRejected):
            done = True
            stop(now)
            out.append((now, "error", payload))
            continue
        if not isinstance(payload, rxr.CallRefusedError):
            failure = payload
        before = to_start
        ask()
        if to_start != before:
            timer = None
        if not live and not to_start:
            done = True
            out.append((now, "error", failure if failure is not None else payload))
            stop(now)
        else:
            launch(now)
    if dispose_at is not None:
        for span in spans:
            if span[1] is None:
                span[1] = dispose_at
    return Expected(out, [(start, end) for start, end in spans])  # type: ignore[misc]
