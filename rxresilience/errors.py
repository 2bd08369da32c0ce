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

import builtins

__all__ = ["CircuitOpenError", "ResilienceError", "TimeoutError"]


class ResilienceError(Exception):
    """Base class of every error raised by rxresilience itself."""


class CircuitOpenError(ResilienceError):
    """A circuit breaker refused the call; the protected work never started.

    Raised as ``CircuitOpenError(breaker, state, retry_after)``.

    Attributes:
        breaker: the name of the breaker that refused.
        state: the breaker's state when it refused (a ``CircuitState`` value).
        retry_after: seconds until the breaker lets a trial call through, or
            ``None`` when that is unknown (forced open, or every half-open trial
            permit taken). ``rxr.retry`` waits at least this long before its
            next attempt.
    """

    # The attributes read ``args`` (set by BaseException itself), so refusing a
    # call, a hot path, runs no Python code to build its error.

    @property
    def breaker(self) -> str:
        return str(self.args[0])

    @property
    def state(self) -> str:
        return str(self.args[1])

    @property
    def retry_after(self) -> float | None:
        value: float | None = self.args[2]
        return value

    def __str__(self) -> str:
        wait = (
            "" if self.retry_after is None else f"; retry after {self.retry_after:.3f}s"
        )
        return f"circuit breaker {self.breaker!r} is {self.state}{wait}"


class TimeoutError(ResilienceError, builtins.TimeoutError):
    """A time budget of ``rxr.timeout`` ran out.

    It is also the built-in ``TimeoutError`` (so an ``OSError``): code that
    catches either catches it, and a breaker that records ``OSError`` records
    timeouts too.

    Attributes:
        budget: which budget ran out: ``"first"`` (the first item),
            ``"each"`` (the gap between items) or ``"total"`` (the whole
            subscription).
        seconds: how long that budget was, in seconds (for an absolute
            deadline, from subscription to the deadline).
    """

    def __init__(self, budget: str, seconds: float) -> None:
        super().__init__(f"{budget} timeout of {seconds:g}s elapsed")
        self.budget = budget
        self.seconds = seconds

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.budget, self.seconds))
