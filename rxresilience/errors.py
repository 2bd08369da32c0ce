"""The exception hierarchy of rxresilience.

Every error the library raises on its own account derives from
:class:`ResilienceError`, so ``except rxr.ResilienceError`` catches exactly
what the library adds on top of the errors of the work it protects. Errors of
the protected work itself are never wrapped: ``rxr.retry`` delivers the last
attempt's own exception object, unchanged.

Bad configuration is not a ``ResilienceError``: it raises the built-in
``ValueError`` or ``TypeError`` at construction time, naming the argument.
"""

from __future__ import annotations

__all__ = ["CircuitOpenError", "ResilienceError"]


class ResilienceError(Exception):
    """Base class of every error raised by rxresilience itself."""


class CircuitOpenError(ResilienceError):
    """A circuit breaker refused the call; the protected work never started.

    Attributes:
        breaker: the name of the breaker that refused.
        state: the breaker's state when it refused (a ``CircuitState`` value).
        retry_after: seconds until the breaker lets a trial call through, or
            ``None`` when that is unknown (forced open, or every half-open trial
            permit taken). ``rxr.retry`` waits at least this long before its
            next attempt.
    """

    def __init__(self, breaker: str, state: str, retry_after: float | None) -> None:
        wait = "" if retry_after is None else f"; retry after {retry_after:.3f}s"
        super().__init__(f"circuit breaker {breaker!r} is {state}{wait}")
        self.breaker = breaker
        self.state = state
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.breaker, self.state, self.retry_after))
