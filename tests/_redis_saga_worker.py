"""Saga runs and recoveries in child processes, with the journal in Redis.

The Redis twins of ``run_slow_saga`` in :mod:`tests._saga_worker`: the test
process and its children share one real redis-server, and count their
effects in a SQLite file (:func:`tests._saga_worker.count`).
"""

from __future__ import annotations

import threading
from typing import Any

import reactivex as rx
from reactivex import operators as ops

import rxresilience as rxr

from ._saga_worker import count, slow_saga

#: The id of the saga each worker runs or recovers.
SAGA_ID = "slow-1"


def journal(url: str, prefix: str) -> rxr.RedisSagaJournal:
    import redis

    return rxr.RedisSagaJournal(
        redis.Redis.from_url(url, socket_timeout=5), prefix=prefix
    )


def run_slow_saga(
    url: str,
    prefix: str,
    effects_path: str,
    lease: float,
    step_seconds: float,
    elsewhere: bool = False,
) -> None:
    """Run ``slow_saga`` as ``slow-1``; write how it ended among the effects.
    ``elsewhere``: as if on another machine, so that a recoverer here cannot
    tell that this process is gone and must wait for its lease."""
    if elsewhere:
        from ._saga_worker import as_another_machine

        as_another_machine()
    ended = threading.Event()

    def on_error(error: Exception) -> None:
        count(effects_path, f"error {type(error).__name__}")
        ended.set()

    def on_completed() -> None:
        count(effects_path, "completed")
        ended.set()

    saga = slow_saga(effects_path, lease, step_seconds)
    saga.execute("x", journal=journal(url, prefix), saga_id=SAGA_ID).subscribe(
        on_error=on_error, on_completed=on_completed
    )
    ended.wait(60)


def slow_undo_saga(
    effects_path: str, lease: float, undo_seconds: float
) -> rxr.Saga[str]:
    """Step ``a`` is undone in ``undo_seconds`` (real time); step ``b`` never ends."""

    def undo_a(ctx: str) -> rx.Observable[Any]:
        count(effects_path, "undo a")
        return rx.timer(undo_seconds)

    return (
        rxr.Saga[str]("slow-undo", lease=lease)
        .step("a", execute=rx.of, compensate=undo_a)
        .step("b", execute=lambda ctx: rx.never())
    )


def recover_slowly(
    url: str, prefix: str, effects_path: str, lease: float, undo_seconds: float
) -> None:
    """Recover with ``slow_undo_saga``; write how many steps it compensated."""
    saga = slow_undo_saga(effects_path, lease, undo_seconds)
    events = rxr.recover(journal(url, prefix), {"slow-undo": saga})
    done = events.pipe(ops.to_list()).run()
    compensated = sum(1 for e in done if isinstance(e, rxr.StepCompensated))
    count(effects_path, f"recovered {compensated}")
