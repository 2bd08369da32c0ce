"""The errors of single operators: timeout, retry's result check, a bounded
buffer, ``to_async``, HTTP responses and the optimistic state."""

from __future__ import annotations

import builtins
from typing import Any

from ._base import ResilienceError


class TimeoutError(ResilienceError, builtins.TimeoutError):
    """A time budget of ``rxr.timeout`` ran out.

    It is also the built-in ``TimeoutError`` (so an ``OSError``): code that
    catches either catches it, and a breaker that records ``OSError`` records
    timeouts too.

    Attributes:
        budget: which budget ran out: ``"first"`` (the first item),
            ``"each"`` (the gap between items) or ``"total"`` (the whole
            subscription) of ``rxr.timeout``, or ``"max_run"`` of
            ``rxr.idempotent`` (the operation outlasted it; its outcome is
            unknown).
        seconds: how long that budget was, in seconds (for an absolute
            deadline, from subscription to the deadline).
    """

    def __init__(self, budget: str, seconds: float) -> None:
        super().__init__(f"{budget} timeout of {seconds:g}s elapsed")
        self.budget = budget
        self.seconds = seconds

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.budget, self.seconds))


class BufferOverflowError(ResilienceError):
    """An operator's bounded buffer (such as ``rxr.pace``'s ``max_buffer``) overflowed.

    Items are never dropped in silence: the subscriber gets this error instead.

    Attributes:
        capacity: the buffer's bound.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(f"more than {capacity} items waiting in the buffer")
        self.capacity = capacity

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.capacity,))


class ResultRejectedError(ResilienceError):
    """``retry_if_result`` flagged a value: the attempt counts as failed.

    Attributes:
        value: the flagged value (an HTTP response, say).
        retry_after: the value's own ``retry_after``, if it has a number there.
    """

    def __init__(self, value: object) -> None:
        super().__init__(f"rejected result: {value!r}"[:200])
        self.value = value
        found = getattr(value, "retry_after", None)
        self.retry_after = (
            found
            if isinstance(found, int | float) and not isinstance(found, bool)
            else None
        )


class RetryAfterError(ResilienceError):
    """A response asked us to come back later (429, 503, ...).

    ``rxr.retry`` waits at least ``retry_after`` seconds before its next
    attempt; a breaker can record it like any error.

    Attributes:
        status: the HTTP status code.
        retry_after: seconds to wait, from the ``Retry-After`` header (None
            without a usable header).
        response: the response itself.
    """

    def __init__(self, status: int, retry_after: float | None, response: Any) -> None:
        try:
            wait = "" if retry_after is None else f", retry after {retry_after:g}s"
        except (OverflowError, TypeError, ValueError):  # 10**400, or not a number
            wait = f", retry after {retry_after!r}s"
        super().__init__(f"HTTP {status}{wait}")
        self.status = status
        self.retry_after = retry_after
        self.response = response


class EmptySequenceError(ResilienceError):
    """``to_async`` awaited an observable that completed without a value."""


class OptimisticStateDisposedError(ResilienceError):
    """An ``OptimisticState`` was disposed: it takes no more updates."""


class OptimisticApplyError(ResilienceError):
    """The server accepted an update whose function then failed on the confirmed value.

    ``OptimisticState`` folds an accepted function update into its confirmed
    value by applying the function to it. When that raises, the update still
    counts as accepted (its result emits ``True``), its layer is dropped and
    the confirmed value is left as it was: it may now differ from the
    server's, so call ``refresh()``. Reported on ``OptimisticState.errors``.

    Attributes:
        cause: the function's error (also ``__cause__``).
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            f"an update the server accepted raised when re-applied to the confirmed "
            f"value ({cause!r}); the client's confirmed value may now differ from "
            "the server's: call refresh()"
        )
        self.cause = cause
        self.__cause__ = cause

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.cause,))
