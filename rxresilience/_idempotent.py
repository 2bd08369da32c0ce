"""``rxr.idempotent``: an operation keyed by an idempotency key runs once."""

from __future__ import annotations

import contextlib
import threading
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from ._arguments import (
    ErrorPredicate,
    error_predicate,
    require_choice,
    require_duration,
    require_scheduler,
)
from ._clock import choose_scheduler, clock_of
from ._codec import fingerprint as fingerprint_of
from .errors import (
    IdempotencyClaimLostError,
    IdempotencyCodecError,
    IdempotencyInProgressError,
    IdempotencyKeyReuseError,
    RecordedError,
)
from .stores._base import ClaimStatus, IdempotencyStore

__all__ = ["IdempotencySettings", "idempotent", "idempotent_by_fingerprint"]

_T = TypeVar("_T")

_NO_PAYLOAD: Any = object()
DEFAULT_TTL = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class IdempotencySettings:
    """The validated options shared by ``idempotent`` and ``idempotent_map``."""

    store: IdempotencyStore
    ttl: float
    in_progress_timeout: float
    on_in_progress: str
    poll_interval: float
    record_errors: ErrorPredicate | None
    finish_on_dispose: bool
    scheduler: abc.SchedulerBase | None

    @staticmethod
    def build(
        store: IdempotencyStore,
        ttl: float,
        in_progress_timeout: float,
        on_in_progress: str,
        poll_interval: float,
        record_errors: Any,
        finish_on_dispose: bool,
        scheduler: abc.SchedulerBase | None,
    ) -> IdempotencySettings:
        if not isinstance(store, IdempotencyStore):
            raise TypeError(
                f"store must be an IdempotencyStore, got {type(store).__name__}"
            )
        require_choice("on_in_progress", on_in_progress, ("wait", "error"))
        if not isinstance(finish_on_dispose, bool):
            raise TypeError(
                "finish_on_dispose must be a bool, got "
                f"{type(finish_on_dispose).__name__}"
            )
        require_scheduler("scheduler", scheduler)
        return IdempotencySettings(
            store=store,
            ttl=require_duration("ttl", ttl, positive=True),
            in_progress_timeout=require_duration(
                "in_progress_timeout", in_progress_timeout, positive=True
            ),
            on_in_progress=on_in_progress,
            poll_interval=require_duration(
                "poll_interval", poll_interval, positive=True
            ),
            record_errors=None
            if record_errors is None
            else error_predicate("record_errors", record_errors),
            finish_on_dispose=finish_on_dispose,
            scheduler=scheduler,
        )


def require_key(key: object) -> str:
    """An idempotency key must be a non-empty string."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a non-empty string, got {type(key).__name__}")
    if not key:
        raise ValueError("key must be a non-empty string, got ''")
    return key


def idempotent(
    store: IdempotencyStore,
    *,
    key: str,
    ttl: float = DEFAULT_TTL,
    payload: Any = _NO_PAYLOAD,
    in_progress_timeout: float = 60.0,
    on_in_progress: Literal["wait", "error"] = "wait",
    poll_interval: float = 0.1,
    record_errors: Any = None,
    finish_on_dispose: bool = False,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Run the source once per idempotency key; duplicates get the recorded outcome.

    ::

        first subscription:   --a--b--|     runs the source, records a, b, |
        later subscriptions:  (ab|)         replay the record, source untouched

    The first subscription claims ``key`` in ``store`` (atomically), runs the
    source, and records its values and completion. Later subscriptions, in
    this process or any other sharing the store, replay the record without
    subscribing to the source. Subscriptions that arrive in this process
    while the key is in flight join the running execution and see the same
    values. A duplicate in another process waits, polling the store every
    ``poll_interval`` on the scheduler, and then replays (or, with
    ``on_in_progress="error"``, fails with ``IdempotencyInProgressError``).

    Errors are not recorded unless ``record_errors`` matches them: the claim
    is released and the error delivered, so a ``retry`` placed outside runs
    the source again. A recorded error replays as ``rxr.RecordedError``
    (its type name and message: nothing is unpickled).

    A claim is a lease of ``in_progress_timeout`` seconds: if its owner dies,
    a waiting duplicate claims the key after it and runs the source. Set it
    above the longest run: an owner whose lease ran out cannot record its
    outcome (its subscribers get ``IdempotencyClaimLostError``).

    Disposal: the execution is disposed when its last subscriber disposes,
    and its claim released; the operation's outcome is then unknown (it may
    or may not have taken effect) and a later subscription runs it again.
    With ``finish_on_dispose=True`` the source runs on to record its outcome,
    for operations that must not be left half-done (a charge).

    Examples:
        >>> import reactivex as rx
        >>> store = InMemoryIdempotencyStore()
        >>> charges = []
        >>> charge = rx.defer(lambda _: rx.of(charges.append(1) or "ch_1")).pipe(
        ...     idempotent(store, key="charge-42", ttl=3600)
        ... )
        >>> charge.run(), charge.run(), len(charges)
        ('ch_1', 'ch_1', 1)

    Args:
        store: where claims and outcomes live (``InMemoryIdempotencyStore``,
            ``SQLiteIdempotencyStore``, ...).
        key: the idempotency key, a non-empty string.
        ttl: seconds a recorded outcome lives, on the scheduler's clock.
        payload: what the request carries; its fingerprint is recorded, and
            the same key with another payload fails with
            ``IdempotencyKeyReuseError`` and runs nothing.
        in_progress_timeout: the lease of a claim, in seconds.
        on_in_progress: ``"wait"`` (default) or ``"error"``, for a duplicate
            that finds the key held by another process or store.
        poll_interval: seconds between looks at the store while waiting.
        record_errors: errors to record and replay too (a predicate or
            exception types); default none.
        finish_on_dispose: keep the source running after the last subscriber
            disposes, to record its outcome.
        scheduler: the clock for ``ttl`` and leases and where polls run, else
            the subscribe-time scheduler, else the real clock. Expiries are
            stored as epoch seconds of that clock: processes sharing a store
            must all use real clocks.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: an empty key; a ``ttl``, ``in_progress_timeout`` or
            ``poll_interval`` not above 0, not finite, or above
            ``LONGEST_WAIT`` (about 292 years, the longest wait a timer can be
            armed for); an unknown ``on_in_progress``.
        TypeError: a key that is not a string, a payload that cannot be
            fingerprinted, a store or option of the wrong type (a ``bool``
            where seconds go included).
    """
    settings = IdempotencySettings.build(
        store,
        ttl,
        in_progress_timeout,
        on_in_progress,
        poll_interval,
        record_errors,
        finish_on_dispose,
        scheduler,
    )
    checked_key = require_key(key)
    fingerprint = None if payload is _NO_PAYLOAD else fingerprint_of(payload)
    return idempotent_by_fingerprint(settings, checked_key, fingerprint)


