"""Hedging's law and strategies: exactly one attempt's notifications pass.

The law needs only the library; the strategies import Hypothesis when called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import reactivex as rx
from reactivex import abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.testing import TestScheduler

from .._arguments import require_duration
from .._hedge import hedge
from .._hedge_policy import HedgePolicy
from ._trace import assert_no_pending, run

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "HEDGE_OUTCOMES",
    "HedgedAttemptError",
    "hedge_policies",
    "hedge_scripts",
    "hedging_emits_exactly_one_attempts_notifications",
]

#: What a scripted attempt does once its latency has passed: emit two items
#: and complete ("ok"), complete with no item ("empty"), fail ("fail"), emit
#: an item and then fail ("partial"), or never answer ("hang").
HEDGE_OUTCOMES = ("ok", "empty", "fail", "partial", "hang")

_Note = tuple[float, str, Any]


class HedgedAttemptError(Exception):
    """The error a failing scripted attempt raises; ``attempt`` counts from 0."""

    def __init__(self, attempt: int) -> None:
        super().__init__(f"attempt {attempt} failed")
        self.attempt = attempt


def _notes(attempt: int, script: tuple[float, str]) -> list[_Note]:
    """An attempt's notifications, relative to its subscription."""
    latency, outcome = script
    if outcome not in HEDGE_OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: use one of {HEDGE_OUTCOMES}")
    if outcome == "ok":
        return [
            (latency, "next", (attempt, 0)),
            (latency, "next", (attempt, 1)),
            (latency, "completed", None),
        ]
    if outcome == "empty":
        return [(latency, "completed", None)]
    if outcome == "fail":
        return [(latency, "error", HedgedAttemptError(attempt))]
    if outcome == "partial":
        return [
            (latency, "next", (attempt, 0)),
            (latency, "error", HedgedAttemptError(attempt)),
        ]
    return []


class _ScriptedSource:
    """Subscription k plays ``scripts[k]`` (the last repeats); each
    subscription's start and end are logged."""

    def __init__(self, scheduler: TestScheduler, scripts: Sequence[tuple[float, str]]):
        self._scheduler = scheduler
        self._scripts = list(scripts)
        self.notes: list[list[_Note]] = []
        self.starts: list[float] = []
        self.ends: list[float | None] = []

    def observable(self) -> rx.Observable[Any]:
        return rx.create(self._subscribe)

    def _subscribe(self, observer: abc.ObserverBase[Any], _: Any = None) -> Any:
        scheduler = self._scheduler
        attempt = len(self.starts)
        script = self._scripts[min(attempt, len(self._scripts) - 1)]
        notes = _notes(attempt, script)
        self.notes.append(notes)
        self.starts.append(float(scheduler.clock))
        self.ends.append(None)
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

        for time, kind, payload in notes:
            scheduled.add(scheduler.schedule_relative(time, act(kind, payload)))

        def close() -> None:
            if self.ends[attempt] is None:
                self.ends[attempt] = float(scheduler.clock)
            scheduled.dispose()

        return Disposable(close)


