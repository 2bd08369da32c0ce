"""HTTP responses as errors: ``Retry-After`` turned into ``retry_after``."""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Collection, Mapping
from datetime import UTC
from typing import Any, TypeVar

from reactivex import abc

from ._arguments import require_scheduler
from ._clock import seconds_now
from .errors import RetryAfterError

__all__ = ["RetryAfterError", "parse_retry_after", "raise_for_retry_after"]

_R = TypeVar("_R")


def parse_retry_after(
    value: str | bytes | None, *, now: float | None = None
) -> float | None:
    """Seconds from a ``Retry-After`` header: delta seconds or an HTTP date.

    Examples:
        >>> parse_retry_after("120")
        120.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
        10.0
        >>> parse_retry_after("soon") is None
        True
    """
    if value is None:
        return None
    raw = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = raw.strip()
    if _DELAY_SECONDS.fullmatch(text):
        # RFC 9110's delay-seconds are ASCII digits (a fraction is taken too):
        # "-5" or "1_000" or other scripts' digits are no delay, and no header.
        # Too many digits for a float is "never" (inf), as a long wait is.
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    seconds = when.timestamp() - (seconds_now() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def raise_for_retry_after(
    response: _R,
    *,
    statuses: Collection[int] = (429, 503),
    scheduler: abc.SchedulerBase | None = None,
) -> _R:
    """Return ``response``, or raise ``RetryAfterError`` for a come-back-later status.

    Works with any response that has ``status_code`` (or ``status``) and
    ``headers`` (httpx, requests, aiohttp). Put it in the pipeline before
    ``rxr.retry``: ``from_async(call).pipe(ops.map(rxr.raise_for_retry_after),
    rxr.retry(3))``.

    Args:
        response: the HTTP response.
        statuses: the statuses that mean "come back later".
        scheduler: whose clock an HTTP date in ``Retry-After`` is measured
            against (the retry's, in virtual time); default the real clock.
    """
    require_scheduler("scheduler", scheduler)
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(response, "status", None)
    if isinstance(status, int) and status in statuses:
        headers = getattr(response, "headers", {}) or {}
        raise RetryAfterError(
            status,
            parse_retry_after(_header(headers), now=seconds_now(scheduler)),
            response,
        )
    return response


def _header(headers: Any) -> str | None:
    """``Retry-After`` from a response's headers, in any case: the clients'
    header maps ignore case, a plain dict does not."""
    value = headers.get("Retry-After")
    if value is None and isinstance(headers, Mapping):
        for name, found in headers.items():
            if isinstance(name, str) and name.lower() == "retry-after":
                return str(found)
    return None if value is None else str(value)
