"""Measure a candidate against a baseline in one process, interleaved, as a ratio.

Absolute timings move with the machine and its load; a ratio against a
baseline measured beside it, in the same run and the same process, moves far
less. Each comparison alternates baseline and candidate batches and reports
the median of the per-batch ratios.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Comparison", "compare", "print_table"]


@dataclass(frozen=True)
class Comparison:
    """One line of the table: candidate cost / baseline cost, and the target."""

    name: str
    candidate_ns: float
    baseline_ns: float
    ratio: float
    target: float | None
    unit: str

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "report"
        return "ok" if self.ratio <= self.target else "MISSED"


def _batch(work: Callable[[], object], loops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(loops):
        work()
    return (time.perf_counter_ns() - start) / loops


def compare(
    name: str,
    candidate: Callable[[], object],
    baseline: Callable[[], object],
    *,
    target: float | None,
    loops: int = 2000,
    batches: int = 15,
    per: int = 1,
    unit: str = "call",
) -> Comparison:
    """Time ``candidate`` and ``baseline`` in alternating batches.

    Args:
        name: the table row's label.
        candidate: our code, one unit of work per call.
        baseline: what we compare with, one unit of work per call.
        target: the highest acceptable ratio, or None to only report it.
        loops: calls per batch.
        batches: batches of each; the median ratio is reported.
        per: units of work one call stands for (items in a stream), for the
            per-unit figures.
        unit: what one unit is, for the table.
    """
    for _ in range(max(1, loops // 10)):  # warm up caches and lazy imports
        candidate()
        baseline()
    ratios: list[float] = []
    candidate_times: list[float] = []
    baseline_times: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(batches):
            b = _batch(baseline, loops)
            c = _batch(candidate, loops)
            baseline_times.append(b)
            candidate_times.append(c)
            ratios.append(c / b)
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return Comparison(
        name=name,
        candidate_ns=statistics.median(candidate_times) / per,
        baseline_ns=statistics.median(baseline_times) / per,
        ratio=statistics.median(ratios),
        target=target,
        unit=unit,
    )


def print_table(title: str, rows: list[Comparison]) -> None:
    """Print one suite's results as a Markdown table."""
    print(f"\n### {title}\n")
    print("| benchmark | ours | baseline | ratio | target | |")
    print("|---|---:|---:|---:|---:|---|")
    for row in rows:
        target = "-" if row.target is None else f"<= {row.target:.3g}x"
        print(
            f"| {row.name} | {_figure(row.candidate_ns, row.unit)} "
            f"| {_figure(row.baseline_ns, row.unit)} | {row.ratio:.2f}x "
            f"| {target} | {row.verdict} |"
        )


def _figure(value: float, unit: str) -> str:
    """A measured value as the table shows it: nanoseconds per unit as us, a
    stall (nanoseconds) as ms, a count as it is."""
    if unit == "stall":
        return f"{value / 1e6:.1f} ms"
    if unit == "count":
        return f"{value:.2f}"
    return f"{value / 1000:.2f} us/{unit}"
