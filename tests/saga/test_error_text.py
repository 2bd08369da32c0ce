"""An error's text reaches every journal, whatever characters it holds."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr
from rxresilience.saga._history import describe

from .. import _saga_worker as worker


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    yield from worker.journal_of(request, tmp_path)


def test_describe_escapes_what_no_store_can_write() -> None:
    # PostgreSQL text holds no NUL; no UTF-8 store holds a lone surrogate.
    assert describe(ValueError("a\x00b\udcff")) == "ValueError: a\\x00b\\udcff"
    assert describe(ValueError("plain é")) == "ValueError: plain é"


@pytest.mark.parametrize("text", ["reply: \x00\x01", "bytes: \udcff", "fine"])
def test_a_step_failing_with_any_text_is_compensated_and_journaled(
    journal: rxr.SagaJournal, text: str
) -> None:
    undone: list[int] = []
    saga = (
        rxr.Saga[int]("order")
        .step("reserve", lambda n: rx.of(n + 1), compensate=undone.append)
        .step("charge", lambda n: rx.throw(ValueError(text)))
    )
    with pytest.raises(rxr.SagaFailed):
        saga.run(0, journal=journal, saga_id="s-1").run()
    assert undone == [1]
    state = journal.state("s-1")
    assert state is not None
    assert state.status == "compensated"
    record = journal.load("s-1")
    assert record is not None
    failed = [e for e in record.entries if e.kind == "step_failed"]
    assert len(failed) == 1
    assert failed[0].error is not None
    assert "\x00" not in failed[0].error
    assert failed[0].error.startswith("ValueError: ")
