"""What one hedged subscription tells telemetry: ``hedge.started``, ``hedge.won``."""

from __future__ import annotations

import logging

from reactivex import abc

from ._clock import clock_of
from .telemetry import _bus

__all__ = ["HedgeReport"]

_log = logging.getLogger("rxresilience")


class HedgeReport:
    """The telemetry of one hedged subscription, made only while someone listens.

    Events are timed on the clock of the scheduler the hedge timer runs on,
    and carry the tracing context captured when the pipeline was subscribed
    (none when the report is made later, on whatever thread then runs: a
    timer thread does not carry the subscriber's context). Each attempt's
    start is kept, by number, for the winner's ``duration``. Nothing here
    raises into the hedge: a failure is logged to ``"rxresilience"``.
    """

    __slots__ = ("_clock", "_context", "_name", "_starts")

    def __init__(
        self, name: str, scheduler: abc.SchedulerBase, *, subscribed: bool
    ) -> None:
        self._name = name
        self._clock = clock_of(scheduler)
        self._context = _bus.trace_context() if subscribed else None
        # Written by the launch loop (one at a time), read by the winner.
        self._starts: dict[int, float] = {}

    @property
    def context(self) -> object:
        """The tracing context captured at subscribe time (None: none)."""
        return self._context

    def first_started(self) -> None:
        """Attempt 1 starts (no event: it is not a hedge)."""
        try:
            self._starts[1] = self._clock()
        except Exception:
            _log.exception("reading a hedge's clock for telemetry failed")

    def started(self, number: int) -> None:
        """Attempt ``number`` (hedge ``number - 1``) starts: ``hedge.started``."""
        try:
            now = self._starts[number] = self._clock()
            _bus.emit(
                "hedge.started", self._name, now, attempt=number, context=self._context
            )
        except Exception:
            _log.exception("reporting a hedge's telemetry event failed")

    def won(self, number: int) -> None:
        """Attempt ``number`` answered first: ``hedge.won``, with its duration."""
        try:
            now = self._clock()
            start = self._starts.get(number)
            _bus.emit(
                "hedge.won",
                self._name,
                now,
                duration=None if start is None else now - start,
                attempt=number,
                context=self._context,
            )
        except Exception:
            _log.exception("reporting a hedge's telemetry event failed")
