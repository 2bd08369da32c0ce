"""A key another owner holds or recorded, as an execution that asked for it sees it.

An execution that did not win its key's claim replays the outcome another
owner recorded, refuses a payload the key was used with before, or waits for
the owner in flight: it looks again every ``poll_interval``, for at most
``max_run`` in all, unless ``on_in_progress`` says to fail at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from reactivex import abc
from reactivex.disposable import SerialDisposable

from .._clock import RESOLUTION
from ..errors import IdempotencyInProgressError, IdempotencyKeyReuseError
from ..stores._base import Claim, ClaimStatus
from ..telemetry import _bus
from ._policy import IdempotencyPolicy
from ._record import decode_record

__all__ = ["Joiner", "OtherOwner"]

_T = TypeVar("_T")
_T_contra = TypeVar("_T_contra", contravariant=True)


class Joiner(Protocol[_T_contra]):
    """What the key's other owner's outcome is given to."""

    def emit_all(self, values: Iterable[_T_contra]) -> None:
        """Give the values to the subscribers, in one go."""

    def end(self, kind: str, error: Exception | None) -> None:
        """The execution is over: tell the subscribers how it ended."""

    def report(self, kind: str, error: Exception | None = None) -> None:
        """Emit one telemetry event of the execution."""


class OtherOwner(Generic[_T]):
    """Another owner's claim on the key: its outcome replayed, or waited for."""

    def __init__(
        self,
        joiner: Joiner[_T],
        policy: IdempotencyPolicy,
        key: str,
        scheduler: abc.SchedulerBase,
        look_again: Callable[[abc.SchedulerBase, Any], None],
    ) -> None:
        self._joiner = joiner
        self._policy = policy
        self._key = key
        self._scheduler = scheduler
        self._look_again = look_again
        self._waiting_since: float | None = None
        self._poll = SerialDisposable()

    def answered(self, now: float, answer: Claim) -> None:
        """The store's answer at ``now`` was not ours: the key is someone else's."""
        status = answer.status
        if status is ClaimStatus.COMPLETED:
            assert isinstance(answer.record, bytes)
            self._replay(answer.record)
        elif status is ClaimStatus.KEY_REUSED:
            self._joiner.end("error", IdempotencyKeyReuseError(self._key))
        elif self._policy.on_in_progress == "error":
            self._joiner.end("error", IdempotencyInProgressError(self._key))
        else:
            self._wait(now)

    def stop(self) -> None:
        """Drop the pending look at the store, if any."""
        self._poll.dispose()

    def _wait(self, now: float) -> None:
        """Look again in ``poll_interval``, for at most ``max_run`` in all."""
        delay = self._policy.poll_interval
        max_run = self._policy.max_run
        if max_run is not None:
            if self._waiting_since is None:
                self._waiting_since = now
            left = self._waiting_since + max_run - now
            if left <= RESOLUTION:
                self._joiner.end("error", IdempotencyInProgressError(self._key))
                return
            delay = min(delay, left)
        self._poll.disposable = self._scheduler.schedule_relative(
            delay, self._look_again
        )

    def _replay(self, record: bytes) -> None:
        try:
            outcome = decode_record(self._policy.outcome_codec, self._key, record)
        except Exception as failure:
            self._joiner.end("error", failure)
            return
        if _bus.listening:
            self._joiner.report("idempotency.replayed")
        self._joiner.emit_all(outcome.values)
        if outcome.error is None:
            self._joiner.end("completed", None)
        else:
            self._joiner.end("error", outcome.error)
