"""The process's one event bus: who listens, and delivery to them.

Hot paths read :data:`listening` (one module-global read and one branch) and
call :func:`emit` only when it is true, so with nobody listening no event
object, clock read or attribute mapping is ever built::

    if _bus.listening:
        _bus.emit("retry.scheduled", policy.name, now(), attempt=n, error=error)

Subscribers live in an immutable tuple that is replaced, under a lock, as
they come and go; :func:`emit` reads it once and delivers on the emitting
thread, in order, with no lock held while a subscriber runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

from reactivex import abc
from reactivex.disposable import Disposable

from .._child_safe_lock import ChildSafeLock
from ._event import KINDS, NO_ATTRIBUTES, TelemetryEvent

_R = TypeVar("_R")

__all__ = [
    "attach",
    "emit",
    "in_context",
    "listening",
    "trace_context",
    "trace_with",
]

_log = logging.getLogger("rxresilience")

_KNOWN = frozenset(KINDS)

#: True while at least one subscriber is attached: the only thing a hot path reads.
listening = False


class _Subscriber:
    """One subscription to the bus and the kinds and policies it asked for."""

    __slots__ = ("kinds", "observer", "policies")

    def __init__(
        self,
        observer: abc.ObserverBase[TelemetryEvent],
        kinds: frozenset[str] | None,
        policies: frozenset[str] | None,
    ) -> None:
        self.observer = observer
        self.kinds = kinds
        self.policies = policies


_lock = ChildSafeLock()
_subscribers: tuple[_Subscriber, ...] = ()
# What captures a tracing context at subscribe time (the OpenTelemetry
# adapter's current span); the last one attached wins.
_trace_hooks: tuple[Callable[[], object], ...] = ()


def attach(
    observer: abc.ObserverBase[TelemetryEvent],
    kinds: frozenset[str] | None,
    policies: frozenset[str] | None,
) -> abc.DisposableBase:
    """Deliver matching events to ``observer`` until the result is disposed."""
    global _subscribers, listening
    subscriber = _Subscriber(observer, kinds, policies)
    with _lock:
        _subscribers = (*_subscribers, subscriber)
        listening = True
    return Disposable(lambda: _detach(subscriber))


def _detach(subscriber: _Subscriber) -> None:
    global _subscribers, listening
    with _lock:
        _subscribers = tuple(s for s in _subscribers if s is not subscriber)
        listening = bool(_subscribers)


def emit(
    kind: str,
    policy: str,
    at: float,
    *,
    duration: float | None = None,
    attempt: int | None = None,
    error: BaseException | None = None,
    attributes: Mapping[str, object] | None = None,
    context: object = None,
) -> None:
    """Deliver one event to every subscriber that wants it, on this thread.

    Never raises for a subscriber: one whose ``on_next`` raises is detached
    and receives that exception as its ``on_error`` (as ``Broadcast`` does);
    the emitting operator and the other subscribers carry on.
    """
    if kind not in _KNOWN:  # a wiring mistake in the library itself
        raise ValueError(f"unknown telemetry event kind {kind!r}")
    event: TelemetryEvent | None = None
    for subscriber in _subscribers:
        if subscriber.kinds is not None and kind not in subscriber.kinds:
            continue
        if subscriber.policies is not None and policy not in subscriber.policies:
            continue
        if event is None:
            event = TelemetryEvent(
                kind,
                policy,
                at,
                duration,
                attempt,
                error,
                NO_ATTRIBUTES if not attributes else MappingProxyType(attributes),
                context,
            )
        _deliver(subscriber, event)


def _deliver(subscriber: _Subscriber, event: TelemetryEvent) -> None:
    observer = subscriber.observer
    try:
        observer.on_next(event)
    except Exception as error:
        _detach(subscriber)
        try:
            observer.on_error(error)
        except Exception:
            _log.exception(
                "a telemetry subscriber raised; it was detached from the events"
            )


def trace_with(hook: Callable[[], object]) -> abc.DisposableBase:
    """Capture ``hook()`` at subscribe time, as events' ``context``, until disposed."""
    global _trace_hooks
    with _lock:
        _trace_hooks = (*_trace_hooks, hook)

    def remove() -> None:
        global _trace_hooks
        with _lock:
            hooks = list(_trace_hooks)
            if hook in hooks:
                hooks.remove(hook)
            _trace_hooks = tuple(hooks)

    return Disposable(remove)


#: The context an outer operator carries into the subscriptions it makes
#: later, on another thread (a retry's next attempt on its timer thread).
_ambient = threading.local()


def in_context(context: object, action: Callable[[], _R]) -> _R:
    """Run ``action`` with ``context`` as what :func:`trace_context` answers on
    this thread: an operator that subscribes its source later, from a timer
    thread, passes on the context it captured when it was subscribed, so the
    events of the operators inside it (a breaker's refusal) reach the same span."""
    if context is None:
        return action()
    previous = getattr(_ambient, "context", None)
    _ambient.context = context
    try:
        return action()
    finally:
        _ambient.context = previous


def trace_context() -> object:
    """The tracing context to carry on this subscription's events, if any.

    Called at subscribe time, and only while someone listens: a timer thread
    that later emits does not carry the subscriber's context, unless an
    operator outside passes its own on (:func:`in_context`)."""
    carried = getattr(_ambient, "context", None)
    if carried is not None:
        return carried
    hooks = _trace_hooks
    if not hooks:
        return None
    try:
        return hooks[-1]()
    except Exception:  # a tracer that fails must not fail the subscription
        _log.exception("capturing the tracing context failed")
        return None
