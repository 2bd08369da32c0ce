"""The Prometheus adapter, scraped over HTTP from a real exposition server."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.telemetry import _bus
from rxresilience.telemetry import prometheus as telemetry_prometheus


class _Scraper:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.server, self.thread = start_http_server(
            0, addr="127.0.0.1", registry=self.registry
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/metrics"

    def scrape(self) -> dict[str, list[Any]]:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            text = response.read().decode()
        return {
            family.name: family.samples
            for family in text_string_to_metric_families(text)
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def scraper() -> Iterator[_Scraper]:
    server = _Scraper()
    registration = telemetry_prometheus.register(server.registry)
    yield server
    registration.dispose()
    server.close()
    assert not _bus.listening


def _values(samples: list[Any], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_events_calls_and_breaker_states_are_scraped(scraper: _Scraper) -> None:
    scheduler = TestScheduler()
    breaker = rxr.CircuitBreaker(
        failure_threshold=2, reset_timeout=1e6, scheduler=scheduler, name="prom-pay"
    )
    rx.timer(2.0).pipe(rxr.circuit_breaker(breaker)).subscribe(scheduler=scheduler)
    scheduler.start()
    for _ in range(3):
        rx.throw(ConnectionError("down")).pipe(
            rxr.circuit_breaker(breaker), rxr.retry(1)
        ).subscribe(on_error=lambda _e: None)
    families = scraper.scrape()
    events = families["rxresilience_events"]
    assert _values(events, "rxresilience_events_total", policy="prom-pay") == 5
    assert _values(events, "rxresilience_events_total", event="breaker.failed") == 2
    assert _values(events, "rxresilience_events_total", event="breaker.refused") == 1
    assert (
        _values(events, "rxresilience_events_total", event="breaker.state_changed") == 1
    )
    assert _values(events, "rxresilience_events_total", event="retry.exhausted") == 3
    calls = families["rxresilience_call_duration_seconds"]
    assert (
        _values(calls, "rxresilience_call_duration_seconds_count", policy="prom-pay")
        == 3
    )
    assert (
        _values(calls, "rxresilience_call_duration_seconds_sum", policy="prom-pay")
        == 2.0
    )
    states = families["rxresilience_breaker_state"]
    pay = {
        s.labels["state"]: s.value for s in states if s.labels["policy"] == "prom-pay"
    }
    assert pay == {
        "closed": 0.0,
        "open": 1.0,
        "half-open": 0.0,
        "forced-open": 0.0,
        "disabled": 0.0,
    }
    for sample in events:  # the labels are names and kinds, nothing else
        assert set(sample.labels) == {"policy", "event"}


def test_a_breaker_that_is_gone_leaves_the_gauge(scraper: _Scraper) -> None:
    import gc

    breaker = rxr.CircuitBreaker(name="prometheus-short-lived")
    states = scraper.scrape()["rxresilience_breaker_state"]
    assert any(s.labels["policy"] == "prometheus-short-lived" for s in states)
    del breaker
    gc.collect()
    states = scraper.scrape()["rxresilience_breaker_state"]
    assert not any(s.labels["policy"] == "prometheus-short-lived" for s in states)


def test_registering_twice_on_one_registry_is_refused_and_dispose_unregisters() -> None:
    registry = CollectorRegistry()
    registration = telemetry_prometheus.register(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        telemetry_prometheus.register(registry)
    registration.dispose()
    telemetry_prometheus.register(registry).dispose()  # free again
    assert not _bus.listening


def test_the_exported_metric_names_are_the_documented_ones(scraper: _Scraper) -> None:
    breaker = rxr.CircuitBreaker(name="prometheus-names")
    breaker.call(len, "x")
    samples = {s.name for family in scraper.scrape().values() for s in family}
    for metric in telemetry_prometheus.METRICS:
        assert any(name.startswith(metric) for name in samples), metric
    del breaker
