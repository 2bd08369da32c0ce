"""The owner's run of the source (``idempotency/_source_run.py``): what its end
records, a value the codec cannot encode, ``max_run``."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.stores import ClaimStatus

from .._support import pending
from ._doubles import (
    Boom,
    Runs,
)

# --- what is recorded -----------------------------------------------------------------


def test_errors_are_not_recorded_and_release_the_claim(store: Any) -> None:
    attempts = 0

    def flaky(_: Any) -> rx.Observable[str]:
        nonlocal attempts
        attempts += 1
        return rx.throw(Boom()) if attempts < 3 else rx.of("ok")

    charge = rx.defer(flaky).pipe(rxr.idempotent(store, key="charge-4"))
    with pytest.raises(Boom):
        charge.run()
    assert charge.pipe(rxr.retry(3, backoff=None)).run() == "ok"
    assert charge.run() == "ok"
    assert attempts == 3


def test_record_errors_replays_a_recorded_error(store: Any) -> None:
    operation_runs = 0

    def declined(_: Any) -> rx.Observable[str]:
        nonlocal operation_runs
        operation_runs += 1
        return rx.concat(rx.of("attempted"), rx.throw(ValueError("card declined")))

    charge = rx.defer(declined).pipe(
        rxr.idempotent(store, key="charge-5", record_errors=ValueError)
    )
    first: list[Any] = []
    charge.subscribe(first.append, first.append)
    replay: list[Any] = []
    charge.subscribe(replay.append, replay.append)
    assert operation_runs == 1
    assert first[0] == "attempted"
    assert type(first[1]) is ValueError  # the first execution sees the original
    assert replay[0] == "attempted"
    assert isinstance(replay[1], rxr.RecordedError)
    assert replay[1].type_name == "builtins.ValueError"
    assert replay[1].message == "card declined"


def test_a_breaker_refusal_is_never_recorded(store: Any) -> None:
    breaker = rxr.CircuitBreaker(failure_threshold=1)
    breaker.force_open()
    runs = Runs(lambda: rx.of("ch"))
    charge = runs.observable().pipe(
        rxr.circuit_breaker(breaker),
        rxr.idempotent(store, key="c", record_errors=Exception),
    )
    with pytest.raises(rxr.CircuitOpenError):
        charge.run()
    breaker.reset()
    assert charge.run() == "ch"
    assert runs.count == 1


# --- a value the codec cannot encode --------------------------------------------------


def test_a_value_the_codec_cannot_encode_is_never_run_again(store: Any) -> None:
    """The effect happened: a marker is recorded and duplicates get the error."""
    calls = 0

    def operation(_: Any) -> rx.Observable[Any]:
        nonlocal calls
        calls += 1
        return rx.of(object()) if calls == 1 else rx.of("fine")

    charge = rx.defer(operation).pipe(rxr.idempotent(store, key="k"))
    with pytest.raises(rxr.IdempotencyCodecError) as failure:
        charge.run()
    assert isinstance(failure.value.__cause__, TypeError)
    assert failure.value.ran
    with pytest.raises(rxr.IdempotencyCodecError) as again:
        charge.run()
    assert again.value.ran
    assert calls == 1


def test_an_unencodable_result_is_never_run_again_and_the_source_runs_to_its_end(
    store: Any,
) -> None:
    scheduler = TestScheduler()
    runs = Runs(
        lambda: rx.timer(1.0, scheduler=scheduler).pipe(
            ops.flat_map(lambda _: rx.of("ok", decimal.Decimal("9.99"))),
            ops.concat(rx.timer(9.0, scheduler=scheduler).pipe(ops.map(str))),
        )
    )
    charge = runs.observable().pipe(
        rxr.idempotent(store, key="charge-7", ttl=100.0, scheduler=scheduler)
    )
    first: list[Any] = []
    charge.subscribe(first.append, first.append, scheduler=scheduler)
    scheduler.advance_to(1.0)
    # Told at once: the values before the bad one, then the error.
    [value, error] = first
    assert value == "ok"
    assert isinstance(error, rxr.IdempotencyCodecError)
    assert error.ran
    assert error.key == "charge-7"
    assert error.value_type == "decimal.Decimal"
    assert "charge-7" in str(error)
    assert "decimal.Decimal" in str(error)
    assert "codec=" in str(error)
    # A retry joining in this process gets the same, and nothing runs again.
    joined: list[Any] = []
    charge.subscribe(joined.append, joined.append, scheduler=scheduler)
    assert isinstance(joined[-1], rxr.IdempotencyCodecError)
    assert runs.disposed == 0  # the source runs on to its own end
    scheduler.advance_to(10.0)
    assert runs.disposed == 1
    # A duplicate after the end: the marker is replayed, never the operation.
    later: list[Any] = []
    charge.subscribe(later.append, later.append, scheduler=scheduler)
    scheduler.advance_to(50.0)
    assert isinstance(later[-1], rxr.IdempotencyCodecError)
    assert later[-1].ran
    assert runs.count == 1
    # After the ttl the key is free again.
    scheduler.advance_to(111.0)
    charge.subscribe(scheduler=scheduler)
    scheduler.advance_to(200.0)
    assert runs.count == 2


# --- max_run --------------------------------------------------------------------------


def test_max_run_stops_a_hung_owner_and_keeps_the_claim_until_its_lease_lapses(
    store: Any,
) -> None:
    scheduler = TestScheduler()
    runs = Runs(rx.never)
    seen: list[Any] = []
    runs.observable().pipe(
        rxr.idempotent(
            store, key="k", in_progress_timeout=3.0, max_run=10.0, scheduler=scheduler
        )
    ).subscribe(seen.append, seen.append, scheduler=scheduler)
    scheduler.advance_to(10.0)
    [error] = seen
    assert isinstance(error, rxr.TimeoutError)
    assert (error.budget, error.seconds) == ("max_run", 10.0)
    assert runs.disposed == 1
    assert pending(scheduler) == []  # renewal stopped
    # The outcome is unknown: the claim stands until its lease (renewed at 9 s,
    # to 12 s) lapses, then the key is free.
    assert store.claim("k", None, "next", 11.0, 20.0).status is ClaimStatus.IN_PROGRESS
    assert store.claim("k", None, "next", 12.0, 20.0).status is ClaimStatus.CLAIMED