def hedging_emits_exactly_one_attempts_notifications(
    scripts: Sequence[tuple[float, str]],
    policy: HedgePolicy | None = None,
    *,
    operator: Callable[[], Callable[[rx.Observable[Any]], rx.Observable[Any]]]
    | None = None,
    horizon: float = 1e6,
) -> None:
    """What passes is exactly one attempt's notifications, and nothing is left behind.

    The source's k-th subscription (an attempt) follows ``scripts[k]``, a
    ``(latency, outcome)`` pair (see :data:`HEDGE_OUTCOMES`; the last script
    repeats), in virtual time; items are ``(attempt, i)`` and errors
    :class:`HedgedAttemptError`. The law checks that the output is exactly
    one attempt's notifications at that attempt's own times (or, when every
    attempt failed, one attempt's error alone); that no attempt starts after
    the first item or completion and every other attempt is disposed by
    then; and that once the subscription is disposed at ``horizon``, no
    attempt is still subscribed and no timer is pending.

    ``operator`` makes the operator (or pipeline) under test, such as your
    own ``lambda: rxr.resilient(hedge=..., ...)``; by default
    ``rxr.hedge(policy)`` (``HedgePolicy(1.0)`` if no ``policy``). A
    pipeline that adds errors of its own (a timeout around the hedge) does
    not keep this law on scripts that trigger them, nor does a retry outside
    the hedge on ``"partial"`` scripts (it retries a winner that failed after
    its first item: two rounds pass, as they should); give ``hedge_scripts``
    the outcomes that fit.
    """
    if not scripts:
        raise ValueError("scripts must hold at least one (latency, outcome)")
    for latency, outcome in scripts:
        require_duration("latency", latency)
        _notes(0, (latency, outcome))  # refuses an unknown outcome
    if operator is None:
        chosen = policy if policy is not None else HedgePolicy(1.0)

        def make() -> Callable[[rx.Observable[Any]], rx.Observable[Any]]:
            return hedge(chosen)
    else:
        make = operator
    scheduler = TestScheduler()
    source = _ScriptedSource(scheduler, scripts)
    trace = run(
        lambda: source.observable().pipe(make()),
        scheduler=scheduler,
        dispose_at=horizon,
    )
    events = [(event.time, event.kind, event.payload) for event in trace.events]
    starts, ends = source.starts, source.ends
    spans = list(zip(starts, ends, strict=True))
    shown = f"\n  output: {events}\n  attempts (start, end): {spans}"
    kinds = [kind for _, kind, _ in events]
    if kinds == ["error"]:  # every attempt failed (or one error ended it)
        [(at, _, error)] = events
        raised = [
            p for notes in source.notes for _, kind, p in notes if kind == "error"
        ]
        assert any(error is p for p in raised), f"an error no attempt raised{shown}"
        left = [k for k, end in enumerate(ends) if end is None or end > at]
        assert not left, f"attempts {left} outlived the error at {at}{shown}"
    elif events:
        matching = [
            k
            for k, notes in enumerate(source.notes)
            if events == [(starts[k] + t, kind, p) for t, kind, p in notes]
        ]
        assert matching, f"not exactly one attempt's notifications{shown}"
        first = events[0][0]  # the answer: no attempt starts later, the rest end
        late = [k for k, start in enumerate(starts) if start > first]
        assert not late, f"attempts {late} started after the answer{shown}"
        assert any(
            all(
                end is not None and end <= first
                for other, end in enumerate(ends)
                if other != k
            )
            for k in matching
        ), f"other attempts outlived the answer at {first}{shown}"
    still_open = [k for k, end in enumerate(ends) if end is None]
    assert not still_open, (
        f"attempts {still_open} still subscribed after disposal{shown}"
    )
    assert_no_pending(scheduler)


def hedge_policies(*, max_hedges: int = 3) -> SearchStrategy[HedgePolicy]:
    """``HedgePolicy`` values: round delays (so answers land on hedges) or a
    backoff, 1 to ``max_hedges`` hedges, hedging on every error."""
    from hypothesis import strategies as st

    from .._backoff import ConstantBackoff, LinearBackoff

    seconds = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0])
    delays = st.one_of(
        seconds,
        st.builds(ConstantBackoff, seconds),
        st.builds(
            lambda initial, step: LinearBackoff(initial=initial, step=step),
            st.sampled_from([0.5, 1.0, 2.0]),
            st.sampled_from([0.0, 1.0, 2.0]),
        ),
    )
    return st.builds(HedgePolicy, delays, st.integers(1, max_hedges))


def hedge_scripts(
    *, max_attempts: int = 5, outcomes: Sequence[str] = HEDGE_OUTCOMES
) -> SearchStrategy[list[tuple[float, str]]]:
    """Per-attempt ``(latency, outcome)`` scripts for the hedging law: latencies
    in eighths of a second (exact in floats, so ties with hedges happen)."""
    from hypothesis import strategies as st

    latency = st.one_of(
        st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 5.0]),
        st.integers(0, 80).map(lambda n: n / 8),
    )
    return st.lists(
        st.tuples(latency, st.sampled_from(list(outcomes))),
        min_size=1,
        max_size=max_attempts,
    )


def __dir__() -> list[str]:
    """The public names only (not the helpers this module imports)."""
    return sorted(__all__)
