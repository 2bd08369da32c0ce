"""``rxr.telemetry.events``: the process's events as one hot observable."""

from __future__ import annotations

from collections.abc import Iterable

from reactivex import Observable, abc

from . import _bus
from ._event import KINDS, TelemetryEvent

__all__ = ["events"]


def _names(argument: str, value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset((value,))
    try:
        names = frozenset(value)
    except TypeError:
        raise TypeError(
            f"{argument} must be a string or an iterable of strings, got "
            f"{type(value).__name__}"
        ) from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must hold strings, got {type(name).__name__}")
    return names


def events(
    kinds: str | Iterable[str] | None = None,
    policies: str | Iterable[str] | None = None,
) -> Observable[TelemetryEvent]:
    """Every policy's events, as one hot stream, filtered by kind and policy name.

    ::

        retry "payments":   --x-----x------#
        events(kinds="retry.scheduled")
        result:             --s-----s-------   (hot: never completes)

    Delivery is synchronous, on the thread that emits, before the operator
    goes on: a slow handler slows the calls it observes (hand events to a
    queue or ``ops.observe_on`` for heavy work). Each thread's events arrive
    in that thread's order; ``breaker.state_changed`` arrives in transition
    order. There is no replay: a subscriber sees what happens from then on.
    Disposing the subscription detaches it; a subscriber whose ``on_next``
    raises is detached and gets that exception as its ``on_error``, and the
    operators and the other subscribers carry on. With no subscriber at all,
    the operators build no events.

    Examples:
        >>> import reactivex as rx
        >>> seen = []
        >>> subscription = events(kinds="retry.scheduled").subscribe(seen.append)
        >>> failing = rx.throw(ConnectionError("down"))
        >>> failing.pipe(retry(2, backoff=None, name="payments")).subscribe(
        ...     on_error=lambda error: None
        ... )  # doctest: +ELLIPSIS
        <...>
        >>> [(event.kind, event.policy, event.attempt) for event in seen]
        [('retry.scheduled', 'payments', 1)]
        >>> subscription.dispose()

    Args:
        kinds: the kinds to deliver (one, or several), from
            :data:`~rxresilience.telemetry.KINDS`; default all.
        policies: the policy names to deliver (one, or several); default all.

    Returns:
        A hot ``Observable`` of :class:`~rxresilience.TelemetryEvent`.

    Raises:
        ValueError: an unknown kind (the message lists the known ones).
        TypeError: a filter that is not a string or an iterable of strings.
    """
    wanted_kinds = _names("kinds", kinds)
    if wanted_kinds is not None:
        unknown = sorted(wanted_kinds.difference(KINDS))
        if unknown:
            raise ValueError(
                f"unknown event kind(s) {', '.join(map(repr, unknown))}; the "
                f"known kinds are: {', '.join(KINDS)}"
            )
    wanted_policies = _names("policies", policies)

    def subscribe(
        observer: abc.ObserverBase[TelemetryEvent],
        _scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        return _bus.attach(observer, wanted_kinds, wanted_policies)

    return Observable(subscribe)