def idempotent_by_fingerprint(
    settings: IdempotencySettings, key: str, fingerprint: str | None
) -> Callable[[Observable[_T]], Observable[_T]]:
    """The operator for an already validated key and payload fingerprint."""

    def apply(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            scheduler_: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            return _join(settings, key, fingerprint, source, observer, scheduler_)

        return Observable(subscribe)

    return apply


# Executions in flight in this process, per store and key.
_REGISTRY: weakref.WeakKeyDictionary[IdempotencyStore, dict[str, _Execution[Any]]] = (
    weakref.WeakKeyDictionary()
)
_REGISTRY_LOCK = threading.Lock()


def _join(
    settings: IdempotencySettings,
    key: str,
    fingerprint: str | None,
    source: Observable[_T],
    observer: abc.ObserverBase[_T],
    scheduler_: abc.SchedulerBase | None,
) -> abc.DisposableBase:
    store = settings.store
    with _REGISTRY_LOCK:
        executions = _REGISTRY.setdefault(store, {})
        execution = executions.get(key)
        if execution is not None and execution.fingerprint != fingerprint:
            reused = True
        else:
            reused = False
            fresh = execution is None
            if execution is None:
                execution = _Execution(settings, key, fingerprint, source, scheduler_)
                executions[key] = execution
            execution.refs += 1
    if reused:
        observer.on_error(IdempotencyKeyReuseError(key))
        return Disposable()
    assert execution is not None
    execution.attach(observer)
    if fresh:
        execution.start()
    return Disposable(lambda: execution.detach(observer))


class _Execution(Generic[_T]):
    """One run (or replay, or wait) of a key in this process, shared by joiners."""

    def __init__(
        self,
        settings: IdempotencySettings,
        key: str,
        fingerprint: str | None,
        source: Observable[_T],
        scheduler_: abc.SchedulerBase | None,
    ) -> None:
        self.settings = settings
        self.key = key
        self.fingerprint = fingerprint
        self.refs = 0
        self._source = source
        self._subscribe_scheduler = scheduler_
        self._timer_scheduler = choose_scheduler(settings.scheduler, scheduler_)
        self._clock = clock_of(self._timer_scheduler)
        self._owner = uuid.uuid4().hex
        self._owns_claim = False
        self._lock = threading.RLock()
        self._observers: list[abc.ObserverBase[_T]] = []
        self._values: list[_T] = []
        self._terminal: tuple[str, Exception | None] | None = None
        self._cancelled = False
        self._upstream = SerialDisposable()
        self._poll = SerialDisposable()

    # -- subscribers ------------------------------------------------------------------

    def attach(self, observer: abc.ObserverBase[_T]) -> None:
        with self._lock:
            for value in self._values:
                observer.on_next(value)
            terminal = self._terminal
            if terminal is None:
                self._observers.append(observer)
                return
        self._deliver_terminal([observer], terminal)

    def detach(self, observer: abc.ObserverBase[_T]) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)
        with _REGISTRY_LOCK:
            self.refs -= 1
            last = self.refs == 0 and self._terminal is None and not self._cancelled
            if last and not self.settings.finish_on_dispose:
                self._cancelled = True
                self._unregister()
            else:
                last = False
        if last:
            self._poll.dispose()
            self._upstream.dispose()
            self._release_claim()

    def _unregister(self) -> None:
        """Called under the registry lock."""
        executions = _REGISTRY.get(self.settings.store)
        if executions is not None and executions.get(self.key) is self:
            del executions[self.key]

    # -- claiming ----------------------------------------------------------------------

    def start(self) -> None:
        self._try_claim()

    def _try_claim(self, *_: Any) -> None:
        if self._cancelled:
            return
        settings = self.settings
        now = self._clock()
        try:
            claim = settings.store.claim(
                self.key,
                self.fingerprint,
                self._owner,
                now,
                now + settings.in_progress_timeout,
            )
        except Exception as error:
            self._finish("error", error)
            return
        status = claim.status
        if status is ClaimStatus.CLAIMED:
            self._owns_claim = True
            self._run()
        elif status is ClaimStatus.COMPLETED:
            assert claim.record is not None
            self._replay(claim.record)
        elif status is ClaimStatus.KEY_REUSED:
            self._finish("error", IdempotencyKeyReuseError(self.key))
        elif settings.on_in_progress == "error":
            self._finish("error", IdempotencyInProgressError(self.key))
        else:
            self._poll.disposable = self._timer_scheduler.schedule_relative(
                settings.poll_interval, self._try_claim
            )

    def _replay(self, record: bytes) -> None:
        try:
            outcome = self.settings.store.codec.decode(record)
            values = list(outcome["values"])
            error = outcome.get("error")
        except Exception as failure:
            self._finish(
                "error",
                _codec_error(f"cannot decode the record of key {self.key!r}", failure),
            )
            return
        with self._lock:
            for value in values:
                self._emit(value)
        if error is None:
            self._finish("completed", None)
        else:
            self._finish(
                "error", RecordedError(str(error["type"]), str(error["message"]))
            )

    # -- running ---------------------------------------------------------------------

    def _run(self) -> None:
        self._upstream.disposable = self._source.subscribe(
            self._on_next,
            self._on_error,
            self._on_completed,
            scheduler=self._subscribe_scheduler,
        )

    def _on_next(self, value: _T) -> None:
        if self._terminal is not None or self._cancelled:
            return
        try:
            self.settings.store.codec.encode(value)
        except Exception as failure:
            self._upstream.dispose()
            self._release_claim()
            self._finish(
                "error",
                _codec_error(f"cannot encode a value of key {self.key!r}", failure),
            )
            return
        with self._lock:
            self._emit(value)

    def _emit(self, value: _T) -> None:
        """Called under the execution lock."""
        self._values.append(value)
        for observer in list(self._observers):
            observer.on_next(value)

    def _on_error(self, error: Exception) -> None:
        if self._terminal is not None or self._cancelled:
            return
        predicate = self.settings.record_errors
        try:
            record = predicate is not None and predicate(error)
        except Exception as failure:
            self._release_claim()
            self._finish("error", failure)
            return
        if record:
            described = {"type": _qualified_name(error), "message": str(error)}
            self._record({"values": self._values, "error": described}, "error", error)
        else:
            self._release_claim()
            self._finish("error", error)

    def _on_completed(self) -> None:
        if self._terminal is not None or self._cancelled:
            return
        self._record({"values": self._values, "error": None}, "completed", None)

    def _record(
        self, outcome: dict[str, Any], kind: str, error: Exception | None
    ) -> None:
        settings = self.settings
        store = settings.store
        try:
            record = store.codec.encode(outcome)
        except Exception as failure:
            self._release_claim()
            self._finish(
                "error",
                _codec_error(f"cannot encode the outcome of key {self.key!r}", failure),
            )
            return
        try:
            kept = store.complete(
                self.key, self._owner, record, self._clock() + settings.ttl
            )
        except Exception as failure:
            self._release_claim()
            self._finish("error", failure)
            return
        self._owns_claim = False
        if not kept:
            self._finish("error", IdempotencyClaimLostError(self.key))
            return
        self._finish(kind, error)

    def _release_claim(self) -> None:
        if self._owns_claim:
            self._owns_claim = False
            # If the store cannot be reached the claim expires by itself, and
            # the error that made us release it is the one to report.
            with contextlib.suppress(Exception):
                self.settings.store.release(self.key, self._owner)

    # -- finishing ---------------------------------------------------------------------

    def _finish(self, kind: str, error: Exception | None) -> None:
        with _REGISTRY_LOCK:
            self._unregister()
        with self._lock:
            if self._terminal is not None:
                return
            terminal = self._terminal = (kind, error)
            observers, self._observers = self._observers, []
        self._poll.dispose()
        self._deliver_terminal(observers, terminal)

    @staticmethod
    def _deliver_terminal(
        observers: list[abc.ObserverBase[_T]], terminal: tuple[str, Exception | None]
    ) -> None:
        kind, error = terminal
        for observer in observers:
            if kind == "completed":
                observer.on_completed()
            else:
                assert error is not None
                observer.on_error(error)


def _qualified_name(error: Exception) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


def _codec_error(message: str, cause: Exception) -> IdempotencyCodecError:
    error = IdempotencyCodecError(f"{message}: {cause}")
    error.__cause__ = cause
    return error
