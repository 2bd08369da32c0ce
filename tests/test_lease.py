"""The lease renewer: every third of the lease, a retry on failure, lost once."""

from __future__ import annotations

import time
from typing import Any

from reactivex.testing import TestScheduler

from rxresilience._lease import Lease, _keeper_of

from ._fork import in_forked_child
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


# --- on a real clock, the leases of a scheduler share one timer -------------------------


def shared_leases(
    count: int, length: float = 3.0
) -> tuple[TestScheduler, list[Holder], list[Lease]]:
    scheduler = TestScheduler()
    holders, leases = [], []
    for _ in range(count):
        holder = Holder()
        holder.scheduler = scheduler
        holders.append(holder)
        leases.append(
            Lease(
                length,
                length,
                scheduler,
                holder.now,
                holder.renew,
                lambda why, h=holder: h.lost.append((h.now(), why)),
                shared=True,
            )
        )
    return scheduler, holders, leases


def test_shared_leases_renew_every_third_as_their_own_timers_would() -> None:
    scheduler, holders, leases = shared_leases(3)
    scheduler.advance_to(0.5)
    late = Holder()
    late.scheduler = scheduler
    later = Lease(3.0, 3.5, scheduler, late.now, late.renew, print, shared=True)
    scheduler.advance_to(3.0)
    for holder in holders:
        assert [at for at, _ in holder.renewals] == [1.0, 2.0, 3.0]
    assert [at for at, _ in late.renewals] == [1.5, 2.5]
    later.stop()
    for lease in leases:
        lease.stop()
    scheduler.advance_by(10)
    assert all(len(h.renewals) == 3 for h in holders)
    assert pending(scheduler) == []  # fired once more, found nothing, stopped


def test_a_stopped_shared_lease_is_never_renewed_and_the_rest_are() -> None:
    scheduler, holders, leases = shared_leases(100)
    for lease in leases[::2]:
        lease.stop()
    scheduler.advance_to(1.0)
    assert [bool(h.renewals) for h in holders] == [False, True] * 50
    assert all(h.renewals == [(1.0, 4.0)] for h in holders[1::2])


def test_the_shared_timer_keeps_only_live_leases_as_they_come_and_go() -> None:
    scheduler, holders, _ = shared_leases(1, length=30.0)
    keeper = _keeper_of(scheduler)
    assert keeper is not None
    for _ in range(10_000):  # sagas that end long before their first renewal
        Lease(
            30.0, 30.0, scheduler, holders[0].now, holders[0].renew, print, shared=True
        ).stop()
    assert len(keeper._heap) <= 64 + 2 * 2
    scheduler.advance_to(10.0)
    assert holders[0].renewals == [(10.0, 40.0)]


def test_shared_leases_still_lose_and_retry_each_on_its_own() -> None:
    scheduler, holders, _ = shared_leases(2)
    holders[0].answer = False
    holders[1].answer = OSError("unreachable")
    scheduler.advance_to(5.0)
    assert holders[0].lost == [(1.0, "taken")]
    assert holders[1].lost == [(3.0, "lapsed")]
    assert pending(scheduler) == []


def test_leases_made_from_eight_threads_on_the_real_clock_all_renew() -> None:
    import threading

    from reactivex.scheduler import TimeoutScheduler

    scheduler = TimeoutScheduler.singleton()
    renewed: set[int] = set()
    lost: list[str] = []
    lock = threading.Lock()
    everyone = threading.Event()
    leases: list[Lease] = []

    def make(base: int) -> None:
        for n in range(base, base + 50):

            def renew(until: float, n: int = n) -> bool:
                with lock:
                    renewed.add(n)
                    if len(renewed) == 400:
                        everyone.set()
                return True

            lease = Lease(0.3, 0.3, scheduler, time.time, renew, lost.append)
            with lock:
                leases.append(lease)
            Lease(0.3, 0.3, scheduler, time.time, renew, lost.append).stop()

    threads = [threading.Thread(target=make, args=(i * 50,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert everyone.wait(10), f"{400 - len(renewed)} leases were never renewed"
    for lease in leases:
        lease.stop()
    assert lost == []


def test_after_fork_the_child_renews_its_own_leases_and_not_its_parents() -> None:
    import threading

    from reactivex.scheduler import TimeoutScheduler

    scheduler = TimeoutScheduler.singleton()
    renewed_here = threading.Event()

    def parents(until: float) -> bool:
        renewed_here.set()  # in the child, only if it renewed the parent's
        return True

    def own_lease_renewed() -> bool:
        renewed_here.clear()
        own = threading.Event()
        child = Lease(
            3.0,
            time.time() + 3.0,
            scheduler,
            time.time,
            lambda until: own.set() or True,
            print,
            first=0.4,
        )
        renewed = own.wait(10)
        child.stop()
        return renewed and not renewed_here.is_set()

    parent = Lease(
        3.0, time.time() + 3.0, scheduler, time.time, parents, print, first=0.2
    )
    try:
        assert in_forked_child(own_lease_renewed) == 0
    finally:
        parent.stop()


def test_a_shared_keeper_does_not_keep_its_scheduler_alive() -> None:
    import gc
    import weakref

    from reactivex.scheduler import NewThreadScheduler

    class OwnClock(NewThreadScheduler):
        @property
        def now(self) -> Any:  # its clock reads the scheduler
            return super().now

    scheduler = OwnClock()
    lease = Lease(3.0, 3.0, scheduler, time.time, lambda until: True, print)
    lease.stop()
    gone = weakref.ref(scheduler)
    del scheduler, lease
    gc.collect()
    assert gone() is None


def test_a_slow_renewal_is_followed_by_the_next_one_on_the_lease_s_own_cadence() -> (
    None
):
    # The next renewal was armed a third of a lease after the slow call
    # returned: a call of more than two thirds of the lease let it lapse.
    scheduler = TestScheduler()
    took = [0.0]
    renewals: list[tuple[float, float]] = []

    def now() -> float:
        return float(scheduler.clock) + took[0]

    def renew(until: float) -> bool:
        renewals.append((now(), until))
        took[0] += 2.5 if len(renewals) == 1 else 0.0  # the first call takes 2.5 s
        return True

    lease = Lease(3.0, 3.0, scheduler, now, renew, lambda why: None)
    scheduler.advance_to(1.0)  # renewed at 1.0 (until 4.0), answered at 3.5
    scheduler.advance_to(1.2)
    assert renewals == [(1.0, 4.0), (3.5, 6.5)]  # the next at once, not at 4.5
    lease.stop()
