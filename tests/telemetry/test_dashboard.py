"""examples/grafana-dashboard.json queries only what we export."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from prometheus_client import CollectorRegistry

import rxresilience as rxr
from rxresilience.telemetry import KINDS
from rxresilience.telemetry import prometheus as telemetry_prometheus

DASHBOARD = pathlib.Path(__file__).parents[2] / "examples" / "grafana-dashboard.json"


def _queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            queries.append(query["query"])
    return queries


def _exported_sample_names() -> set[str]:
    """What a registry really exposes, with a breaker and every metric fed."""
    registry = CollectorRegistry()
    registration = telemetry_prometheus.register(registry)
    try:
        breaker = rxr.CircuitBreaker(name="dashboard-check")
        breaker.call(len, "x")
        names = {
            sample.name for metric in registry.collect() for sample in metric.samples
        }
    finally:
        registration.dispose()
    del breaker
    return names


def test_every_query_names_a_metric_we_export() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported_sample_names()
    queries = _queries(dashboard)
    assert len(queries) >= 5
    for query in queries:
        metrics = set(re.findall(r"\brxresilience_[a-z_]+\b", query))
        assert metrics, f"no rxresilience metric in {query!r}"
        assert metrics <= exported, (query, metrics - exported)


def test_the_event_kinds_the_queries_match_are_known_kinds() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for query in _queries(dashboard):
        for matched in re.findall(r'event=~?"([^"]+)"', query):
            for alternative in matched.split("|"):
                literal = alternative.replace("\\\\.", ".")
                if literal.endswith(".*"):  # a family: some kind must start with it
                    prefix = literal[:-2]
                    assert any(kind.startswith(prefix) for kind in KINDS), literal
                else:
                    assert literal in KINDS, literal


def test_the_dashboard_covers_what_the_issue_asks_for() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    text = " ".join(_queries(dashboard))
    assert "rxresilience_breaker_state" in text  # breaker states over time
    assert "breaker.refused" in text  # refusals
    assert "retry" in text  # retries
    assert "histogram_quantile(0.99" in text  # p99 call duration per policy
