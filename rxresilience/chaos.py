"""Fault injection operators, for tests and for staging.

A fault is injected when ``rng.random() < rate``, once per subscription (one
subscription is one call). Pass a seeded ``random.Random`` for repeatable
chaos.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

import reactivex as rx
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from ._arguments import (
    made_error,
    require_callable_with,
    require_duration,
    require_error_or_factory,
    require_instance,
    require_scheduler,
    require_unit_interval,
)
from ._clock import choose_scheduler
from ._seeded_random import SeededOnFirstUse

__all__ = ["inject_fault", "inject_latency"]

_T = TypeVar("_T")


def _rng(rng: random.Random | None) -> random.Random:
    if rng is None:
        return SeededOnFirstUse()
    require_instance("rng", rng, random.Random, "a random.Random")
    return rng


def inject_fault(
    rate: float,
    error: Exception | Callable[[], Exception],
    *,
    rng: random.Random | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Fail a subscription with ``error`` at the given rate, without subscribing.

    Examples:
        >>> import random, reactivex as rx
        >>> always = inject_fault(1.0, ConnectionError("chaos"), rng=random.Random(1))
        >>> rx.of(1).pipe(always, ops.materialize()).run().exception
        ConnectionError('chaos')

    Args:
        rate: the probability in [0, 1] that a subscription fails.
        error: the error, or a function making a fresh one.
        rng: where the dice come from.
    """
    probability = require_unit_interval("rate", rate)
    require_error_or_factory("error", error)
    if not isinstance(error, Exception):  # one wanting an argument failed every call
        require_callable_with(
            "error", error, (), "be an exception or a function of no argument"
        )
    dice = _rng(rng)

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if dice.random() < probability:
                observer.on_error(
                    error
                    if isinstance(error, Exception)
                    else made_error("error", error)
                )
                return Disposable()
            return source.subscribe(observer, scheduler=scheduler_)

        return Observable(subscribe)

    return apply


def inject_latency(
    rate: float,
    seconds: float,
    *,
    rng: random.Random | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Delay a subscription by ``seconds`` at the given rate.

    The delay runs on ``scheduler``, else the subscribe-time scheduler, else
    ``TimeoutScheduler``; disposing during it cancels the subscription.

    Args:
        rate: the probability in [0, 1] that a subscription is delayed.
        seconds: how long: at least 0, at most ``LONGEST_WAIT`` (about 292
            years, the longest wait a timer can be armed for).
        rng: where the dice come from.
        scheduler: where the delay runs.

    Raises:
        ValueError: ``rate`` outside [0, 1]; ``seconds`` negative, not finite,
            or above ``LONGEST_WAIT``.
        TypeError: ``rate`` or ``seconds`` not a number (a ``bool`` included),
            or a ``scheduler`` that is not one.
    """
    probability = require_unit_interval("rate", rate)
    delay = require_duration("seconds", seconds)
    require_scheduler("scheduler", scheduler)
    dice = _rng(rng)

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if dice.random() >= probability:
                return source.subscribe(observer, scheduler=scheduler_)
            chosen = choose_scheduler(scheduler, scheduler_)
            delayed: Observable[Any] = rx.timer(delay, scheduler=chosen).pipe(
                ops.flat_map(lambda _: source)
            )
            return delayed.subscribe(observer, scheduler=scheduler_)

        return Observable(subscribe)

    return apply


def __dir__() -> list[str]:
    """The public names only (not the helpers this module imports)."""
    return sorted(__all__)
