"""The claim owner's run of the source: renewed, bounded, settled with its outcome.

Once an execution has won its key's claim, the source runs once. While it
runs, the claim's lease is renewed and ``max_run`` bounds it. Each value is
tried against the codec as it passes: one the codec cannot encode means the
effect happened but cannot be replayed, so the subscribers learn it at once,
the source runs on to its own end, and a marker is recorded. At the end the
claim is settled: completed with the outcome (the values and the completion,
or an error ``record_errors`` matches), or released for an error not to be
recorded.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable

from ..errors import CallRefusedError, IdempotencyClaimLostError
from ..errors import TimeoutError as ResilienceTimeoutError
from ._claim import ABANDONED, KeyClaim, Terminal, Unrecordable
from ._policy import IdempotencyPolicy
from ._record import qualified_name, unrecordable

__all__ = ["Execution", "SourceRun"]

_T = TypeVar("_T")


class Execution(Protocol[_T]):
    """What a run of the source needs of the execution it runs for."""

    @property
    def ended(self) -> bool:
        """The execution is over: its subscribers were told how it ended."""
        ...

    @property
    def cancelled(self) -> bool:
        """Every subscriber left before it ended."""
        ...

    @property
    def values(self) -> list[_T]:
        """The values the source gave so far."""
        ...

    def emit(self, value: _T) -> None:
        """Give a value to the subscribers."""

    def fail_early(self, error: Exception, cause: Exception) -> None:
        """Tell the subscribers ``error`` now, while the source runs on."""

    def end(self, kind: str, error: Exception | None) -> None:
        """The execution is over: tell the subscribers how it ended."""


class SourceRun(Generic[_T]):
    """The one run of the source, by the owner of the key's claim."""

    def __init__(
        self,
        execution: Execution[_T],
        claim: KeyClaim,
        policy: IdempotencyPolicy,
        scheduler: abc.SchedulerBase,
        subscribe_scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._execution = execution
        self._claim = claim
        self._policy = policy
        self._scheduler = scheduler
        self._subscribe_scheduler = subscribe_scheduler
        # Set when the outcome cannot be recorded: what could not, and why.
        self._unrecordable: Unrecordable | None = None
        self._upstream = SerialDisposable()
        self._max_run = SerialDisposable()

    def start(self, source: Observable[_T], now: float) -> None:
        """Renew the claim taken at ``now``, arm ``max_run``, subscribe the source."""
        self._claim.renew_while_running(now, self._claim_lost)
        max_run = self._policy.max_run
        if max_run is not None:
            self._max_run.disposable = self._scheduler.schedule_relative(
                max_run, self._ran_too_long
            )
        self._upstream.disposable = source.subscribe(
            self._on_next,
            self._on_error,
            self._on_completed,
            scheduler=self._subscribe_scheduler,
        )

    def stop_timers(self) -> None:
        """Stop renewing the claim and drop the ``max_run`` timer."""
        self._claim.stop_renewing()
        self._max_run.dispose()

    def unsubscribe(self) -> None:
        self._upstream.dispose()

    # -- what the source says --------------------------------------------------------

    def _on_next(self, value: _T) -> None:
        execution = self._execution
        if execution.ended or execution.cancelled or self._unrecordable is not None:
            return
        try:
            self._policy.outcome_codec.encode(value)
        except Exception as failure:
            # The effect happened: never run again. Run on to the source's end,
            # then record a marker; subscribers learn it now.
            self._unrecordable = (qualified_name(value), str(failure))
            problem = unrecordable(self._claim.key, *self._unrecordable)
            execution.fail_early(problem, failure)
            return
        execution.emit(value)

    def _on_error(self, error: Exception) -> None:
        execution = self._execution
        if execution.ended or execution.cancelled:
            return
        predicate = self._policy.error_filter
        if self._unrecordable is None:
            try:
                # A refusal (an open breaker inside) means nothing ran: never
                # record it, or every duplicate would be refused for the ttl.
                record = (
                    predicate is not None
                    and not isinstance(error, CallRefusedError)
                    and predicate(error)
                )
            except Exception as failure:
                self._release_then_end(failure)
                return
            if not record:
                self._release_then_end(error)
                return
        # After an unencodable value even an error not to record is recorded
        # (as the marker): the effect happened, it must never run again.
        self._settle(("error", error))

    def _release_then_end(self, error: Exception) -> None:
        """Nothing to record: the key is released, then the error told (so a
        ``retry`` outside finds the key free)."""
        self.stop_timers()  # no renewal may hear of our own release
        execution = self._execution
        self._claim.release(lambda: _end_once(execution, "error", error))

    def _on_completed(self) -> None:
        execution = self._execution
        if execution.ended or execution.cancelled:
            return
        self._settle(("completed", None))

    def _settle(self, ended: Terminal) -> None:
        """Settle the claim with the outcome, then tell the subscribers."""
        self.stop_timers()  # the source has ended: no renewal, no max_run
        execution = self._execution
        self._claim.record(
            execution.values,
            ended,
            self._unrecordable,
            lambda told: _end_once(execution, *told),
        )

    # -- what the timers say ---------------------------------------------------------

    def _claim_lost(self, why: str) -> None:
        """The lease was taken over, or lapsed unrenewed: stop, record nothing.
        Abandoned (the event loop closed while the source ran: nothing can
        finish it now): stop, and keep the claim until its lease lapses."""
        execution = self._execution
        if execution.ended:
            return
        if why == ABANDONED:
            self._give_up(IdempotencyClaimLostError(self._claim.key))
            return
        self._upstream.dispose()
        lost = IdempotencyClaimLostError(self._claim.key)
        # checked against our owner token: harmless if taken
        self._claim.release(lambda: _end_once(execution, "error", lost))

    def _ran_too_long(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        """``max_run`` passed: stop, and keep the claim until its lease lapses."""
        if self._execution.ended:
            return
        max_run = self._policy.max_run
        assert max_run is not None
        self._give_up(ResilienceTimeoutError("max_run", max_run))

    def _give_up(self, error: Exception) -> None:
        """The outcome is unknown: stop the source, keep the claim (nobody may
        run it again before its lease lapses), end with ``error``."""
        self._claim.forget()
        self._upstream.dispose()
        self._execution.end("error", error)


def _end_once(execution: Execution[Any], kind: str, error: Exception | None) -> None:
    """End the execution unless something ended it while a store call was in
    flight (under asyncio, a call on another thread takes a while)."""
    if not execution.ended:
        execution.end(kind, error)
