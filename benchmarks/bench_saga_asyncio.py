"""Sagas under asyncio: throughput, and how long the event loop is stalled.

200 concurrent 3-step sagas of immediate steps, started together under
asyncio through ``rxr.to_async``, while a coroutine ticks every millisecond
and records its longest lateness (the loop's longest stall). Each journal is
measured beside a run without a journal, in the same process, alternating,
and reported as ratios: throughput (sagas per second) against the no-journal
run, and the stall against the no-journal run's.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import reactivex as rx

import rxresilience as rxr

from ._harness import Comparison, print_table

CONCURRENT = 200
STEPS = 3


def _step(n: int) -> rx.Observable[int]:
    return rx.of(n + 1)


def _saga() -> rxr.Saga[int]:
    saga = rxr.Saga[int]("bench")
    for name in ("one", "two", "three")[:STEPS]:
        saga = saga.step(name, execute=_step, compensate=lambda n: rx.empty())
    return saga


@dataclass(frozen=True)
class Round:
    """One round: how long 200 sagas took, and the loop's longest stall."""

    seconds: float
    stall: float


async def _round(saga: rxr.Saga[int], journal: rxr.SagaJournal | None) -> Round:
    ids = itertools.count()
    prefix = os.urandom(6).hex()
    stall = 0.0
    running = True

    async def ticker() -> None:
        nonlocal stall
        loop = asyncio.get_running_loop()
        while running:
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            stall = max(stall, loop.time() - due)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.005)  # the ticker is ticking before the sagas start
    start = time.perf_counter()
    await asyncio.gather(
        *(
            rxr.to_async(
                saga.run(0)
                if journal is None
                else saga.run(0, journal=journal, saga_id=f"{prefix}-{next(ids)}")
            )
            for _ in range(CONCURRENT)
        )
    )
    seconds = time.perf_counter() - start
    running = False
    await tick
    return Round(seconds, stall)


def measure(
    journal: Callable[[], rxr.SagaJournal | None], rounds: int = 41
) -> tuple[list[Round], list[Round]]:
    """Rounds of the journal and, alternating with them, of no journal (the
    collector paused during a round, as the harness does)."""
    saga = _saga()
    ours: list[Round] = []
    bare: list[Round] = []
    for _ in range(3):  # warm up
        asyncio.run(_round(saga, None))
        asyncio.run(_round(saga, journal()))
    gc_was_enabled = gc.isenabled()
    try:
        for _ in range(rounds):
            gc.collect()
            gc.disable()
            bare.append(asyncio.run(_round(saga, None)))
            gc.collect()
            gc.disable()
            ours.append(asyncio.run(_round(saga, journal())))
            gc.enable()
    finally:
        if gc_was_enabled:
            gc.enable()
    return ours, bare


def _paired(
    name: str,
    ours: list[Round],
    bare: list[Round],
    target: float | None,
) -> list[Comparison]:
    """Throughput and stall, each as the median of the rounds' own ratios."""
    per_saga = [o.seconds / b.seconds for o, b in zip(ours, bare, strict=True)]
    allowed = [1.2 * b.stall + 0.010 for b in bare]
    stall = [o.stall / a for o, a in zip(ours, allowed, strict=True)]
    median_ours = statistics.median(o.seconds for o in ours)
    median_bare = statistics.median(b.seconds for b in bare)
    return [
        Comparison(
            f"{CONCURRENT} concurrent {STEPS}-step sagas under asyncio, {name} "
            "journal, time per saga vs no journal (throughput = 1 / ratio)",
            median_ours / CONCURRENT * 1e9,
            median_bare / CONCURRENT * 1e9,
            statistics.median(per_saga),
            target,
            "saga",
        ),
        Comparison(
            f"the same, {name} journal: longest loop stall vs 1.2 x the "
            "no-journal run's + 10 ms",
            statistics.median(o.stall for o in ours) * 1e9,
            statistics.median(allowed) * 1e9,
            statistics.median(stall),
            1.0 if name == "SQLite" else None,
            "stall",
        ),
    ]


def _transactions_per_saga() -> Comparison:
    """SQLite commits per saga in one round, against n + 1."""
    journal = rxr.SQLiteSagaJournal(os.path.join(tempfile.mkdtemp(), "count.db"))
    asyncio.run(_round(_saga(), journal))  # warm up
    before = journal.commits
    asyncio.run(_round(_saga(), journal))
    per_saga = (journal.commits - before) / CONCURRENT
    journal.close()
    return Comparison(
        f"SQLite transactions per {STEPS}-step saga under asyncio (group "
        f"commit) vs n + 1 = {STEPS + 1}",
        per_saga,
        STEPS + 1,
        per_saga / (STEPS + 1),
        1.0,
        "count",
    )


def run() -> list[Comparison]:
    folder = tempfile.mkdtemp()
    sqlite = rxr.SQLiteSagaJournal(os.path.join(folder, "sagas.db"))
    memory = rxr.InMemorySagaJournal()
    rows: list[Comparison] = []
    ours, bare = measure(lambda: memory)
    rows += _paired("in-memory", ours, bare, 1 / 0.85)
    ours, bare = measure(lambda: sqlite)
    rows += _paired("SQLite", ours, bare, 1 / 0.7)
    rows.append(
        Comparison(
            "no-journal run's longest loop stall vs 100 ms",
            statistics.median(b.stall for b in bare) * 1e9,
            0.1 * 1e9,
            statistics.median(b.stall for b in bare) / 0.1,
            1.0,
            "stall",
        )
    )
    rows.append(_transactions_per_saga())
    sqlite.close()
    # The repository's test helper starts and stops a throwaway server.
    from tests._redis_server import RedisServer

    server = RedisServer(Path(tempfile.mkdtemp()) / "redis")
    server.start()
    try:
        redis = rxr.RedisSagaJournal(server.client(), prefix="bench-sagas")
        ours, bare = measure(lambda: redis, rounds=15)
        rows += _paired("Redis", ours, bare, None)
        redis.close()
    finally:
        server.stop()
    return rows


if __name__ == "__main__":
    print_table("saga under asyncio", run())
