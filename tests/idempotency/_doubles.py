"""Test doubles for the idempotency tests: operations that count their runs,
real stores wrapped to gate a claim or fail a renewal, two handles on one store."""

from __future__ import annotations

import pathlib
import threading
from typing import Any

import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.stores import Claim, ClaimStatus


class Boom(Exception):
    pass


class SubscriberBug(Exception):
    pass


class Operation:
    """A cold source that counts its runs (the side effect)."""

    def __init__(
        self, scheduler: TestScheduler | None = None, *, latency: float = 0.0
    ) -> None:
        self.runs = 0
        self.scheduler = scheduler
        self.latency = latency
        self.observable: rx.Observable[str] = rx.defer(self._run)

    def _run(self, _: Any) -> rx.Observable[str]:
        self.runs += 1
        run = self.runs
        if self.scheduler is not None and self.latency:
            return rx.timer(self.latency, scheduler=self.scheduler).pipe(
                ops.flat_map(lambda _: rx.of(f"a{run}", f"b{run}"))
            )
        return rx.of(f"a{run}", f"b{run}")


class Runs:
    """A cold operation that counts its runs and how long each stayed subscribed."""

    def __init__(self, make: Any) -> None:
        self.count = 0
        self.disposed = 0
        self._make = make

    def observable(self) -> rx.Observable[Any]:
        def subscribe(_: Any) -> rx.Observable[Any]:
            self.count += 1
            return self._make().pipe(ops.finally_action(self._ended))

        return rx.defer(subscribe)

    def _ended(self) -> None:
        self.disposed += 1


def hold_elsewhere(store: rxr.IdempotencyStore, key: str, now: float = 0.0) -> None:
    claim = store.claim(key, None, "another-process", now, now + 60.0)
    assert claim.status is ClaimStatus.CLAIMED


class Gated(rxr.IdempotencyStore):
    """A real store whose ``claim`` can be held at a gate (another thread's claim
    in flight), delegating everything else."""

    def __init__(self, inner: rxr.IdempotencyStore) -> None:
        self.inner = inner
        self.codec = inner.codec
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        self.entered.set()
        assert self.gate.wait(10)
        return self.inner.claim(key, fingerprint, owner, now, lease_until)

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        return self.inner.complete(key, owner, record, expires_at)

    def release(self, key: str, owner: str) -> bool:
        return self.inner.release(key, owner)

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        return self.inner.renew(key, owner, lease_until)

    def get(self, key: str, now: float | None = None) -> bytes | None:
        return self.inner.get(key, now)

    def purge_expired(self, now: float | None = None) -> int:
        return self.inner.purge_expired(now)


class Flaky(Gated):
    """A real store whose renewals can be made to fail or to answer "not yours"."""

    def __init__(self, inner: rxr.IdempotencyStore) -> None:
        super().__init__(inner)
        self.renewals: list[float] = []
        self.unreachable = False
        self.not_yours = False

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        if self.unreachable:
            raise rxr.IdempotencyError("the store cannot be reached")
        if self.not_yours:
            return False
        self.renewals.append(lease_until)
        return super().renew(key, owner, lease_until)


class Watched(Gated):
    """A real store that notes the thread of each call, and can hold a
    completion at a gate of its own (a record in flight on another thread)."""

    def __init__(self, inner: rxr.IdempotencyStore) -> None:
        super().__init__(inner)
        self.calls_may_block = inner.calls_may_block
        self.calls: list[tuple[str, int]] = []
        self.completing = threading.Event()
        self.complete_gate = threading.Event()
        self.complete_gate.set()
        self.released = threading.Event()
        self.completed = threading.Event()

    def _note(self, name: str) -> None:
        self.calls.append((name, threading.get_ident()))

    def threads(self) -> set[int]:
        return {thread for _, thread in self.calls}

    def names(self) -> set[str]:
        return {name for name, _ in self.calls}

    def claim(
        self,
        key: str,
        fingerprint: str | None,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Claim:
        self._note("claim")
        return super().claim(key, fingerprint, owner, now, lease_until)

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        self._note("renew")
        return super().renew(key, owner, lease_until)

    def complete(self, key: str, owner: str, record: bytes, expires_at: float) -> bool:
        self._note("complete")
        self.completing.set()
        assert self.complete_gate.wait(10)
        try:
            return super().complete(key, owner, record, expires_at)
        finally:
            self.completed.set()

    def release(self, key: str, owner: str) -> bool:
        self._note("release")
        try:
            return super().release(key, owner)
        finally:
            self.released.set()


def two_sqlite_stores(tmp_path: pathlib.Path) -> tuple[Any, Any]:
    path = tmp_path / "shared.db"
    return rxr.SQLiteIdempotencyStore(path), rxr.SQLiteIdempotencyStore(path)


def two_handles(
    kind: str, tmp_path: Any, redis_server: Any
) -> tuple[rxr.IdempotencyStore, rxr.IdempotencyStore]:
    """Two store objects on one store: as two processes see it."""
    if kind == "sqlite":
        path = tmp_path / "shared.db"
        return rxr.SQLiteIdempotencyStore(path), rxr.SQLiteIdempotencyStore(path)
    prefix = f"{tmp_path.name}:"
    return (
        rxr.RedisIdempotencyStore(redis_server.client(), prefix=prefix),
        rxr.RedisIdempotencyStore(redis_server.client(), prefix=prefix),
    )
