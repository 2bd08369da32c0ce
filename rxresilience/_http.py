"""HTTP responses as errors: ``Retry-After`` turned into ``retry_after``."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Collection
from typing import TypeVar

from ._clock import seconds_now
from .errors import RetryAfterError

__all__ = ["RetryAfterError", "parse_retry_after", "raise_for_retry_after"]

_R = TypeVar("_R")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
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
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (seconds_now() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def raise_for_retry_after(
    response: _R, *, statuses: Collection[int] = (429, 503)
) -> _R:
    """Return ``response``, or raise ``RetryAfterError`` for a come-back-later status.

    Works with any response that has ``status_code`` (or ``status``) and
    ``headers`` (httpx, requests, aiohttp). Put it in the pipeline before
    ``rxr.retry``: ``from_async(call).pipe(ops.map(rxr.raise_for_retry_after),
    rxr.retry(3))``.

    Args:
        response: the HTTP response.
        statuses: the statuses that mean "come back later".
    """
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(response, "status", None)
    if isinstance(status, int) and status in statuses:
        headers = getattr(response, "headers", {}) or {}
        raise RetryAfterError(
            status, parse_retry_after(headers.get("Retry-After")), response
        )
    return response
