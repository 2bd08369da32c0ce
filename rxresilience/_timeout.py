"""``rxr.timeout``: budgets in time for the first item, each gap, and the whole."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias, TypeVar

from reactivex import Observable, abc

from ._arguments import is_number, require_scheduler
from ._clock import LONGEST_WAIT, choose_scheduler
from ._fallback import FallbackLike, to_fallback
from ._timeout_run import TimeoutBudgets, TimeoutRun
from .telemetry._registry import require_policy_name

__all__ = ["AttemptBudget", "Budget", "TimeoutPolicy", "per_attempt", "timeout"]

_T = TypeVar("_T")

Budget: TypeAlias = float | timedelta | datetime
"""Seconds, a ``timedelta``, or an absolute, timezone-aware ``datetime``."""


def _seconds(name: str, value: Any) -> float:
    """A relative budget (seconds or a ``timedelta``) as positive seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif is_number(value):
        # An int beyond any float (10**400) is as out of range as infinity.
        seconds = math.inf if value > LONGEST_WAIT else float(value)
    else:
        raise TypeError(
            f"{name} must be seconds or a timedelta, got {type(value).__name__}"
        )
    if not math.isfinite(seconds) or seconds <= 0 or seconds > LONGEST_WAIT:
        raise ValueError(
            f"{name} must be a positive, finite duration of at most "
            f"{LONGEST_WAIT:g} seconds (the longest wait a timer can be armed "
            f"for), got {value!r}"
        )
    return seconds


def _budget(name: str, value: Any) -> float | datetime:
    """Seconds (relative) or an aware datetime (absolute)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name} must be a timezone-aware datetime; a naive one is ambiguous"
            )
        return value
    return _seconds(name, value)


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """The budgets of :func:`timeout` as one frozen, reusable value.

    Examples:
        >>> TimeoutPolicy(each=5.0).each
        5.0
        >>> TimeoutPolicy(first=10.0, each=2.0, total=60.0).first
        10.0
    """

    each: Budget | None = None
    first: float | timedelta | None = None
    total: Budget | None = None
    name: str = "timeout"

    # The budgets converted once, where the policy is made.
    _budgets: TimeoutBudgets = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_policy_name("name", self.name)
        if self.each is None and self.first is None and self.total is None:
            raise ValueError("timeout needs a budget: give each, first or total")
        each = None if self.each is None else _budget("each", self.each)
        first: object = self.first
        if isinstance(first, datetime):
            raise TypeError("first must be relative: seconds or a timedelta")
        first_s = None if first is None else _seconds("first", first)
        total = None if self.total is None else _budget("total", self.total)
        budgets = TimeoutBudgets(
            each_s=each if isinstance(each, float) else None,
            each_at=each if isinstance(each, datetime) else None,
            first_s=first_s,
            total_s=total if isinstance(total, float) else None,
            total_at=total if isinstance(total, datetime) else None,
        )
        object.__setattr__(self, "_budgets", budgets)


AttemptBudget: TypeAlias = float | timedelta | TimeoutPolicy
"""What one attempt's ``timeout=`` takes (in ``rxr.resilient`` and a saga's
steps): seconds or a ``timedelta`` for each item and gap, or a policy."""


def per_attempt(name: str, value: object) -> TimeoutPolicy:
    """An :data:`AttemptBudget` as a policy, or ``TypeError``/``ValueError``
    naming ``name``: seconds and ``timedelta`` values become ``each``."""
    if isinstance(value, TimeoutPolicy):
        return value
    if not is_number(value) and not isinstance(value, timedelta):
        raise TypeError(
            f"{name} must be seconds, a timedelta or a TimeoutPolicy, got "
            f"{type(value).__name__}"
        )
    _seconds(name, value)  # refused naming the caller's argument, not "each"
    return TimeoutPolicy(each=value)


def timeout(
    each: Budget | TimeoutPolicy | None = None,
    *,
    first: float | timedelta | None = None,
    total: Budget | None = None,
    fallback: FallbackLike = None,
    scheduler: abc.SchedulerBase | None = None,
    name: str | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Fail with ``rxr.TimeoutError`` (or switch to ``fallback``) when a budget runs out.

    With ``each=3`` (the first item and every gap within 3 ticks)::

        source:  -a--b------c|
        timeout(3)
        result:  -a--b--#          # TimeoutError(budget="each", seconds=3)

    ``each`` means what ``reactivex.operators.timeout``'s ``duetime`` means:
    a relative budget for the first item and every gap, or an absolute,
    aware ``datetime`` deadline. ``first`` overrides the budget of the first
    item; ``total`` bounds the whole subscription, terminal notification
    included.

    Ties: an item that arrives exactly at a first-item or gap deadline is
    treated as ``ops.timeout`` treats it: whichever of the item and the
    deadline was scheduled first wins (the first deadline is scheduled
    before the source is subscribed, so it beats a cold source's item at
    the same instant; a later gap's deadline loses to such an item). At the
    ``total`` deadline nothing more gets through: an item or terminal
    notification at that very instant is replaced by the timeout.

    On expiry the source is disposed at that instant and the subscriber gets
    :class:`rxresilience.TimeoutError` naming the budget, or is switched to
    ``fallback`` (which receives that error if it is a function). Disposing
    the subscription is never reported as a timeout. Timing runs on
    ``scheduler``, else the subscribe-time scheduler, else
    ``TimeoutScheduler``; a subscription keeps at most one pending timer,
    re-armed lazily, and each item costs one clock read.

    Examples:
        >>> import reactivex as rx
        >>> rx.of(1, 2).pipe(timeout(5.0)).run()
        2
        >>> policy = TimeoutPolicy(first=10.0, each=2.0)
        >>> rx.of(1).pipe(timeout(policy)).run()
        1

    Args:
        each: the budget of the first item and each gap, or a
            :class:`TimeoutPolicy` carrying all budgets.
        first: the first item's budget (relative), overriding ``each``.
        total: the whole subscription's budget, or an absolute deadline.
        fallback: what to continue with on timeout: a value, an
            ``Observable`` or ``function(error) -> Observable``.
        scheduler: where the timer runs and whose clock is read.
        name: the policy's name on its ``timeout.expired`` telemetry events
            (default: the policy's, ``"timeout"``).

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: no budget, a zero or negative budget, a naive datetime.
        TypeError: a budget or ``fallback`` of the wrong type; a ``name``
            that is not a string.
    """
    if isinstance(each, TimeoutPolicy):
        if first is not None or total is not None:
            raise TypeError(
                "timeout() takes either a TimeoutPolicy or budgets, not both"
            )
        policy = each
        if name is not None:  # renames it: the budgets stay the policy's
            policy = TimeoutPolicy(
                each=policy.each,
                first=policy.first,
                total=policy.total,
                name=require_policy_name("name", name),
            )
    elif name is None:
        policy = TimeoutPolicy(each=each, first=first, total=total)
    else:
        policy = TimeoutPolicy(each=each, first=first, total=total, name=name)
    replacement = None if fallback is None else to_fallback("fallback", fallback)
    require_scheduler("scheduler", scheduler)
    budgets = policy._budgets
    policy_name = policy.name

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            chosen = choose_scheduler(scheduler, scheduler_)
            run = TimeoutRun(
                budgets, observer, chosen, scheduler_, replacement, policy_name
            )
            run.start(source)
            return run

        return Observable(subscribe)

    return apply
