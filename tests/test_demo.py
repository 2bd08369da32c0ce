"""The README's demo command runs and tells its story."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import threading
from types import ModuleType

import matplotlib.image

import rxresilience as rxr

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_orders_demo_completes_or_compensates_every_order_without_double_charges(
    tmp_path: pathlib.Path,
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "orders_demo.py"),
            "--orders",
            "120",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = {
        line[:30].strip(): line[30:].strip()
        for line in result.stdout.splitlines()
        if line.startswith("  ") and not line.startswith("  -")
    }
    orders = int(rows["orders"])
    assert int(rows["completed"]) + int(rows["compensated"]) == orders == 120
    assert int(rows["not finished"]) == 0
    assert int(rows["double charges"]) == 0
    assert int(rows["breaker openings"]) >= 1  # shipping went down
    assert "no double charge" in result.stdout
    counted = _event_counts(result.stdout)
    assert counted, "no telemetry event counted"
    assert set(counted) <= set(rxr.telemetry.KINDS)
    assert all(n > 0 for n in counted.values())
    # every opening is a transition, and the breakers saw calls succeed and fail
    assert counted["breaker.state_changed"] >= int(rows["breaker openings"])
    assert counted["breaker.succeeded"] > 0
    assert counted["breaker.failed"] > 0
    assert counted["retry.scheduled"] > 0
    image = matplotlib.image.imread(tmp_path / "breaker-timeline.png")
    assert image.shape[0] > 200
    assert image.shape[1] > 400


def test_the_demo_is_deterministic_for_a_seed(tmp_path: pathlib.Path) -> None:
    def summary() -> list[str]:
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "orders_demo.py"),
                "--orders",
                "60",
                "--seed",
                "11",
                "--out",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        return [line for line in out.splitlines() if "wall seconds" not in line]

    assert summary() == summary()


def test_retry_demo_runs_in_virtual_time_and_succeeds() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "retry_demo.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert out.count("failed (503)") == 3
    assert "call 4 answered" in out
    assert "of virtual time ran in" in out


def test_makefile_and_ci_use_the_same_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make demo" in readme
    assert "make test" in readme
    assert "make test" in ci.splitlines()[-1]


def _event_counts(stdout: str) -> dict[str, int]:
    """The rows of the demo's table of telemetry events: kind -> count."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "telemetry events" in line)
    counted = {}
    for line in lines[start + 1 :]:
        if not line.startswith("  ") or not line.strip():
            break
        kind, _, count = line.strip().rpartition(" ")
        if kind.strip() in rxr.telemetry.KINDS:
            counted[kind.strip()] = int(count)
    return counted


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "orders_demo", ROOT / "examples" / "orders_demo.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["orders_demo"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_demo_counts_events_from_many_threads_exactly() -> None:
    counts = _demo().EventCounts()
    kinds = ("retry.scheduled", "breaker.refused")
    barrier = threading.Barrier(8)

    def emit(index: int) -> None:
        event = rxr.TelemetryEvent(kinds[index % 2], "demo", 0.0)
        barrier.wait()
        for _ in range(5_000):
            counts(event)

    threads = [threading.Thread(target=emit, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts.snapshot() == {"breaker.refused": 20_000, "retry.scheduled": 20_000}
