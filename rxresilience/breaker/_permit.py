"""``Permit``: one admitted call through a circuit breaker, settled once."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Permit"]

_NOT_ADMITTED = "this permit was not handed out by a circuit breaker"


class _Settles(Protocol):
    """What a permit reports to (the breaker's gate), named here so that the
    permit needs no import of the gate (which imports it)."""

    def succeed(self, permit: Permit) -> None: ...

    def fail(self, permit: Permit, error: BaseException) -> None: ...

    def release(self, permit: Permit) -> None: ...

    def check(self, permit: Permit, value: Any) -> bool: ...


class Permit:
    """Permission for one call through a circuit breaker; settle it once.

    :meth:`CircuitBreaker.admit` hands one out, and whoever runs the call
    reports how it ended, once: :meth:`success`, :meth:`failure` or
    :meth:`release` (and, with ``failure_if``, :meth:`check` on each value).
    Later reports of the same permit are ignored; an unsettled half-open
    permit stays taken until ``max_half_open_wait`` (if set) ends it. How long
    the call took is measured on the breaker's clock, from admission to the
    report, for the slow-call rule.

    ``rxr.circuit_breaker``, :meth:`CircuitBreaker.call` and
    :meth:`CircuitBreaker.call_async` all settle their calls through a permit.

    Examples:
        >>> breaker = CircuitBreaker(failure_threshold=1)
        >>> permit = breaker.admit()
        >>> permit.failure(RuntimeError("down"))
        >>> breaker.state
        <CircuitState.OPEN: 'open'>

    A :class:`BreakerStorage` makes the permits it admits,
    ``Permit(generation, trial, started_at)`` (a subclass may carry more,
    such as the id of a half-open permit held in a shared store), and sets
    ``settled`` when it records the outcome.

    Attributes:
        generation: the breaker's generation at admission; an outcome changes
            the state only if no transition happened since.
        trial: True for a half-open trial call.
        started_at: the admission time on the breaker's clock.
        settled: True once the outcome is recorded.
    """

    __slots__ = ("_gate", "generation", "settled", "started_at", "timer", "trial")

    def __init__(self, generation: int, trial: bool, started_at: float) -> None:
        self.generation = generation
        self.trial = trial
        self.started_at = started_at
        self.settled = False
        self.timer: Any = None  # the max_half_open_wait timer of a trial, if any
        self._gate: _Settles | None = None  # the breaker's, once it admits the call

    def success(self) -> None:
        """The call succeeded: it completed or returned."""
        self._owner().succeed(self)

    def failure(self, error: BaseException) -> None:
        """The call ended with ``error``; the breaker's ``record`` and ``ignore``
        decide whether it counts as a failure or as neither (an error that is
        not an ``Exception``, such as a cancellation, counts as neither).

        Raises:
            Exception: what ``record`` or ``ignore`` raised; the call is then
                released.
        """
        self._owner().fail(self, error)

    def release(self) -> None:
        """The call ended with no verdict (disposed, cancelled): it counts as
        neither, and a half-open permit is given back."""
        self._owner().release(self)

    def check(self, value: Any) -> bool:
        """Whether ``failure_if`` marks ``value`` (an emitted value or a returned
        result) as a failure; if it does, the call is settled as failed.

        Raises:
            Exception: what ``failure_if`` raised; the call is then released.
        """
        return self._owner().check(self, value)

    def _owner(self) -> _Settles:
        gate = self._gate
        if gate is None:  # a new error each time: a shared one keeps every traceback
            raise RuntimeError(_NOT_ADMITTED)
        return gate

    def __repr__(self) -> str:
        kind = "trial" if self.trial else "call"
        status = "settled" if self.settled else "open"
        return f"<Permit {kind} of generation {self.generation}, {status}>"
