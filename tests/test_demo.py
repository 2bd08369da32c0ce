"""The README's demo command runs and tells its story."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import matplotlib.image

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
