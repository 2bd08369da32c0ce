"""The lease renewer: every third of the lease, a retry on failure, lost once."""

from __future__ import annotations

from typing import Any

from reactivex.testing import TestScheduler

from rxresilience._lease import Lease

from ._support import pending


class Holder:
    """A store's answers to renewals, scripted."""

    def __init__(self) -> None:
        self.answer: bool | Exception = True
        self.renewals: list[tuple[float, float]] = []
        self.lost: list[tuple[float, str]] = []

    def renew(self, until: float) -> bool:
        if isinstance(self.answer, Exception):
            raise self.answer
        self.renewals.append((self.now(), until))
        return self.answer

    def now(self) -> float:
        return float(self.scheduler.clock)

    scheduler: Any = None


def start(length: float) -> tuple[TestScheduler, Holder, Lease]:
    scheduler = TestScheduler()
    holder = Holder()
    holder.scheduler = scheduler
    lease = Lease(
        length,
        length,
        scheduler,
        holder.now,
        holder.renew,
        lambda why: holder.lost.append((holder.now(), why)),
    )
    return scheduler, holder, lease


def test_a_live_owner_renews_every_third_of_the_lease() -> None:
    scheduler, holder, lease = start(3.0)
    scheduler.advance_to(6.0)
    assert holder.renewals == [(t, t + 3.0) for t in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)]
    assert lease.until == 9.0
    lease.stop()
    assert pending(scheduler) == []
    assert holder.lost == []


def test_not_yours_loses_the_lease_at_once_and_stops() -> None:
    scheduler, holder, _ = start(3.0)
    scheduler.advance_to(1.0)
    holder.answer = False
    scheduler.advance_to(20.0)
    assert holder.lost == [(2.0, "taken")]
    assert pending(scheduler) == []


def test_an_unreachable_store_is_tried_again_until_the_lease_runs_out() -> None:
    scheduler, holder, _ = start(20.0)
    holder.answer = ConnectionError("down")
    scheduler.advance_to(100.0)
    assert holder.lost == [(20.0, "lapsed")]  # exactly at the lease's end
    assert pending(scheduler) == []


def test_a_store_back_in_time_keeps_the_lease() -> None:
    scheduler, holder, lease = start(3.0)
    holder.answer = ConnectionError("down")
    scheduler.advance_to(2.0)
    holder.answer = True
    scheduler.advance_to(3.0)
    assert holder.lost == []
    assert lease.until == 6.0
    lease.stop()
