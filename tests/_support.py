"""The project's own test helpers: thin adapters over ``rxresilience.testing``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import reactivex as rx
from reactivex.testing import TestScheduler

from rxresilience.testing import advance, pending_items, run

Event = tuple[float, str, Any]

pending = pending_items
run_due = advance


def record(
    scheduler: TestScheduler,
    factory: Callable[[], rx.Observable[Any]],
    *,
    subscribe_at: float = 200.0,
    dispose_at: float | None = None,
    until: float | None = None,
) -> list[Any]:
    """Subscribe at ``subscribe_at``; return the live list of (time, kind, payload).

    Errors stay exception objects, so tests compare them by identity or type,
    never by their text as RxPY's ``Recorded`` equality does.
    """
    trace = run(
        factory,
        subscribe_at=subscribe_at,
        dispose_at=dispose_at,
        until=until,
        scheduler=scheduler,
    )
    return trace.events  # type: ignore[return-value]


#: Durations every duration argument refuses (with the error expected):
#: beyond what a timer can wait, not finite, negative, or not a number.
DURATIONS_OUT_OF_RANGE: list[Any] = [
    pytest.param(1e10, ValueError, id="1e10"),
    pytest.param(10**10, ValueError, id="int-10**10"),
    pytest.param(10**400, ValueError, id="int-10**400"),
    pytest.param(math.inf, ValueError, id="inf"),
    pytest.param(math.nan, ValueError, id="nan"),
    pytest.param(-1, ValueError, id="-1"),
    pytest.param(True, TypeError, id="True"),
    pytest.param("5", TypeError, id="str"),
]
#: ... and those refused where a duration must be above zero.
POSITIVE_DURATIONS_OUT_OF_RANGE: list[Any] = [
    *DURATIONS_OUT_OF_RANGE,
    pytest.param(0, ValueError, id="0"),
    pytest.param(0.0, ValueError, id="0.0"),
]
