"""When an execution's store calls happen off the event loop
(``idempotency/_store_calls.py``): the times they write are read where the
call is made, never on the loop before the call waited for a store thread;
and an execution that can no longer finish, its loop closed, stops renewing
its claim, which then lapses as a crashed process's would."""

from __future__ import annotations

import asyncio
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr
from rxresilience.stores import ClaimStatus

from ._doubles import Gated

#: How long the store threads are kept busy before the claim is made.
BUSY = 0.5


class Stamped(Gated):
    """A real store noting, for each claim and completion, how far the time it
    was given lags behind the clock when the call reaches the store."""

    def __init__(self, inner: rxr.IdempotencyStore) -> None:
        super().__init__(inner)
        self.lags: dict[str, float] = {}
        self.ttl = 0.0

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Any:
        self.lags["claim"] = time.time() - now
        return super().claim(key, fingerprint, owner, now, lease_until)

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        self.lags["complete"] = time.time() + self.ttl - expires_at
        return super().complete(key, owner, record, expires_at)


def test_a_claim_waiting_for_a_busy_store_thread_is_written_with_the_time_it_is_made(
    tmp_path: pathlib.Path,
) -> None:
    """Every store thread busy for ``BUSY`` (another store of the process,
    locked): the claim and the record are written with the clock read when
    the store is called, not ``BUSY`` earlier (a lease shorter than that
    would be written already expired, and a duplicate would run it again)."""
    busy = Gated(rxr.SQLiteIdempotencyStore(tmp_path / "other.db"))
    busy.gate.clear()
    stamped = Stamped(rxr.SQLiteIdempotencyStore(tmp_path / "charges.db"))
    stamped.ttl = 60.0

    async def main() -> str:
        blocked = [
            asyncio.ensure_future(
                rxr.to_async(rx.of(i).pipe(rxr.idempotent(busy, key=f"k{i}")))
            )
            for i in range(4)  # one per store thread
        ]
        assert await asyncio.to_thread(busy.entered.wait, 10)
        threading.Timer(BUSY, busy.gate.set).start()
        charge = rx.of("charged").pipe(
            rxr.idempotent(stamped, key="charge", ttl=60.0, in_progress_timeout=0.3)
        )
        result = await rxr.to_async(charge)
        await asyncio.gather(*blocked)
        return result

    assert asyncio.run(main()) == "charged"
    assert stamped.lags["claim"] < BUSY / 2
    assert stamped.lags["complete"] < BUSY / 2


# --- the loop closed while the source ran ---------------------------------------


async def forever() -> str:
    await asyncio.sleep(3600)
    return "never"


def claimable_within(store: rxr.IdempotencyStore, seconds: float) -> bool:
    """Whether another owner can claim the key before ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = time.time()
        if store.claim("k", None, "other", now, now + 60.0).status is (
            ClaimStatus.CLAIMED
        ):
            return True
        threading.Event().wait(0.05)
    return False


@pytest.mark.parametrize(
    "make",
    [
        lambda: rxr.from_async(forever),
        lambda: rx.timer(3600.0),  # on the loop's (dead) scheduler
    ],
    ids=["from_async", "timer"],
)
def test_a_claim_is_renewed_no_more_once_the_loop_closed_under_it(
    tmp_path: pathlib.Path, make: Callable[[], rx.Observable[Any]]
) -> None:
    """``finish_on_dispose``: the source must finish, but its loop closed and
    it never will: the renewals stop, the lease (0.3 s) lapses, another owner
    takes the key over, as after a crash."""
    store = rxr.SQLiteIdempotencyStore(tmp_path / "i.db")

    async def main() -> None:
        call = make().pipe(
            rxr.idempotent(
                store,
                key="k",
                in_progress_timeout=0.3,
                max_run=1.0,
                finish_on_dispose=True,
            )
        )
        task = asyncio.ensure_future(rxr.to_async(call))
        await asyncio.sleep(0.2)  # claimed, running: the loop closes under it
        assert not task.done()

    asyncio.run(main())
    assert claimable_within(store, 5.0)


def test_through_resilient_the_claim_lapses_once_the_loop_closed(
    tmp_path: pathlib.Path,
) -> None:
    store = rxr.SQLiteIdempotencyStore(tmp_path / "i.db")
    policy = rxr.IdempotencyPolicy(store, in_progress_timeout=0.3, max_run=1.0)

    async def main() -> None:
        call = rxr.from_async(forever).pipe(
            rxr.resilient(idempotency=policy, idempotency_key="k", retry=2, timeout=5)
        )
        task = asyncio.ensure_future(rxr.to_async(call))
        await asyncio.sleep(0.2)
        assert not task.done()

    asyncio.run(main())
    assert claimable_within(store, 5.0)
