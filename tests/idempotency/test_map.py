"""``rxr.idempotent_map``: a stream of requests, each key run once."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

from .._support import record
from ._doubles import SubscriberBug


def test_results_come_in_request_order_and_duplicates_replay() -> None:
    store = rxr.InMemoryIdempotencyStore()
    scheduler = TestScheduler()
    runs: list[str] = []

    def process(request: dict[str, Any]) -> rx.Observable[str]:
        runs.append(request["id"])
        # slower requests first: order must still follow the requests
        delay = {"a": 5.0, "b": 1.0}[request["id"]]
        return rx.timer(delay, scheduler=scheduler).pipe(
            ops.map(lambda _: f"paid {request['id']}")
        )

    requests = rx.of({"id": "a"}, {"id": "b"}, {"id": "a"})
    events = record(
        scheduler,
        lambda: requests.pipe(
            rxr.idempotent_map(
                process, store=store, key=lambda r: r["id"], scheduler=scheduler
            )
        ),
        subscribe_at=0,
    )
    assert [v for _, k, v in events if k == "next"] == ["paid a", "paid b", "paid a"]
    assert runs == ["a", "b"]
    assert [t for t, k, _ in events if k == "next"] == [5.0, 6.0, 6.0]


def test_max_concurrency_runs_requests_at_once_unordered() -> None:
    store = rxr.InMemoryIdempotencyStore()
    scheduler = TestScheduler()

    def process(request: str) -> rx.Observable[str]:
        delay = {"slow": 5.0, "fast": 1.0}[request]
        return rx.timer(delay, scheduler=scheduler).pipe(ops.map(lambda _: request))

    events = record(
        scheduler,
        lambda: rx.of("slow", "fast").pipe(
            rxr.idempotent_map(
                process,
                store=store,
                key=lambda r: r,
                max_concurrency=2,
                scheduler=scheduler,
            )
        ),
        subscribe_at=0,
    )
    assert [(t, v) for t, k, v in events if k == "next"] == [
        (1.0, "fast"),
        (5.0, "slow"),
    ]


def test_payload_functions_fingerprint_each_request() -> None:
    store = rxr.InMemoryIdempotencyStore()
    requests = rx.of(("k", 10), ("k", 11))
    results: list[Any] = []
    requests.pipe(
        rxr.idempotent_map(
            lambda r: rx.of(r[1]),
            store=store,
            key=lambda r: r[0],
            payload=lambda r: r[1],
        )
    ).subscribe(results.append, results.append)
    assert results[0] == 10
    assert isinstance(results[1], rxr.IdempotencyKeyReuseError)


# "\ud800": a lone surrogate ran in memory, failed as a bare
# UnicodeEncodeError in SQLite and as an IdempotencyError in Redis
@pytest.mark.parametrize("bad_key", ["", None, 7, "\ud800"])
def test_a_bad_key_is_an_error_for_that_element(bad_key: Any) -> None:
    store = rxr.InMemoryIdempotencyStore()
    results: list[Any] = []
    rx.of("ok", "bad").pipe(
        rxr.idempotent_map(
            rx.of, store=store, key=lambda r: "fine" if r == "ok" else bad_key
        )
    ).subscribe(results.append, results.append)
    assert results[0] == "ok"
    assert isinstance(results[1], TypeError | ValueError)
    assert "key" in str(results[1])


def test_a_function_that_returns_no_observable_fails_that_element() -> None:
    store = rxr.InMemoryIdempotencyStore()
    with pytest.raises(TypeError, match="Observable"):
        rx.of(1).pipe(
            rxr.idempotent_map(lambda r: r, store=store, key=str)  # type: ignore[arg-type, return-value]
        ).run()


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"key": "k"}, TypeError, "key"),
        ({"key": str, "payload": 3}, TypeError, "payload"),
        ({"key": str, "max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"key": str, "ttl": 0}, ValueError, "ttl"),
    ],
)
def test_bad_input_raises_at_construction(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        rxr.idempotent_map(rx.of, store=rxr.InMemoryIdempotencyStore(), **kwargs)


def test_idempotent_map_tells_a_raising_subscriber_and_records_the_request(
    store: Any,
) -> None:
    calls: list[str] = []

    def process(request: str) -> rx.Observable[str]:
        calls.append(request)
        return rx.of(f"{request}-1", f"{request}-2")

    seen: list[Any] = []

    def raising(value: Any) -> None:
        seen.append(value)
        raise SubscriberBug(value)

    rx.of("r1").pipe(rxr.idempotent_map(process, store=store, key=str)).subscribe(
        raising, seen.append
    )
    assert seen[0] == "r1-1"
    assert isinstance(seen[1], SubscriberBug)
    again = (
        rx.of("r1")
        .pipe(rxr.idempotent_map(process, store=store, key=str), ops.to_list())
        .run()
    )
    assert again == ["r1-1", "r1-2"]
    assert calls == ["r1"]
