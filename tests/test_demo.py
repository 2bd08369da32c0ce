"""The README's demo command runs and tells its story."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


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
    assert "retrying in" in out
    assert "call 4 answered" in out
    assert "completed" in out
    assert "of virtual time ran in" in out


def test_makefile_and_ci_use_the_same_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make demo" in readme
    assert "make test" in readme
    assert "make test" in ci.splitlines()[-1]
