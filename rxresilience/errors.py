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
from typing import TYPE_CHECKING, Any

__all__ = [
    "BufferOverflowError",
    "BulkheadFullError",
    "CallRefusedError",
    "CircuitOpenError",
    "EmptySequenceError",
    "IdempotencyClaimLostError",
    "IdempotencyCodecError",
    "IdempotencyError",
    "IdempotencyInProgressError",
    "IdempotencyKeyReuseError",
    "OptimisticApplyError",
    "OptimisticStateDisposedError",
    "RateLimitedError",
    "RecordedError",
    "ResilienceError",
    "ResultRejectedError",
    "RetryAfterError",
    "SagaCancelledError",
    "SagaError",
    "SagaFailed",
    "SagaOwnershipLostError",
    "SagaStepEmptyError",
    "TimeoutError",
]


class ResilienceError(Exception):
    """Base class of every error raised by rxresilience itself."""


class CallRefusedError(ResilienceError):
    """A local policy refused the call before it was made: nothing was called.

    A refusal is not a failure of the protected work, so ``rxr.retry`` does
    not count it as an attempt: it waits ``retry_after`` seconds (its backoff
    does not advance) and tries again, within ``max_refusal_wait`` and
    ``max_elapsed``; with ``retry_after=None`` the retry ends at once.
    :class:`CircuitOpenError` is one; a policy of your own may raise one too.

    Examples:
        >>> error = CallRefusedError("quota of 'search' used up", retry_after=2.5)
        >>> error.retry_after
        2.5

    Attributes:
        retry_after: seconds until a call may be admitted, or ``None`` when
            that is unknown (then waiting would not help).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        _require_wait(retry_after)
        super().__init__(message, retry_after)

    # Subclasses keep ``retry_after`` as the last of ``args``: reading it costs
    # nothing when the error is built, and pickling keeps working.
    @property
    def retry_after(self) -> float | None:
        value: float | None = self.args[-1]
        return value

    @retry_after.setter
    def retry_after(self, value: float | None) -> None:
        _require_wait(value)
        self.args = (*self.args[:-1], value)

    def __str__(self) -> str:
        return f"{self.args[0]}{_wait_text(self.retry_after)}"


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
        wait = _wait_text(self.retry_after)
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
            f"rate limiter {self.limiter!r} has no permit{_wait_text(self.retry_after)}"
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


def _require_wait(value: object) -> None:
    """``retry_after`` is seconds (any real number; ``rxr.retry`` judges it) or None."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise TypeError(
            f"retry_after must be a number of seconds or None, got "
            f"{type(value).__name__}"
        )


def _wait_text(value: object) -> str:
    if value is None:
        return ""
    try:
        return f"; retry after {value:.3f}s"
    except (OverflowError, TypeError, ValueError):  # 10**400, or not a number
        return f"; retry after {value!r}s"


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


class IdempotencyError(ResilienceError):
    """Base class of the errors of ``rxr.idempotent`` and its stores."""


class IdempotencyInProgressError(IdempotencyError):
    """Another execution holds the key (``on_in_progress="error"``).

    Attributes:
        key: the idempotency key.
    """

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} is already in progress")
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key,))


class IdempotencyKeyReuseError(IdempotencyError):
    """The key was used before with a different payload; nothing ran.

    Attributes:
        key: the idempotency key.
    """

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was used with a different payload")
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key,))


class IdempotencyClaimLostError(IdempotencyError):
    """This execution's claim expired and another owner took the key over.

    The execution's outcome was not recorded (the new owner's stands).
    """

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the claim on idempotency key {key!r} expired before the outcome "
            "was recorded; another execution owns the key now"
        )
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key,))


class IdempotencyCodecError(IdempotencyError):
    """A value could not be encoded (or a record decoded) by the store's codec.

    When ``ran`` is true the operation *did* run (its side effect happened)
    but its outcome could not be recorded: a marker was recorded instead, so
    duplicates get this error too, until the ``ttl`` ends, and never run the
    operation again.

    Attributes:
        key: the idempotency key, when known.
        value_type: the qualified name of the type that could not be encoded,
            when known.
        ran: True when the operation ran and only its recording failed.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        value_type: str | None = None,
        ran: bool = False,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.value_type = value_type
        self.ran = ran

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_codec_error, (str(self), self.key, self.value_type, self.ran))


def _rebuild_codec_error(
    message: str, key: str | None, value_type: str | None, ran: bool
) -> IdempotencyCodecError:
    return IdempotencyCodecError(message, key=key, value_type=value_type, ran=ran)


class RecordedError(IdempotencyError):
    """A recorded error, replayed: its type's name and message, never the object.

    Errors are recorded only when ``record_errors`` matches them; a replay
    cannot rebuild the original exception (nothing is unpickled), so it
    delivers this instead.

    Attributes:
        type_name: the qualified name of the original exception's type.
        message: ``str()`` of the original exception.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.type_name, self.message))


class SagaError(ResilienceError):
    """Base class of the errors of sagas."""


class SagaFailed(SagaError):  # noqa: N818 - the name the saga API promises
    """A saga step failed; the succeeded steps were compensated (as far as possible).

    Attributes:
        saga_id: the saga's id.
        step: the name of the step that failed.
        cause: that step's error (also ``__cause__``).
        compensation_errors: ``(step, error)`` for every compensation that
            failed, in the order they ran.
        not_compensated: steps whose compensation never ran (only with
            ``on_compensation_failure="stop"``), in the order they would have.
    """

    def __init__(
        self,
        saga_id: str,
        step: str,
        cause: BaseException,
        compensation_errors: tuple[tuple[str, BaseException], ...] = (),
        not_compensated: tuple[str, ...] = (),
    ) -> None:
        detail = ""
        if compensation_errors:
            failed = ", ".join(name for name, _ in compensation_errors)
            detail += f"; compensations failed: {failed}"
        if not_compensated:
            detail += f"; never compensated: {', '.join(not_compensated)}"
        super().__init__(f"saga {saga_id!r} failed at step {step!r}: {cause!r}{detail}")
        self.saga_id = saga_id
        self.step = step
        self.cause = cause
        self.compensation_errors = compensation_errors
        self.not_compensated = not_compensated
        self.__cause__ = cause


class SagaStepEmptyError(SagaError):
    """A step's observable completed without a value: it produced no context."""

    def __init__(self, step: str) -> None:
        super().__init__(f"saga step {step!r} completed without emitting a context")
        self.step = step


class SagaCancelledError(SagaError):
    """The saga's subscriber disposed while this step ran: the step was cancelled."""

    def __init__(self, step: str) -> None:
        super().__init__(f"saga step {step!r} was cancelled by disposal")
        self.step = step


class SagaOwnershipLostError(SagaError):
    """This run lost its saga: another owner (a recoverer) holds it in the journal.

    The run stopped at once: it started no further step, cancelled the running
    ones and wrote nothing more; the new owner compensates what the journal
    says happened. A run loses its saga only when the journal answers "not
    yours" (a renewal of its lease, or a write); a journal it cannot reach is
    tried again.

    Attributes:
        saga_id: the saga's id.
    """

    def __init__(self, saga_id: str) -> None:
        super().__init__(
            f"saga {saga_id!r} was taken over by another owner; this run stopped"
        )
        self.saga_id = saga_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.saga_id,))


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


class EmptySequenceError(ResilienceError):
    """``to_async`` awaited an observable that completed without a value."""


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
