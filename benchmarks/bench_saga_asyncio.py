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
from typing import Any

import reactivex as rx

import rxresilience as rxr

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
) -> tuple[Round, Round]:
    """Median rounds of the journal and, alternating with it, of no journal."""
    saga = _saga()
    ours: list[Round] = []
    bare: list[Round] = []
    for _ in range(rounds):
        gc.collect()
        bare.append(asyncio.run(_round(saga, None)))
        gc.collect()
        ours.append(asyncio.run(_round(saga, journal())))
    return _median(ours), _median(bare)


def _median(rounds: list[Round]) -> Round:
    return Round(
        statistics.median(r.seconds for r in rounds),
        statistics.median(r.stall for r in rounds),
    )


def journals() -> dict[str, Callable[[], Any]]:
    folder = tempfile.mkdtemp()
    sqlite = rxr.SQLiteSagaJournal(os.path.join(folder, "sagas.db"))
    memory = rxr.InMemorySagaJournal()
    return {
        "none": lambda: None,
        "in-memory": lambda: memory,
        "SQLite": lambda: sqlite,
    }


def main() -> None:
    for name, journal in journals().items():
        if name == "none":
            continue
        ours, bare = measure(journal)
        print(
            f"{name:<10} {CONCURRENT / ours.seconds:8.0f} sagas/s "
            f"vs {CONCURRENT / bare.seconds:8.0f} without a journal "
            f"({bare.seconds / ours.seconds:.2f}x); "
            f"stall {ours.stall * 1000:.0f} ms vs {bare.stall * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
