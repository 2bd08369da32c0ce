"""One vocabulary: the statuses a journal reports."""

from __future__ import annotations

import reactivex as rx

import rxresilience as rxr


def test_statuses_are_an_enum_equal_to_the_strings_of_0_1() -> None:
    from rxresilience.saga import SagaStatus

    journal = rxr.InMemorySagaJournal()
    rxr.Saga("s").step("a", execute=rx.of).run(1, journal=journal, saga_id="e").run()
    state = journal.state("e")
    assert state is not None
    assert state.status == "completed"
    assert state.status is SagaStatus.COMPLETED
    assert [str(s) for s in SagaStatus] == [
        "running",
        "completed",
        "compensated",
        "failed",
    ]
