"""The logging adapter: levels by kind, the event in ``extra``, detaching."""

from __future__ import annotations

import contextlib
import logging

import pytest
import reactivex as rx
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.telemetry import _bus
from rxresilience.telemetry import logging as telemetry_logging


def test_events_are_logged_at_their_level_with_the_event_attached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.telemetry")
    caplog.set_level(logging.DEBUG, logger="tests.telemetry")
    subscription = telemetry_logging.enable(logger)
    try:
        scheduler = TestScheduler()
        breaker = rxr.CircuitBreaker(1, scheduler=scheduler, name="log-pay")
        rx.throw(ConnectionError("down")).pipe(
            rxr.circuit_breaker(breaker),
            rxr.retry(2, backoff=None, max_refusal_wait=0.0, name="r"),
        ).subscribe(on_error=lambda _e: None)
        rx.throw(KeyError("k")).pipe(rxr.fallback(1)).subscribe()
    finally:
        subscription.dispose()
    logged = [
        (r.levelno, r.telemetry.kind)
        for r in caplog.records  # type: ignore[attr-defined]
    ]
    assert logged == [
        (logging.DEBUG, "breaker.failed"),
        (logging.WARNING, "breaker.state_changed"),
        (logging.INFO, "retry.scheduled"),
        (logging.WARNING, "breaker.refused"),
        (logging.WARNING, "retry.exhausted"),
        (logging.DEBUG, "fallback.used"),
    ]
    assert "retry.scheduled 'r' attempt=1" in caplog.records[2].getMessage()
    assert not _bus.listening


def test_the_default_logger_and_disabled_levels_build_no_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rxresilience.telemetry")
    subscription = telemetry_logging.enable()
    try:
        rx.throw(KeyError("k")).pipe(rxr.retry(2, backoff=None)).subscribe(
            on_error=lambda _e: None
        )
    finally:
        subscription.dispose()
    assert [r.telemetry.kind for r in caplog.records] == ["retry.exhausted"]  # type: ignore[attr-defined]
    assert caplog.records[0].name == "rxresilience.telemetry"


def test_a_logger_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="logger"):
        telemetry_logging.enable("app")  # type: ignore[arg-type]


def test_an_error_whose_str_raises_does_not_detach_the_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    breaker = rxr.CircuitBreaker(failure_threshold=1, name="unprintable-logging")
    subscription = telemetry_logging.enable(logging.getLogger("t-unprintable"))
    try:
        with caplog.at_level(logging.DEBUG, logger="t-unprintable"):
            for _ in range(2):
                with contextlib.suppress(Exception):
                    breaker.call(lambda: (_ for _ in ()).throw(Unprintable()))
        texts = [r.getMessage() for r in caplog.records if r.name == "t-unprintable"]
        assert any("Unprintable.__str__ raised" in t for t in texts)
        assert any("breaker.refused" in t for t in texts)  # still attached
    finally:
        subscription.dispose()


def test_an_adapters_records_keep_the_event_and_the_adapters_own_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Tagged(logging.LoggerAdapter):  # type: ignore[type-arg]
        def process(
            self, msg: str, kwargs: dict[str, object]
        ) -> tuple[str, dict[str, object]]:
            message, options = super().process(msg, kwargs)
            return f"[{self.extra['tenant']}] {message}", options  # type: ignore[index]

    caplog.set_level(logging.DEBUG, logger="tests.telemetry.adapter")
    adapter = Tagged(logging.getLogger("tests.telemetry.adapter"), {"tenant": "a"})
    subscription = telemetry_logging.enable(adapter)
    try:
        rx.throw(KeyError("k")).pipe(rxr.fallback(1)).subscribe()
    finally:
        subscription.dispose()
    (record,) = caplog.records
    assert record.telemetry.kind == "fallback.used"  # type: ignore[attr-defined]
    assert record.tenant == "a"  # type: ignore[attr-defined]
    assert record.getMessage().startswith("[a] fallback.used")
