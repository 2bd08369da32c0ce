"""The refusals of the call-gating policies: breaker, rate limiter, bulkhead."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import CallRefusedError, ResilienceError, wait_text


class CircuitOpenError(CallRefusedError):
    """A circuit breaker refused the call; the protected work never started.

    Raised as ``CircuitOpenError(breaker, state, retry_after)``; a
    :class:`CallRefusedError`, so ``rxr.retry`` waits for the breaker instead
    of spending attempts on its refusals.

    Attributes:
        breaker: the name of the breaker that refused.
        state: the breaker's state when it refused (a ``CircuitState`` value).
        retry_after: seconds until the breaker lets a trial call through, or
            ``None`` when that is unknown (forced open, or every half-open trial
            permit taken). ``rxr.retry`` waits at least this long before its
            next attempt.
    """

    # The attributes read ``args`` (set by BaseException's own ``__init__``), so
    # refusing a call, a hot path, runs no Python code to build its error.
    if TYPE_CHECKING:

        def __init__(
            self, breaker: str, state: str, retry_after: float | None
        ) -> None: ...

    else:
        __init__ = ResilienceError.__init__

    @property
    def breaker(self) -> str:
        return str(self.args[0])

    @property
    def state(self) -> str:
        return str(self.args[1])

    def __str__(self) -> str:
        wait = wait_text(self.retry_after)
        return f"circuit breaker {self.breaker!r} is {self.state}{wait}"


class RateLimitedError(CallRefusedError):
    """A rate limiter had no permit within the wait allowed; nothing was called.

    Raised as ``RateLimitedError(limiter, retry_after)``; a
    :class:`CallRefusedError`, so ``rxr.retry`` waits ``retry_after`` seconds
    (no attempt spent) and tries again.

    Attributes:
        limiter: the name of the limiter that refused.
        retry_after: seconds until a permit would be free.
    """

    if TYPE_CHECKING:

        def __init__(self, limiter: str, retry_after: float | None) -> None: ...

    else:
        __init__ = ResilienceError.__init__

    @property
    def limiter(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        return (
            f"rate limiter {self.limiter!r} has no permit{wait_text(self.retry_after)}"
        )


class BulkheadFullError(CallRefusedError):
    """A bulkhead shed the call: its slots and its queue were full, or the wait ran out.

    Raised as ``BulkheadFullError(bulkhead, reason)``; its ``retry_after`` is
    always ``None``, so ``rxr.retry`` outside gives up at once: load is shed,
    not deferred.

    Attributes:
        bulkhead: the name of the bulkhead that refused.
        reason: why (``"queue full"`` or ``"wait exceeded"``).
    """

    def __init__(self, bulkhead: str, reason: str) -> None:
        ResilienceError.__init__(self, bulkhead, reason, None)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.bulkhead, self.reason))

    @property
    def bulkhead(self) -> str:
        return str(self.args[0])

    @property
    def reason(self) -> str:
        return str(self.args[1])

    def __str__(self) -> str:
        return f"bulkhead {self.bulkhead!r} refused the call: {self.reason}"
