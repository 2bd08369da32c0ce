"""Telemetry's cost: the build against itself with the emit calls patched out.

The baseline is the same code with every telemetry branch removed: the
modules on the hot paths (``_retry_run``, ``_timeout_run``,
``breaker/_gate``) are re-compiled from their own source with each
``if _bus.listening: ...`` statement (and ``... if _bus.listening else x``
expression) taken out, so the only difference measured is what a hot path
pays when nobody listens: one module-global read and one branch. Each row is
the min of 7 interleaved rounds, candidate over baseline; the target is
<= 1.05. The rows "with a subscriber" report what listening costs.
"""

from __future__ import annotations

import ast
import gc
import importlib
import inspect
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import reactivex as rx
from reactivex.disposable import Disposable

import rxresilience as rxr
from rxresilience import telemetry

from ._harness import Comparison

ROUNDS = 7
TARGET = 1.05
TIMEOUT_ITEMS = 10_000


def _listening(node: ast.AST) -> bool:
    """True for an expression that reads ``_bus.listening``."""
    return any(
        isinstance(part, ast.Attribute)
        and part.attr == "listening"
        and isinstance(part.value, ast.Name)
        and part.value.id == "_bus"
        for part in ast.walk(node)
    )


class _StripTelemetry(ast.NodeTransformer):
    def visit_If(self, node: ast.If) -> Any:
        self.generic_visit(node)
        if _listening(node.test):
            return node.orelse or ast.Pass()
        return node

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        self.generic_visit(node)
        return node.orelse if _listening(node.test) else node


def _copy(name: str, strip: bool, **replace: Any) -> types.ModuleType:
    """A fresh copy of module ``name``, optionally stripped of telemetry, with
    some of its globals replaced."""
    module = importlib.import_module(name)
    tree = ast.parse(inspect.getsource(module))
    if strip:
        tree = ast.fix_missing_locations(_StripTelemetry().visit(tree))
    copy = types.ModuleType(f"{name}_untelemetered")
    copy.__package__ = module.__package__
    copy.__file__ = module.__file__
    sys.modules[copy.__name__] = copy  # dataclasses look their module up
    exec(compile(tree, str(module.__file__), "exec"), copy.__dict__)
    copy.__dict__.update(replace)
    return copy


def _untelemetered() -> dict[str, Any]:
    run = _copy("rxresilience._retry_run", strip=True)
    retry_module = _copy("rxresilience._retry", strip=False, RetryRun=run.RetryRun)
    timeout_run = _copy("rxresilience._timeout_run", strip=True)
    timeout_module = _copy(
        "rxresilience._timeout", strip=False, TimeoutRun=timeout_run.TimeoutRun
    )
    gate = _copy("rxresilience.breaker._gate", strip=True)
    return {
        "retry": retry_module.retry,
        "timeout": timeout_module.timeout,
        "gate": gate,
    }


@contextmanager
def _gate_of(module: types.ModuleType) -> Iterator[None]:
    """Breakers made inside use ``module``'s Gate."""
    breaker_module = importlib.import_module("rxresilience.breaker._breaker")
    original = breaker_module.Gate
    breaker_module.Gate = module.Gate
    try:
        yield
    finally:
        breaker_module.Gate = original


def _noop(*_: Any) -> None:
    pass


def _min_of(
    candidate: Callable[[], object], baseline: Callable[[], object], loops: int
) -> tuple[float, float]:
    """Min over ROUNDS interleaved rounds of ns per call, candidate and baseline."""
    for _ in range(max(1, loops // 10)):
        candidate()
        baseline()
    best_c = best_b = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            for work, is_candidate in ((baseline, False), (candidate, True)):
                start = time.perf_counter_ns()
                for _ in range(loops):
                    work()
                spent = (time.perf_counter_ns() - start) / loops
                if is_candidate:
                    best_c = min(best_c, spent)
                else:
                    best_b = min(best_b, spent)
            gc.collect()
    finally:
        if enabled:
            gc.enable()
    return best_c, best_b


def _row(
    name: str,
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    target: float | None,
    loops: int,
    per: int = 1,
    unit: str = "call",
) -> Comparison:
    c, b = _min_of(candidate, baseline, loops)
    return Comparison(name, c / per, b / per, c / b, target, unit)


def _one(observer: Any, _scheduler: Any = None) -> Any:
    """A synchronous source of one value, with no trampoline: what is measured
    is the operator, not ``rx.of``'s scheduling."""
    observer.on_next(1)
    observer.on_completed()
    return _NOTHING


_NOTHING = Disposable()


def _paths(retry: Any, timeout: Any, breaker: rxr.CircuitBreaker) -> dict[str, Any]:
    source: rx.Observable[int] = rx.Observable(_one)
    retried = source.pipe(retry(3))
    guarded = source.pipe(rxr.circuit_breaker(breaker))
    timed = rx.from_iterable(range(TIMEOUT_ITEMS)).pipe(timeout(60.0))
    return {
        "rxr.retry success, per subscription": (
            lambda: retried.subscribe(_noop, _noop, _noop),
            20000,
            1,
            "call",
        ),
        "breaker.call": (lambda: breaker.call(len, "abc"), 50000, 1, "call"),
        "circuit_breaker operator, per subscription": (
            lambda: guarded.subscribe(_noop, _noop, _noop),
            20000,
            1,
            "call",
        ),
        f"rxr.timeout per item ({TIMEOUT_ITEMS:,} items)": (
            lambda: timed.subscribe(_noop, _noop, _noop),
            5,
            TIMEOUT_ITEMS,
            "item",
        ),
    }


def run() -> list[Comparison]:
    plain = _untelemetered()
    with _gate_of(plain["gate"]):
        plain_breaker = rxr.CircuitBreaker(name="bench-untelemetered")
    ours = _paths(rxr.retry, rxr.timeout, rxr.CircuitBreaker(name="bench-ours"))
    theirs = _paths(plain["retry"], plain["timeout"], plain_breaker)
    rows = []
    for name, (work, loops, per, unit) in ours.items():
        base = theirs[name][0]
        rows.append(
            _row(
                f"{name}: nobody listening vs emits patched out",
                work,
                base,
                target=TARGET,
                loops=loops,
                per=per,
                unit=unit,
            )
        )
    subscription = telemetry.events().subscribe(_noop)
    try:
        for name, (work, loops, per, unit) in ours.items():
            rows.append(
                _row(
                    f"{name}: one subscriber vs emits patched out",
                    work,
                    theirs[name][0],
                    target=None,
                    loops=loops,
                    per=per,
                    unit=unit,
                )
            )
    finally:
        subscription.dispose()
    return rows


if __name__ == "__main__":
    from ._harness import print_table

    print_table("telemetry", run())
