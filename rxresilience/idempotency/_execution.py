"""One execution of an idempotent operation in this process, shared by its joiners.

An execution claims its key (:mod:`._claim`), then runs the source
(:mod:`._source_run`), replays a recorded outcome, or waits for another
owner. Every subscription to the same key in this process while it is in
flight joins it; the last one to leave stops it, unless the source has
started and must finish.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._child_safe_lock import ChildSafeLock
from .._clock import choose_scheduler, clock_of
from .._weak_identity_map import WeakIdentityMap
from ..errors import (
    IdempotencyClaimLostError,
    IdempotencyCodecError,
    IdempotencyError,
    IdempotencyKeyReuseError,
)
from ..stores._base import Claim, ClaimStatus, IdempotencyStore
from ..telemetry import _bus
from ._audience import Audience
from ._claim import KeyClaim
from ._other_owner import OtherOwner
from ._policy import IdempotencyPolicy, store_renews
from ._source_run import SourceRun
from ._store_calls import StoreCalls

__all__ = ["join"]

_T = TypeVar("_T")

_log = logging.getLogger("rxresilience")

# Executions in flight in this process, per store and key. The lock also
# guards what joining, leaving and claiming decide together: an execution's
# refs, whether it is cancelled or started, and whether its claim is held.
#: By the store's identity: two stores that compare equal are still two.
_REGISTRY: WeakIdentityMap[IdempotencyStore, dict[str, IdempotentExecution[Any]]] = (
    WeakIdentityMap()
)
_REGISTRY_LOCK = ChildSafeLock()

#: Claims answered too late to start on before the execution gives up (a
#: lease shorter than the event loop's delays never fits).
_MOST_LATE_ANSWERS = 3


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
        executions = _REGISTRY.setdefault(policy.store, dict)
        execution = executions.get(key)
        if execution is not None and execution.fingerprint != fingerprint:
            reused = True
        else:
            reused = False
            fresh = execution is None
            if execution is None:
                execution = IdempotentExecution(
                    policy, key, fingerprint, source, scheduler_
                )
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
    elif _bus.listening:
        execution.report("idempotency.joined")
    return Disposable(lambda: execution.detach(observer))


class IdempotentExecution(Audience[_T]):
    """The execution of one key in this process (a run of the source, a replay
    or a wait for another owner), shared by the subscriptions that join it."""

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
        self._scheduler = choose_scheduler(policy.scheduler, scheduler_)
        self._clock = clock_of(self._scheduler)
        calls = StoreCalls(policy.store, self._scheduler, scheduler_)
        self._claim = KeyClaim(
            policy,
            key,
            fingerprint,
            _REGISTRY_LOCK,
            self._scheduler,
            self._clock,
            calls,
        )
        self._source_run = SourceRun(
            self, self._claim, policy, self._scheduler, scheduler_
        )
        self._other_owner = OtherOwner(
            self, policy, key, self._scheduler, self._try_claim
        )
        super().__init__()
        self.ended = False  # the execution is over
        # Guarded by the registry lock: disposal and claiming decide together.
        self.cancelled = False
        # Once started, the source must run to its own end: finish_on_dispose
        # (of any joiner), a subscriber that raised, a value the codec cannot
        # encode, or a disposal that raced with the start.
        self.finish_started = bool(policy.finish_on_dispose)
        self._starting = False  # guarded by the registry lock
        self._started = False  # guarded by the registry lock
        self._late_answers = 0  # claims answered too late to start on
        self._claim_reported = False

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
                and not self.cancelled
                and not finishing
            )
            if cancel:
                self.cancelled = True
                self._unregister()
        if cancel:
            self._stop_cancelled()

    def _finishing(self) -> bool:
        """Called under the registry lock."""
        return self.finish_started or self._must_finish or self._starting

    def _unregister(self) -> None:
        """Called under the registry lock."""
        executions = _REGISTRY.get(self.policy.store)
        if executions is not None and executions.get(self.key) is self:
            del executions[self.key]

    def _stop_cancelled(self) -> None:
        """Everyone left: no timer, no source, no claim left behind."""
        self._stop_timers()
        self._source_run.unsubscribe()
        self._claim.release()

    # -- claiming ----------------------------------------------------------------------

    def start(self) -> None:
        self._try_claim()

    def _try_claim(self, *_: Any) -> None:
        if self.cancelled:  # disposed before this look at the store
            return
        try:
            self._claim.ask(lambda: self.cancelled, self._claimed)
        except Exception as error:  # a store or scheduler that misbehaves
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        self._claim.release(lambda: self.end("error", error))

    def _claimed(self, answer: Claim | Exception | None) -> None:
        """The store's answer (on the loop, under asyncio): go on with it, from
        the time the claim was made (on a store thread, maybe a while ago)."""
        try:
            self._go_on(self._claim.asked_at, answer)
        except Exception as error:  # a store or scheduler that misbehaves
            self._fail(error)

    def _go_on(self, now: float, answer: Claim | Exception | None) -> None:
        if answer is None:  # disposed while it was in flight: given back already
            return
        if isinstance(answer, Exception):
            self.end("error", answer)
            return
        if answer.status is ClaimStatus.CLAIMED:  # held: _run gives it back if disposed
            # Before the check of a late answer, so that a slow subscriber of
            # it makes the answer late, not the start; reported once.
            if _bus.listening and not self.cancelled and not self._claim_reported:
                self._claim_reported = True
                self.report("idempotency.claimed")
            self._run(now)
        elif not self.cancelled:  # if disposed since the answer: nothing to give back
            self._other_owner.answered(now, answer)

    def _run(self, now: float) -> None:
        if self._claim.answered_late(now) and not self.cancelled:
            # Its lease may be lapsing, or gone: another process may have
            # taken the key and be running it. Never start on a claim that
            # may not be ours: make sure first, a whole lease from now.
            self._late_answers += 1
            if self._late_answers >= _MOST_LATE_ANSWERS:
                self._fail(_too_late(self._claim.key, self._late_answers))
            elif store_renews(self.policy.store):
                self._claim.confirm(self._confirmed)
            elif self._claim.unlapsed(now):
                # A store of 0.1 cannot extend it: its lease is all there is,
                # judged here, as the source starts.
                self._start(now)
            else:  # lapsed: claim again, and wait for an owner if any
                self._reclaim()
            return
        self._start(now)

    def _reclaim(self) -> None:
        """The claim may be another's now: hold it no more, claim again."""
        self._claim.forget()
        if not self.cancelled:
            self._try_claim()

    def _start(self, now: float) -> None:
        """Start the source on the claim made (or last renewed) at ``now``."""
        with _REGISTRY_LOCK:
            if self.cancelled:  # disposed just now: the source never starts
                self._claim.held = False
                release = True
            else:
                release = False
                # From here a disposal cannot cancel the start half-way: until
                # the subscribe call returns, it lets the source finish.
                self._started = True
                self._starting = True
        if release:
            self._claim.give_back()
            return
        try:
            self._source_run.start(self._source, now)
        finally:
            with _REGISTRY_LOCK:
                self._starting = False
                cancel = self.refs == 0 and not self.ended and not self._finishing()
                if cancel:
                    self.cancelled = True
                    self._unregister()
            if cancel:  # everyone left while it started: stop it now
                self._stop_cancelled()

    def _confirmed(self, answer: bool | Exception) -> None:
        """The claim answered late, checked again (on the loop, under asyncio)."""
        try:
            if isinstance(answer, Exception):
                self._fail(answer)
            elif answer:
                self._run(self._claim.asked_at)  # renewed then: late again?
            else:  # taken: claim again, and wait for its owner
                self._reclaim()
        except Exception as error:  # a store or scheduler that misbehaves
            self._fail(error)

    # -- what the run of the source sees (its Execution) -----------------------------

    def emit(self, value: _T) -> None:
        with self._lock:
            self._emit(value)

    def emit_all(self, values: Iterable[_T]) -> None:
        with self._lock:
            for value in values:
                self._emit(value)

    def fail_early(self, error: Exception, cause: Exception) -> None:
        self._must_finish = True  # the effect happened: run on, record the marker
        if _bus.listening:
            self.report_error(error)
        self._announce("error", error, cause)

    def end(self, kind: str, error: Exception | None) -> None:
        """The execution is over: no timer left, out of the registry, told."""
        self.ended = True
        self._stop_timers()
        with _REGISTRY_LOCK:
            self._unregister()
        # After fail_early, the codec error was reported when it happened.
        if (
            error is not None
            and _bus.listening
            and not (self._must_finish and isinstance(error, IdempotencyCodecError))
        ):
            self.report_error(error)
        self._announce(kind, error)

    # -- telemetry (only while someone listens; never raises) --------------------

    def report(self, kind: str, error: Exception | None = None) -> None:
        """Emit one event of this execution (its key is never an attribute)."""
        try:
            _bus.emit(kind, self.policy.name, self._clock(), error=error)
        except Exception:
            _log.exception("reporting an idempotent call's telemetry event failed")

    def report_error(self, error: Exception) -> None:
        """Emit ``claim_lost`` or ``codec_error`` for an error that is one."""
        if isinstance(error, IdempotencyClaimLostError):
            self.report("idempotency.claim_lost", error)
        elif isinstance(error, IdempotencyCodecError):
            self.report("idempotency.codec_error", error)

    def _stop_timers(self) -> None:
        self._other_owner.stop()
        self._source_run.stop_timers()


def _too_late(key: str, answers: int) -> IdempotencyError:
    return IdempotencyError(
        f"the claim on idempotency key {key!r} was answered later than a third "
        f"of in_progress_timeout {answers} times (the event loop, or a "
        "subscriber of its telemetry, held it up): the operation was not "
        "started; give in_progress_timeout more room"
    )


def _forget_in_child() -> None:
    """After ``os.fork``, in the child: the parent's executions do not run
    here (their threads and timers stayed behind). A call in the child claims
    its key from the store, as another process would."""
    _REGISTRY.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
