"""Testing tools for resilience pipelines: virtual time, faults, strategies, laws.

The harness, fault injection, laws and the testing mode need only the
library; ``strategies`` and ``VirtualTimeMachine`` need Hypothesis (the
``testing`` extra) and ``draw_timeline`` needs matplotlib; they are imported
when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import laws
from ._delays import no_delays, set_no_delays
from ._flaky import FlakyError, FlakySource, flaky
from ._trace import Event, Trace, advance, assert_no_pending, pending_items, run

__all__ = [
    "Event",
    "FlakyError",
    "FlakySource",
    "Trace",
    "VirtualTimeMachine",
    "advance",
    "assert_no_pending",
    "draw_timeline",
    "flaky",
    "laws",
    "no_delays",
    "pending_items",
    "run",
    "set_no_delays",
    "strategies",
]


def __getattr__(name: str) -> Any:
    if name == "strategies":
        return importlib.import_module(f"{__name__}.strategies")
    if name == "draw_timeline":
        return importlib.import_module(f"{__name__}._plot").draw_timeline
    if name == "VirtualTimeMachine":
        return importlib.import_module(f"{__name__}._machine").VirtualTimeMachine
    raise AttributeError(f"module 'rxresilience.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names only (not the helpers this module imports)."""
    return sorted(__all__)
