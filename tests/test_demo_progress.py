"""The demo's progress display: a rich bar on a terminal, plain lines in a log."""

from __future__ import annotations

import importlib.util
import io
import pathlib
import subprocess
import sys
from types import ModuleType

ROOT = pathlib.Path(__file__).resolve().parent.parent


def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "orders_demo", ROOT / "examples" / "orders_demo.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["orders_demo"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_log_gets_one_line_per_tenth_and_no_carriage_return() -> None:
    stream = io.StringIO()
    shown = demo().ProgressDisplay(1000, stream, terminal=False)
    for done in range(1, 1001):
        shown.update(done)
    shown.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split()[0] for line in lines] == [
        f"{n}/1000" for n in range(100, 1001, 100)
    ]


def test_a_log_gets_a_line_every_five_seconds_when_progress_is_slow() -> None:
    stream = io.StringIO()
    shown = demo().ProgressDisplay(1000, stream, terminal=False)
    shown.update(1)
    assert stream.getvalue() == ""
    shown._next_time = shown.started  # five seconds went by
    shown.update(2)
    assert stream.getvalue().split()[0] == "2/1000"


def test_a_terminal_gets_a_rich_bar() -> None:
    stream = io.StringIO()
    shown = demo().ProgressDisplay(50, stream, terminal=True)
    for done in range(1, 51):
        shown.update(done)
    shown.close()
    assert "50/50" in stream.getvalue()
    assert "━" in stream.getvalue()  # rich's bar


def test_the_demo_run_through_a_pipe_logs_lines(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "orders_demo.py"),
            "--orders",
            "40",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "\r" not in result.stderr
    assert "40/40 orders (100 %)" in result.stderr
    assert "Warning" not in result.stderr
