"""Docstrings are checked: doctests run, and marble sketches match the operators."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
from typing import Any

import pytest
import reactivex as rx
from reactivex import abc
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from ._support import record

# Every module of the package, so a new one cannot be forgotten here.
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(rxr.__path__, prefix="rxresilience.")
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests_pass(name: str) -> None:
    module = importlib.import_module(name)
    globs: dict[str, Any] = {name: getattr(rxr, name) for name in rxr.__all__}
    globs["ops"] = ops
    result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


class MarbleError(Exception):
    pass


def marble_events(line: str) -> list[tuple[float, str, Any]]:
    """Parse ``-a-#``-style marbles, one tick per character, into events.

    A group ``(b|)`` puts its events at the tick of its opening parenthesis.
    """
    events: list[tuple[float, str, Any]] = []
    group_tick: int | None = None
    for tick, char in enumerate(line):
        at = float(tick if group_tick is None else group_tick)
        if char == "(":
            group_tick = tick
        elif char == ")":
            group_tick = None
        elif char == "#":
            events.append((at, "error", MarbleError))
        elif char == "|":
            events.append((at, "completed", None))
        elif char not in "- ":
            events.append((at, "next", char))
    return events


def marble_source(scheduler: TestScheduler, line: str) -> rx.Observable[str]:
    """A cold observable that plays ``line`` from each subscription."""

    def subscribe(observer: abc.ObserverBase[str], _: Any = None) -> Any:
        disposables = []
        for tick, kind, value in marble_events(line):

            def act(*_: Any, kind: str = kind, value: Any = value) -> None:
                if kind == "next":
                    observer.on_next(value)
                elif kind == "error":
                    observer.on_error(MarbleError())
                else:
                    observer.on_completed()

            disposables.append(scheduler.schedule_relative(tick, act))
        return rx.disposable.CompositeDisposable(disposables)

    return rx.create(subscribe)


def sketch(function: Any) -> dict[str, tuple[int, str]]:
    """The ``name: marbles`` lines of a docstring's sketch, with their columns."""
    found: dict[str, tuple[int, str]] = {}
    for line in (inspect.getdoc(function) or "").splitlines():
        match = re.match(r"^\s*([\w ]+):\s{2,}(\S.*)$", line)
        if match:
            found[match.group(1).strip()] = (match.start(2), match.group(2))
    return found


def test_retry_marble_sketch_matches_the_operator() -> None:
    lines = sketch(rxr.retry)
    origin, attempt = lines["attempt 1"]
    scheduler = TestScheduler()
    starts: list[float] = []

    def factory(_: Any) -> rx.Observable[str]:
        starts.append(scheduler.clock)
        return marble_source(scheduler, attempt)

    events = record(
        scheduler,
        lambda: rx.defer(factory).pipe(rxr.retry(3, backoff=rxr.ConstantBackoff(2))),
        subscribe_at=0.0,
    )
    observed = [
        (time, kind, type(value) if kind == "error" else value)
        for time, kind, value in events
    ]
    result_column, result = lines["result"]
    assert result_column == origin
    assert observed == marble_events(result)
    drawn = [lines[f"attempt {k}"] for k in (1, 2, 3)]
    assert [float(column - origin) for column, _ in drawn] == starts
    assert all(marbles == attempt for _, marbles in drawn)


def test_circuit_breaker_marble_sketch_matches_the_operator() -> None:
    lines = sketch(rxr.circuit_breaker)
    origin = lines["call 1"][0]
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=2, reset_timeout=5, scheduler=scheduler
    )
    subscribed: list[float] = []
    observed: dict[str, list[tuple[float, str, Any]]] = {}
    for name, (column, drawn) in sorted(lines.items()):
        marbles = drawn.split()[0]
        start = float(column - origin)
        source = marble_source(scheduler, marbles.lstrip("#") or "-")

        def factory(_: Any, source: rx.Observable[str] = source) -> rx.Observable[str]:
            subscribed.append(scheduler.clock)
            return source

        observed[name] = [
            (time - start, kind, type(value) if kind == "error" else value)
            for time, kind, value in record(
                scheduler,
                lambda factory=factory: rx.defer(factory).pipe(
                    rxr.circuit_breaker(breaker)
                ),
                subscribe_at=start,
                until=start + len(marbles),
            )
        ]
    assert subscribed == [0.0, 2.0, 8.0]  # call 3 never reached its source
    assert observed["call 1"] == marble_events("-#")
    assert observed["call 2"] == marble_events("-#")
    [(time, kind, error)] = observed["call 3"]
    assert (time, kind, error) == (0.0, "error", rxr.CircuitOpenError)
    assert observed["call 4"] == marble_events("-a|")
    assert breaker.state is rxr.CircuitState.CLOSED


@pytest.mark.parametrize(
    ("function", "operator"),
    [
        (rxr.timeout, rxr.timeout(3)),
        (rxr.fallback, rxr.fallback("b")),
    ],
)
def test_source_result_sketches_match(function: Any, operator: Any) -> None:
    lines = sketch(function)
    (source_column, source_line), (result_column, result_line) = (
        lines["source"],
        lines["result"],
    )
    assert source_column == result_column
    source_marbles = source_line.split()[0]
    scheduler = TestScheduler()
    source = marble_source(scheduler, source_marbles)
    events = record(scheduler, lambda: source.pipe(operator), subscribe_at=0.0)
    observed = [
        (time, kind, "error" if kind == "error" else value)
        for time, kind, value in events
    ]
    expected = [
        (time, kind, "error" if kind == "error" else value)
        for time, kind, value in marble_events(result_line.split()[0])
    ]
    assert observed == expected
