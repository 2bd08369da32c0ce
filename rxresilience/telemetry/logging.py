"""Telemetry through the standard ``logging`` module: ``enable(logger=None)``.

Each event becomes one record on ``logger`` (default: the
``"rxresilience.telemetry"`` logger) with the event itself in ``extra``, as
``record.telemetry``, for structured handlers. Levels:

- WARNING: ``breaker.state_changed``, refusals (``breaker.refused``,
  ``rate_limit.refused``, ``bulkhead.rejected``) and ``retry.exhausted``;
- INFO: ``retry.scheduled`` and ``retry.refusal_waited``;
- DEBUG: every other kind.

Records are built only for the levels the logger is enabled for.
"""

from __future__ import annotations

import logging
from typing import Any

from reactivex import abc

from ._event import TelemetryEvent
from ._stream import events

__all__ = ["LEVELS", "enable"]

#: The level of each kind that is not logged at DEBUG.
LEVELS: dict[str, int] = {
    "breaker.state_changed": logging.WARNING,
    "breaker.refused": logging.WARNING,
    "rate_limit.refused": logging.WARNING,
    "bulkhead.rejected": logging.WARNING,
    "retry.exhausted": logging.WARNING,
    "retry.scheduled": logging.INFO,
    "retry.refusal_waited": logging.INFO,
}


_log = logging.getLogger("rxresilience")


def describe(event: TelemetryEvent) -> str:
    """One line: kind, policy, then the facts the event has."""
    parts = [f"{event.kind} {event.policy!r}"]
    if event.attempt is not None:
        parts.append(f"attempt={event.attempt}")
    if event.duration is not None:
        parts.append(f"duration={event.duration:.6g}s")
    parts.extend(f"{key}={value!r}" for key, value in event.attributes.items())
    if event.error is not None:
        parts.append(f"error={type(event.error).__name__}: {_text_of(event.error)}")
    return " ".join(parts)


def _text_of(error: BaseException) -> str:
    """``str(error)``, or a placeholder when the error's own ``__str__`` raises:
    one odd exception must not detach the logging for every later event."""
    try:
        return str(error)
    except Exception:
        return f"<{type(error).__name__}.__str__ raised>"


def enable(logger: logging.Logger | None = None) -> abc.DisposableBase:
    """Log every telemetry event on ``logger``; dispose the result to stop.

    Examples:
        >>> import logging
        >>> from rxresilience.telemetry import logging as telemetry_logging
        >>> subscription = telemetry_logging.enable(logging.getLogger("app"))
        >>> subscription.dispose()

    Args:
        logger: where records go; default ``logging.getLogger(
            "rxresilience.telemetry")``.

    Returns:
        A disposable that detaches the logging.

    Raises:
        TypeError: ``logger`` is not a ``logging.Logger`` (or adapter).
    """
    if logger is None:
        logger = logging.getLogger("rxresilience.telemetry")
    elif not isinstance(logger, logging.Logger | logging.LoggerAdapter):
        raise TypeError(f"logger must be a logging.Logger, got {type(logger).__name__}")
    chosen = logger

    def log(event: TelemetryEvent) -> None:
        level = LEVELS.get(event.kind, logging.DEBUG)
        if not chosen.isEnabledFor(level):
            return
        try:
            _log_on(chosen, level, describe(event), {"telemetry": event})
        except Exception:  # a handler or a formatter of the user's that raises:
            # reported, and this subscriber stays attached for the next event
            _log.exception("logging a telemetry event failed")

    return events().subscribe(log)


def _log_on(
    logger: logging.Logger | logging.LoggerAdapter[Any],
    level: int,
    message: str,
    extra: dict[str, object],
) -> None:
    """Log ``message`` with ``extra`` kept: an adapter's ``process`` (which
    replaces ``extra`` with its own) has its say first, then ours is added."""
    if isinstance(logger, logging.LoggerAdapter):
        message, options = logger.process(message, {})
        merged = {**(options.pop("extra", None) or {}), **extra}
        _log_on(logger.logger, level, message, merged)
        return
    logger.log(level, "%s", message, extra=extra)
