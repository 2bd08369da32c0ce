"""The SQLite journal's batches against the in-memory journal's, with and
without the SQLite features the fast paths use (JSON, ``UPDATE ... FROM``),
in statements as long as the build allows or of a few rows each."""

from __future__ import annotations

import itertools
import pathlib
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience.saga import _sqlite_batch

SAGAS = ("s-1", "s-2", "s-'3", "s-%_*")
OWNERS = ("o-1", "o-2")
KINDS = ("step_started", "step_succeeded", "step_failed")


@pytest.fixture(
    params=list(itertools.product([True, False], [True, False], [None, 7])),
    ids=lambda p: f"json={p[0]},update_from={p[1]},parameters={p[2] or 'all'}",
)
def features(request: pytest.FixtureRequest) -> Iterator[None]:
    json_, update_from, parameters = request.param
    real = _sqlite_batch._features()
    if (json_ and not real.json) or (update_from and not real.update_from):
        pytest.fail("this SQLite lacks a feature the fast path needs")
    # 7 parameters: one entry row, two saga updates, seven ids per statement.
    chosen = _sqlite_batch._Features(json_, update_from, parameters or real.parameters)
    original = _sqlite_batch._features
    _sqlite_batch._features = lambda: chosen  # type: ignore[assignment]
    try:
        yield
    finally:
        _sqlite_batch._features = original  # type: ignore[assignment]


def writes() -> st.SearchStrategy[rxr.JournalWrite]:
    entry = st.builds(
        rxr.JournalEntry,
        st.sampled_from(KINDS),
        st.sampled_from(("a", "b")),
        st.none() | st.binary(max_size=8),
        st.none() | st.text(max_size=8),
    )
    return st.builds(
        rxr.JournalWrite,
        st.sampled_from(SAGAS),
        st.sampled_from(OWNERS),
        st.sampled_from((1.0, 2.0, 3.0)),  # in no order: a saga keeps the last
        st.lists(entry, max_size=3).map(tuple),
        begin=st.none() | st.just("saga"),
        lease_until=st.just(30.0),
        status=st.none() | st.sampled_from(("completed", "compensated")),
    )


def leased(batches: list[list[rxr.JournalWrite]]) -> list[list[rxr.JournalWrite]]:
    """The same batches, a lease only where a saga begins."""
    return [
        [
            rxr.JournalWrite(
                w.saga_id,
                w.owner,
                w.now,
                w.entries,
                begin=w.begin,
                lease_until=w.lease_until if w.begin else None,
                status=w.status,
            )
            for w in batch
        ]
        for batch in batches
    ]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # it only patches
)
@given(batches=st.lists(st.lists(writes(), min_size=1, max_size=8), max_size=5))
def test_a_batch_does_what_the_in_memory_journal_does(
    features: None, batches: list[list[rxr.JournalWrite]]
) -> None:
    memory = rxr.InMemorySagaJournal()
    with tempfile.TemporaryDirectory() as folder:
        sqlite = rxr.SQLiteSagaJournal(pathlib.Path(folder) / "sagas.db")
        try:
            for batch in leased(batches):
                assert sqlite.write_owned(batch) == memory.write_owned(batch)
            for saga_id in SAGAS:
                assert sqlite.load(saga_id) == memory.load(saga_id)
            assert sorted(sqlite.unfinished()) == sorted(memory.unfinished())
        finally:
            sqlite.close()


def test_the_owners_of_a_batch_are_read_in_queries_of_bounded_length(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    # Each query's JSON row holds its ids (escaped, up to six times as long):
    # long ids are read a few per query, never in one string SQLite refuses.
    monkeypatch.setattr(_sqlite_batch, "_MOST_ID_CHARACTERS", 10)
    ids = [f"s-{i}-\x01" * (1 + i % 3) for i in range(40)]
    chunks = _sqlite_batch._chunks(ids, 999)
    assert [i for chunk in chunks for i in chunk] == ids  # all, in order
    assert all(len(c) == 1 or sum(map(len, c)) <= 10 for c in chunks)
    assert [len(c) for c in _sqlite_batch._chunks(["x" * 25, "y", "z"], 999)] == [1, 2]
    assert [len(c) for c in _sqlite_batch._chunks(["a"] * 5, 2)] == [2, 2, 1]
    memory = rxr.InMemorySagaJournal()
    sqlite = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    try:
        begin = [
            rxr.JournalWrite(i, "o", 1.0, begin="saga", lease_until=30.0) for i in ids
        ]
        entry = rxr.JournalEntry("step_started", "a", b"1")
        write = [
            rxr.JournalWrite(i, "o", 2.0, (entry,), status="completed") for i in ids
        ]
        for batch in (begin, write):
            assert sqlite.write_owned(batch) == memory.write_owned(batch) == [True] * 40
        for saga_id in ids:
            assert sqlite.load(saga_id) == memory.load(saga_id)
    finally:
        sqlite.close()
