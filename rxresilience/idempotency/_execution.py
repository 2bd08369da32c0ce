"""One execution of an idempotent operation in this process, shared by its joiners.

An execution claims its key, then runs the source (renewing the claim's lease
while it runs), replays a recorded outcome, or waits for another owner. Every
subscription to the same key in this process while it is in flight joins it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
import weakref
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from .._clock import RESOLUTION, choose_scheduler, clock_of
from .._lease import Lease
from ..errors import (
    CallRefusedError,
    IdempotencyClaimLostError,
    IdempotencyInProgressError,
    IdempotencyKeyReuseError,
)
from ..errors import TimeoutError as ResilienceTimeoutError
from ..stores._base import ClaimStatus, IdempotencyStore
from ._audience import Audience
from ._policy import IdempotencyPolicy, store_renews
from ._record import (
    check_round_trip,
    decode_record,
    encode_outcome,
    qualified_name,
    unrecordable,
    unrecordable_marker,
)

__all__ = ["join"]

_T = TypeVar("_T")
_log = logging.getLogger("rxresilience")

# Executions in flight in this process, per store and key.
_REGISTRY: weakref.WeakKeyDictionary[
    IdempotencyStore, dict[str, IdempotentRun[Any]]
] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def join(
    policy: IdempotencyPolicy,
    key: str,
    fingerprint: str | None,
    source: Observable[_T],
    observer: abc.ObserverBase[_T],
    scheduler_: abc.SchedulerBase | None,
) -> abc.DisposableBase:
    """Subscribe ``observer`` to the execution of ``key``, starting one if needed."""
    with _REGISTRY_LOCK:
        executions = _REGISTRY.setdefault(policy.store, {})
        execution = executions.get(key)
        if execution is not None and execution.fingerprint != fingerprint:
            reused = True
        else:
            reused = False
            fresh = execution is None
            if execution is None:
                execution = IdempotentRun(policy, key, fingerprint, source, scheduler_)
                executions[key] = execution
            execution.refs += 1
            if policy.finish_on_dispose:  # any joiner that must finish decides
                execution.finish_started = True
    if reused:
        observer.on_error(IdempotencyKeyReuseError(key))
        return Disposable()
    assert execution is not None
    execution.attach(observer)
    if fresh:
        execution.start()
    return Disposable(lambda: execution.detach(observer))


class IdempotentRun(Audience[_T]):
    """One run (or replay, or wait) of a key in this process, shared by joiners."""

    def __init__(
        self,
        policy: IdempotencyPolicy,
        key: str,
        fingerprint: str | None,
        source: Observable[_T],
        scheduler_: abc.SchedulerBase | None,
    ) -> None:
        self.policy = policy
        self.key = key
        self.fingerprint = fingerprint
        self.refs = 0  # guarded by the registry lock
        self._source = source
        self._subscribe_scheduler = scheduler_
        self._scheduler = choose_scheduler(policy.scheduler, scheduler_)
        self._clock = clock_of(self._scheduler)
        self._codec = policy.outcome_codec
        self._owner = uuid.uuid4().hex
        super().__init__()
        self._ended = False  # the execution is over
        # Guarded by the registry lock: disposal and claiming decide together.
        self._cancelled = False
        self._owns_claim = False
        # Once started, the source must run to its own end: finish_on_dispose
        # (of any joiner), a subscriber that raised, a value the codec cannot
        # encode, or a disposal that raced with the start.
        self.finish_started = bool(policy.finish_on_dispose)
        self._starting = False  # guarded by the registry lock
        self._started = False  # guarded by the registry lock
        self._unrecordable: tuple[str, str] | None = None
        self._kept = False
        self._waiting_since: float | None = None
        self._lease: Lease | None = None
        self._upstream = SerialDisposable()
        self._poll = SerialDisposable()
        self._max_run = SerialDisposable()

    # -- subscribers ------------------------------------------------------------------

    def detach(self, observer: abc.ObserverBase[_T]) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)
        with _REGISTRY_LOCK:
            self.refs -= 1
            # A source that has not started never starts after this; one that
            # is running stops unless it must finish.
            finishing = self._started and self._finishing()
            cancel = (
                self.refs == 0
                and self._terminal is None
                and not self._cancelled
                and not finishing
            )
            if cancel:
                self._cancelled = True
                self._unregister()
        if cancel:
            self._stop_timers()
            self._upstream.dispose()
            self._release_claim()

    def _disposed(self) -> bool:
        return self._cancelled

    def _unregister(self) -> None:
        """Called under the registry lock."""
        executions = _REGISTRY.get(self.policy.store)
        if executions is not None and executions.get(self.key) is self:
            del executions[self.key]

    # -- claiming ----------------------------------------------------------------------

    def start(self) -> None:
        self._try_claim()

    def _try_claim(self, *_: Any) -> None:
        try:
            self._claim_once()
        except Exception as error:  # a store or scheduler that misbehaves
            self._release_claim()
            self._end("error", error)

    def _claim_once(self) -> None:
        if self._disposed():
            return
        policy = self.policy
        now = self._clock()
        try:
            claim = policy.store.claim(
                self.key,
                self.fingerprint,
                self._owner,
                now,
                now + policy.in_progress_timeout,
            )
        except Exception as error:
            self._end("error", error)
            return
        status = claim.status
        if status is ClaimStatus.COMPLETED and not isinstance(claim.record, bytes):
            raise TypeError(f"the store answered a claim with {claim!r}")
        with _REGISTRY_LOCK:
            cancelled = self._cancelled
            if status is ClaimStatus.CLAIMED and not cancelled:
                self._owns_claim = True
        if cancelled:
            # Disposed while the claim was in flight: give back what we won.
            if status is ClaimStatus.CLAIMED:
                with contextlib.suppress(Exception):
                    policy.store.release(self.key, self._owner)
            return
        if status is ClaimStatus.CLAIMED:
            self._run(now)
        elif status is ClaimStatus.COMPLETED:
            assert isinstance(claim.record, bytes)
            self._replay(claim.record)
        elif status is ClaimStatus.KEY_REUSED:
            self._end("error", IdempotencyKeyReuseError(self.key))
        elif policy.on_in_progress == "error":
            self._end("error", IdempotencyInProgressError(self.key))
        else:
            self._wait(now)

    def _wait(self, now: float) -> None:
        """Look again in ``poll_interval``, for at most ``max_run`` in all."""
        delay = self.policy.poll_interval
        max_run = self.policy.max_run
        if max_run is not None:
            if self._waiting_since is None:
                self._waiting_since = now
            left = self._waiting_since + max_run - now
            if left <= RESOLUTION:
                self._end("error", IdempotencyInProgressError(self.key))
                return
            delay = min(delay, left)
        self._poll.disposable = self._scheduler.schedule_relative(
            delay, self._try_claim
        )

    def _replay(self, record: bytes) -> None:
        try:
            outcome = decode_record(self._codec, self.key, record)
        except Exception as failure:
            self._end("error", failure)
            return
        with self._lock:
            for value in outcome.values:
                self._emit(value)
        if outcome.error is None:
            self._end("completed", None)
        else:
            self._end("error", outcome.error)

    # -- running ---------------------------------------------------------------------

    def _run(self, now: float) -> None:
        with _REGISTRY_LOCK:
            if self._cancelled:  # disposed just now: the source never starts
                self._owns_claim = False
                release = True
            else:
                release = False
                # From here a disposal cannot cancel the start half-way: until
                # the subscribe call returns, it lets the source finish.
                self._started = True
                self._starting = True
        if release:
            with contextlib.suppress(Exception):
                self.policy.store.release(self.key, self._owner)
            return
        policy = self.policy
        store = policy.store
        if store_renews(store):
            self._lease = Lease(
                policy.in_progress_timeout,
                now + policy.in_progress_timeout,
                self._scheduler,
                self._clock,
                lambda until: store.renew(self.key, self._owner, until),
                self._claim_lost,
            )
        if policy.max_run is not None:
            self._max_run.disposable = self._scheduler.schedule_relative(
                policy.max_run, self._ran_too_long
            )
        try:
            self._upstream.disposable = self._source.subscribe(
                self._on_next,
                self._on_error,
                self._on_completed,
                scheduler=self._subscribe_scheduler,
            )
        finally:
            with _REGISTRY_LOCK:
                self._starting = False
                cancel = self.refs == 0 and not self._ended and not self._finishing()
                if cancel:
                    self._cancelled = True
                    self._unregister()
            if cancel:  # everyone left while it started: stop it now
                self._stop_timers()
                self._upstream.dispose()
                self._release_claim()

    def _finishing(self) -> bool:
        """Called under the registry lock."""
        return self.finish_started or self._must_finish or self._starting

    def _on_next(self, value: _T) -> None:
        if self._ended or self._cancelled or self._unrecordable is not None:
            return
        try:
            self._codec.encode(value)
        except Exception as failure:
            # The effect happened: never run again. Run on to the source's end,
            # then record a marker; subscribers learn it now.
            self._unrecordable = (qualified_name(value), str(failure))
            self._must_finish = True
            self._announce(
                "error", unrecordable(self.key, *self._unrecordable), failure
            )
            return
        with self._lock:
            self._emit(value)

    def _on_error(self, error: Exception) -> None:
        if self._ended or self._cancelled:
            return
        predicate = self.policy.error_filter
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
                self._release_claim()
                self._end("error", failure)
                return
            if not record:
                self._release_claim()
                self._end("error", error)
                return
        self._record("error", error)

    def _on_completed(self) -> None:
        if self._ended or self._cancelled:
            return
        self._record("completed", None)

    def _record(self, kind: str, error: Exception | None) -> None:
        """Record the outcome. The effect happened: whatever fails here, the
        claim is never released for another run."""
        if self._unrecordable is None:
            try:
                record = encode_outcome(self._codec, self._values, error)
                check_round_trip(self._codec, self.key, record)
            except Exception as bad:
                self._unrecordable = (_type_of(self._values), str(bad))
        unrecordable_now = self._unrecordable
        if unrecordable_now is None:
            refused = self._complete(record)
            if refused is None:
                self._recorded(kind, error)
                return
            # The store refused the record (too large, or a blip): say so with
            # the small marker instead, so no duplicate ever runs it again.
            unrecordable_now = ("outcome", f"the store refused it: {refused}")
            self._unrecordable = unrecordable_now
        problem = unrecordable(self.key, *unrecordable_now)
        lost = self._complete(unrecordable_marker(*unrecordable_now))
        if lost is None:
            self._recorded("error", problem)
            return
        # Nothing could be written: keep the claim (its lease lapses on its own;
        # the outcome is then unknown) and say why.
        with _REGISTRY_LOCK:
            self._owns_claim = False
        problem.__cause__ = lost
        self._end("error", problem)

    def _complete(self, record: bytes) -> Exception | None:
        try:
            kept = self.policy.store.complete(
                self.key, self._owner, record, self._clock() + self.policy.ttl
            )
        except Exception as failure:
            return failure
        self._kept = kept
        return None

    def _recorded(self, kind: str, error: Exception | None) -> None:
        with _REGISTRY_LOCK:
            self._owns_claim = False
        if not self._kept:
            self._end("error", IdempotencyClaimLostError(self.key))
        else:
            self._end(kind, error)

    def _claim_lost(self, _why: str) -> None:
        """The lease was taken over, or lapsed unrenewed: stop, record nothing."""
        self._upstream.dispose()
        self._release_claim()  # checked against our owner token: harmless if taken
        self._end("error", IdempotencyClaimLostError(self.key))

    def _ran_too_long(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        """``max_run`` passed: stop, and keep the claim until its lease lapses."""
        if self._ended:
            return
        self._owns_claim = False  # the outcome is unknown: nobody may run it yet
        self._upstream.dispose()
        max_run = self.policy.max_run
        assert max_run is not None
        self._end("error", ResilienceTimeoutError("max_run", max_run))

    def _release_claim(self) -> None:
        with _REGISTRY_LOCK:
            owns, self._owns_claim = self._owns_claim, False
        if owns:
            # If the store cannot be reached the claim expires by itself, and
            # the error that made us release it is the one to report.
            with contextlib.suppress(Exception):
                self.policy.store.release(self.key, self._owner)

    # -- finishing ---------------------------------------------------------------------

    def _stop_timers(self) -> None:
        if self._lease is not None:
            self._lease.stop()
        self._poll.dispose()
        self._max_run.dispose()

    def _end(self, kind: str, error: Exception | None) -> None:
        """The execution is over: no timer left, out of the registry, told."""
        self._ended = True
        self._stop_timers()
        with _REGISTRY_LOCK:
            self._unregister()
        self._announce(kind, error)


def _type_of(values: list[Any]) -> str:
    """The type to blame for an outcome that could not be recorded."""
    return qualified_name(values[-1]) if values else "outcome"
