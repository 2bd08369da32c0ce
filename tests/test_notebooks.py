"""The notebooks: the reviewed ``.py`` sources and the ``.ipynb`` files stay in sync.

The notebooks themselves run once per session, inside the strict build of
the documentation site (tests/docs), so a failing cell fails the suite.
"""

from __future__ import annotations

import pathlib

import jupytext
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
EXPECTED = [
    "01_retry_backoff",
    "02_circuit_breaker",
    "03_timeouts_and_resilient",
    "04_idempotency",
    "05_sagas",
    "06_optimistic_updates",
    "07_property_testing",
    "08_rate_limits_bulkheads_hedging",
]


def test_every_pattern_has_its_notebook() -> None:
    assert [p.stem for p in SOURCES] == EXPECTED


def _cells(notebook: object) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_ipynb_matches_its_py_source(source: pathlib.Path) -> None:
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"run `make notebooks` to create {paired.name}"
    assert _cells(jupytext.read(source)) == _cells(jupytext.read(paired)), (
        f"{paired.name} is out of date: run `make notebooks`"
    )
