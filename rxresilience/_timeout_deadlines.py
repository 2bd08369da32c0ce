"""A timeout's budgets as deadlines on a scheduler's clock, and which one ran out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from reactivex import abc

from ._clock import RESOLUTION

__all__ = ["Expiry", "TimeoutBudgets", "TimeoutDeadlines"]


class TimeoutBudgets(NamedTuple):
    """A policy's budgets, converted where the policy is made: relative ones in
    seconds, absolute ones as deadlines; None where not given."""

    each_s: float | None
    each_at: datetime | None
    first_s: float | None
    total_s: float | None
    total_at: datetime | None


class Expiry(NamedTuple):
    """A budget that ran out: its name (``first``, ``each`` or ``total``) and
    its length in seconds, as :class:`~rxresilience.errors.TimeoutError` tells."""

    budget: str
    seconds: float


class TimeoutDeadlines:
    """One subscription's budgets as deadlines, in seconds on its scheduler's
    clock from the instant ``start`` the subscription began.

    It holds no count: the subscription tells how many items came and when
    the last one did, and these answer which deadline is next and whether
    one has passed.
    """

    __slots__ = (
        "each_at",
        "each_s",
        "first",
        "first_budget",
        "first_only",
        "start",
        "total",
        "total_due",
    )

    def __init__(
        self,
        budgets: TimeoutBudgets,
        scheduler: abc.SchedulerBase,
        start: float,
        on_clock: Callable[[float], float] = float,
    ) -> None:
        """``on_clock`` turns a time read on the scheduler's clock (an absolute
        budget's) into one on the deadlines' clock."""
        self.start = start
        #: Seconds allowed between items, or None.
        self.each_s = budgets.each_s
        #: The absolute deadline for every item, or None.
        self.each_at = (
            None
            if budgets.each_at is None
            else on_clock(scheduler.to_seconds(budgets.each_at))
        )
        # The first item's deadline, and the budget it reports.
        first: float | None
        if budgets.first_s is not None:
            first, first_budget = start + budgets.first_s, budgets.first_s
        elif self.each_s is not None:
            first, first_budget = start + self.each_s, self.each_s
        elif self.each_at is not None:
            # A deadline passed already: a budget of none (never negative).
            first, first_budget = self.each_at, max(0.0, self.each_at - start)
        else:
            first, first_budget = None, 0.0
        self.first = first
        self.first_budget = first_budget
        #: The deadline for the whole sequence, or None.
        self.total: float | None
        if budgets.total_s is not None:
            self.total = start + budgets.total_s
        elif budgets.total_at is not None:
            self.total = on_clock(scheduler.to_seconds(budgets.total_at))
        else:
            self.total = None
        #: From this clock reading on, the total budget has run out (None: never).
        self.total_due = None if self.total is None else self.total - RESOLUTION
        #: Only the first item has a deadline: once it came, none is left.
        self.first_only = (
            self.each_s is None and self.each_at is None and self.total is None
        )

    def item(self, count: int, last: float) -> float | None:
        """The next item's deadline after ``count`` items, the last at ``last``."""
        if not count:
            return self.first
        if self.each_s is not None:
            return last + self.each_s
        return self.each_at

    def earliest(self, item: float | None) -> float | None:
        """The earlier of the item deadline ``item`` and the total one."""
        total = self.total
        if total is not None and (item is None or total < item):
            return total
        return item

    def total_expired(self) -> Expiry:
        """The total budget's expiry (once the clock reads ``total_due``)."""
        assert self.total is not None
        return Expiry("total", max(0.0, self.total - self.start))

    def expiry(
        self, now: float, count: int, last: float, item_watched: bool
    ) -> Expiry | None:
        """The budget that has run out at ``now``, or None.

        ``item_watched`` is False when the item deadline does not count: the
        subscriber raised (nothing is timed until the next item), or items
        came since the timer was aimed.
        """
        due = self.total_due
        if due is not None and now >= due:
            return self.total_expired()
        if not item_watched:
            return None
        deadline = self.item(count, last)
        if deadline is None or not now >= deadline - RESOLUTION:
            return None
        if not count:
            return Expiry("first", self.first_budget)
        each_s = self.each_s
        return Expiry(
            "each", each_s if each_s is not None else max(0.0, deadline - self.start)
        )
