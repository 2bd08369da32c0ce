"""The one path a breaker's calls take: admitted, settled once, transitions published."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from reactivex import abc

from .._arguments import ErrorPredicate
from .._broadcast import Broadcast
from .._clock import choose_scheduler
from ..errors import CircuitOpenError
from ..telemetry import _bus
from ..telemetry._registry import register, track_breaker
from ._gate_report import GateReport
from ._machine import BreakerConfig, CircuitState, Outcome, Refusal, StateChange
from ._permit import Permit
from ._storage import BreakerStorage
from ._transitions import Transitions

__all__ = ["Gate"]

_log = logging.getLogger("rxresilience")

#: Seconds, at least, before a trial timeout the storage failed to record is
#: recorded again (a microsecond ``max_half_open_wait`` would spin).
_RETRY_RECORD_AFTER = 1.0

#: The states the telemetry gauges label.
_STATE_NAMES = tuple(state.value for state in CircuitState)

_SUCCESS = Outcome.SUCCESS
_FAILURE = Outcome.FAILURE
_NEITHER = Outcome.NEITHER
_TIMED_OUT = Outcome.TIMED_OUT


class Gate:
    """A breaker's admissions and settlements, and the publication of its changes.

    Every call (operator, ``call``, ``call_async``) is admitted by
    :meth:`try_admit` and settled by exactly one of :meth:`succeed`,
    :meth:`fail`, :meth:`release`, :meth:`check` or the trial's timer, which
    all end in :meth:`settle`. The storage queues transitions while its
    update is atomic; :class:`Transitions` publishes them afterwards, in
    order, from one thread at a time, with no lock held while a subscriber
    runs. Telemetry goes through a :class:`GateReport`.
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_failure_if",
        "_ignore",
        "_max_half_open_wait",
        "_name",
        "_outbox",
        "_record",
        "_report",
        "_scheduler",
        "_storage",
        "_transitions",
    )

    def __init__(
        self,
        *,
        name: str,
        config: BreakerConfig,
        storage: BreakerStorage,
        clock: Callable[[], float],
        scheduler: abc.SchedulerBase | None,
        record: ErrorPredicate,
        ignore: ErrorPredicate | None,
        failure_if: Callable[[Any], bool] | None,
        auto_half_open: bool,
    ) -> None:
        self._name = name
        self._storage = storage
        self._clock = clock
        self._scheduler = scheduler
        self._record = record
        self._ignore = ignore
        self._failure_if = failure_if
        self._max_half_open_wait = config.max_half_open_wait
        self._report = GateReport(name, clock, storage)
        self._transitions = Transitions(
            name=name,
            storage=storage,
            clock=clock,
            scheduler=scheduler,
            reset_timeout=config.reset_timeout,
            auto_half_open=auto_half_open,
            report=self._report,
        )
        # The same deque, kept here too: the hot path tests it without a hop.
        self._outbox = self._transitions.outbox
        storage.bind(config, self._outbox.append)
        track_breaker(self, _STATE_NAMES)
        register("circuit breaker", name, self, default="circuit-breaker", stacklevel=4)

    @property
    def changes(self) -> Broadcast[StateChange]:
        return self._transitions.changes

    @property
    def name(self) -> str:
        return self._name

    def last_known_state(self) -> str:
        """The state as last known, without asking a shared storage (for gauges)."""
        return self._storage.state.value

    # -- admission ---------------------------------------------------------------------

    def try_admit(self) -> Permit | CircuitOpenError:
        """A permit for one call, or the error that refuses it."""
        permit = self._storage.acquire(self._clock())
        if self._outbox:
            self._transitions.publish()
        if isinstance(permit, Refusal):
            refusal = CircuitOpenError(
                self._name, permit.state.value, permit.retry_after
            )
            if _bus.listening:
                self._report.refused(refusal)
            return refusal
        permit._gate = self
        if permit.trial and self._max_half_open_wait is not None:
            try:
                self._arm_trial_timeout(permit, self._max_half_open_wait)
            except BaseException:  # the trial slot is given back, not leaked
                self.settle(permit, _NEITHER)
                raise
        return permit

    def _arm_trial_timeout(self, permit: Permit, wait: float) -> None:
        permit.timer = choose_scheduler(self._scheduler, None).schedule_relative(
            wait, lambda _s, _t: self._time_out(permit, wait)
        )

    def _time_out(self, permit: Permit, wait: float) -> None:
        """On the trial's timer: it outlasted ``max_half_open_wait``. A storage
        that fails to record that is asked again a wait later (else the trial
        would hold its slot, and the breaker stay half-open, for good)."""
        try:
            self.settle(permit, _TIMED_OUT)
        except Exception:
            _log.exception(
                "breaker %r could not record a trial's timeout; trying again in %s s",
                self._name,
                max(wait, _RETRY_RECORD_AFTER),
            )
            if not permit.settled:
                try:  # not sooner than a second: a storage that is down stays down a while
                    self._arm_trial_timeout(permit, max(wait, _RETRY_RECORD_AFTER))
                except Exception:  # a closed loop: nothing runs on it any more
                    _log.exception("breaker %r could not re-arm it", self._name)

    # -- settlement ----------------------------------------------------------------------

    def settle(
        self, permit: Permit, outcome: Outcome, error: BaseException | None = None
    ) -> None:
        """Record how a call ended; later settles of the same permit do nothing."""
        if permit.settled:
            return
        now = self._clock()
        self._storage.record(permit, outcome, now)
        timer = permit.timer
        if timer is not None and outcome is not _TIMED_OUT:
            timer.dispose()
        if _bus.listening and outcome is not _NEITHER:
            self._report.settled(permit, outcome, now, error)
        if self._outbox:
            self._transitions.publish()

    def succeed(self, permit: Permit) -> None:
        self.settle(permit, _SUCCESS)

    def release(self, permit: Permit) -> None:
        self.settle(permit, _NEITHER)

    def fail(self, permit: Permit, error: BaseException) -> None:
        if permit.settled:  # a later report: ignored, the predicates not asked
            return
        try:
            outcome = self._classify(error)
        except Exception:
            self.settle(permit, _NEITHER)
            raise
        self.settle(permit, outcome, error)

    def check(self, permit: Permit, value: Any) -> bool:
        failure_if = self._failure_if
        if failure_if is None or permit.settled:
            return False
        try:
            flagged = bool(failure_if(value))
        except Exception:
            self.settle(permit, _NEITHER)
            raise
        if flagged:
            self.settle(permit, _FAILURE)
        return flagged

    def _classify(self, error: BaseException) -> Outcome:
        if not isinstance(error, Exception):  # cancellation, KeyboardInterrupt
            return _NEITHER
        ignore = self._ignore
        if ignore is not None and ignore(error):
            return _NEITHER
        return _FAILURE if self._record(error) else _NEITHER

    # -- publishing transitions ----------------------------------------------------------

    def publish_pending(self) -> None:
        """Publish what the storage queued, if anything."""
        if self._outbox:
            self._transitions.publish()

    def publish(self) -> None:
        """Emit queued transitions in order (see :meth:`Transitions.publish`)."""
        self._transitions.publish()
