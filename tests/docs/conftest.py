"""The documentation site, built once per test session with ``--strict``.

The build executes every notebook (mkdocs-jupyter, ``allow_errors: false``),
so this is where the notebooks run in the test suite: once.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Build:
    """What ``mkdocs build --strict`` said, and where the site is."""

    returncode: int
    output: str
    site: pathlib.Path


@pytest.fixture(scope="session")
def site_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    site = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "DOCS_EXECUTE": "true"},
        check=False,
    )
    return Build(result.returncode, result.stdout + result.stderr, site)


@pytest.fixture(scope="session")
def site(site_build: Build) -> pathlib.Path:
    """The built site; fails (does not skip) every test using it if the build did."""
    assert site_build.returncode == 0, site_build.output[-8000:]
    return site_build.site
