"""A virtual-time harness: run an observable, get a ``Trace`` with type-aware checks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from reactivex import Observable, abc
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.testing import TestScheduler

from .._arguments import require_finite

__all__ = ["Event", "Trace", "advance", "assert_no_pending", "pending_items", "run"]


class Event(NamedTuple):
    """One notification: when, what kind (``next``/``error``/``completed``), payload."""

    time: float
    kind: str
    payload: Any


def _matches(expected: Any, actual: Any) -> bool:
    """Type-aware equality, the same from both sides.

    An exception type matches any instance of it; an exception instance
    matches an exception of the same type and ``args``; anything else
    compares with ``==``.
    """
    if isinstance(expected, type) and issubclass(expected, BaseException):
        return isinstance(actual, expected)
    if isinstance(actual, type) and issubclass(actual, BaseException):
        return isinstance(expected, actual)
    if isinstance(expected, BaseException) or isinstance(actual, BaseException):
        return type(expected) is type(actual) and getattr(
            expected, "args", None
        ) == getattr(actual, "args", None)
    try:
        return bool(expected == actual)
    except Exception:
        return False


def _symbol(payload: Any, names: dict[Any, str]) -> str:
    if isinstance(payload, str) and len(payload) == 1:
        return payload
    key = repr(payload)
    if key not in names:
        names[key] = chr(ord("a") + len(names) % 26)
    return names[key]


@dataclass
class Trace:
    """What an observable did in virtual time.

    Attributes:
        events: every notification, in order, as :class:`Event`.
        subscribed_at: when the subscription was made.
        disposed_at: when it was disposed, if it was.
    """

    events: list[Event] = field(default_factory=list)
    subscribed_at: float = 0.0
    disposed_at: float | None = None

    @property
    def values(self) -> list[Any]:
        return [e.payload for e in self.events if e.kind == "next"]

    @property
    def error(self) -> BaseException | None:
        for event in self.events:
            if event.kind == "error":
                payload: BaseException = event.payload
                return payload
        return None

    @property
    def completed(self) -> bool:
        return any(e.kind == "completed" for e in self.events)

    @property
    def ended_at(self) -> float | None:
        """The time of the terminal notification, if there was one."""
        for event in self.events:
            if event.kind in ("error", "completed"):
                return event.time
        return None

    def marbles(self, *, tick: float = 1.0) -> str:
        """The trace as a marble line: one character per ``tick`` from subscription."""
        names: dict[Any, str] = {}
        slots: dict[int, list[str]] = {}
        for event in self.events:
            position = round((event.time - self.subscribed_at) / tick)
            symbol = {"error": "#", "completed": "|"}.get(event.kind) or _symbol(
                event.payload, names
            )
            slots.setdefault(position, []).append(symbol)
        line: list[str] = []
        position = 0
        last = max(slots) if slots else -1
        while position <= last:
            found = slots.get(position)
            if found is None:
                line.append("-")
            elif len(found) == 1:
                line.append(found[0])
            else:
                line.append("(" + "".join(found) + ")")
            position += 1
        legend = ", ".join(f"{v}={k}" for k, v in names.items())
        return "".join(line) + (f"   where {legend}" if legend else "")

    def _fail(self, message: str) -> None:
        raise AssertionError(
            f"{message}\n  trace: {self.marbles()}\n  events: {self.events}"
        )

    def assert_values(self, *expected: Any) -> Trace:
        """The values, in order (type-aware comparison)."""
        values = self.values
        if len(values) != len(expected) or not all(
            _matches(e, a) for e, a in zip(expected, values, strict=True)
        ):
            self._fail(f"expected values {list(expected)!r}, got {values!r}")
        return self

    def assert_error(
        self, expected: type[BaseException] | BaseException, *, at: float | None = None
    ) -> Trace:
        """Ended with an error matching ``expected`` (a type or an instance)."""
        error = self.error
        if error is None or not _matches(expected, error):
            self._fail(f"expected error {expected!r}, got {error!r}")
        if at is not None and self.ended_at != at:
            self._fail(f"expected the error at {at}, got it at {self.ended_at}")
        return self

    def assert_completed(self, *, at: float | None = None) -> Trace:
        """Completed (at time ``at`` if given)."""
        if not self.completed:
            self._fail("expected completion")
        if at is not None and self.ended_at != at:
            self._fail(f"expected completion at {at}, got it at {self.ended_at}")
        return self

    def assert_events(self, expected: Iterable[tuple[float, str, Any]]) -> Trace:
        """Exactly these events: ``(time, kind, payload)``, payloads type-aware."""
        wanted = list(expected)
        if len(wanted) != len(self.events) or not all(
            w[0] == e.time and w[1] == e.kind and _matches(w[2], e.payload)
            for w, e in zip(wanted, self.events, strict=True)
        ):
            self._fail(f"expected events {wanted!r}")
        return self


def pending_items(scheduler: VirtualTimeScheduler) -> list[Any]:
    """The scheduler's queued items that are not cancelled."""
    return [item for item, _ in scheduler._queue.items if not item.is_cancelled()]


def assert_no_pending(scheduler: VirtualTimeScheduler) -> None:
    """Nothing is left queued (for leak checks after disposal)."""
    left = pending_items(scheduler)
    if left:
        due = sorted(float(scheduler.to_seconds(item.duetime)) for item in left)
        raise AssertionError(f"{len(left)} item(s) still pending, due at {due}")


def _call_factory(
    factory: Callable[..., Observable[Any]], scheduler: TestScheduler
) -> Observable[Any]:
    try:
        parameters = inspect.signature(factory).parameters.values()
        takes_scheduler = any(
            p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in parameters
        )
    except (TypeError, ValueError):
        takes_scheduler = False
    return factory(scheduler) if takes_scheduler else factory()


def run(
    factory: Callable[..., Observable[Any]],
    *,
    subscribe_at: float = 0.0,
    dispose_at: float | None = None,
    until: float | None = None,
    scheduler: TestScheduler | None = None,
) -> Trace:
    """Subscribe in virtual time and record what happens.

    Unlike ``TestScheduler.start``, 0 is a valid time (``start`` silently
    uses 100/200 for 0), times stay floats, and errors are kept as objects.

    Examples:
        >>> import reactivex as rx
        >>> trace = run(lambda scheduler: rx.timer(3.0, scheduler=scheduler))
        >>> trace.assert_values(0).assert_completed(at=3.0).marbles()
        '---(a|)   where a=0'

    Args:
        factory: makes the observable; called with the scheduler if it has a
            required positional parameter, else with none, at ``subscribe_at``.
        subscribe_at: the virtual time of the subscription.
        dispose_at: dispose the subscription then, if given.
        until: run virtual time up to here (default: until nothing is left
            to run; a source that never stops needs ``until`` or
            ``dispose_at``).
        scheduler: the ``TestScheduler`` to use (default: a new one).

    Returns:
        The :class:`Trace` (its ``subscribed_at`` is when the subscription
        was made: later than ``subscribe_at`` on a scheduler already past it).

    Raises:
        ValueError: a time negative or not finite, or ``dispose_at`` before
            ``subscribe_at``.
        TypeError: a time that is not a number (a ``bool`` included).
    """
    # Virtual times: any finite time from 0 (no real timer is armed).
    subscribe_at = require_finite("subscribe_at", subscribe_at)
    for name, later in (("dispose_at", dispose_at), ("until", until)):
        if later is not None and require_finite(name, later) < subscribe_at:
            # before the subscription, it would dispose of nothing (the
            # subscription left on) or run nothing (and leave it queued)
            raise ValueError(
                f"{name} must not come before subscribe_at, got "
                f"{name}={later!r} and subscribe_at={subscribe_at!r}"
            )
    dispose_at = None if dispose_at is None else float(dispose_at)
    until = None if until is None else float(until)
    sched = scheduler or TestScheduler()
    if sched._is_enabled:
        # Its clock moves only from the run under way: this one would record
        # nothing (or, waiting for the clock, never return).
        raise RuntimeError(
            "scheduler is running already: run() from an action of the same "
            "scheduler cannot move its clock (give it a TestScheduler of its "
            "own), or an exception left it running (call scheduler.stop())"
        )
    trace = Trace(subscribed_at=subscribe_at)
    holder: list[abc.DisposableBase] = []

    def subscribe(*_: Any) -> None:
        trace.subscribed_at = float(sched.clock)  # later than asked, on a clock past it
        observable = _call_factory(factory, sched)
        holder.append(
            observable.subscribe(
                on_next=lambda v: trace.events.append(Event(sched.clock, "next", v)),
                on_error=lambda e: trace.events.append(Event(sched.clock, "error", e)),
                on_completed=lambda: trace.events.append(
                    Event(sched.clock, "completed", None)
                ),
                scheduler=sched,
            )
        )

    def dispose(*_: Any) -> None:
        trace.disposed_at = sched.clock
        if holder:
            holder[0].dispose()

    sched.schedule_absolute(subscribe_at, subscribe)
    if dispose_at is not None:
        sched.schedule_absolute(dispose_at, dispose)
    try:
        if until is not None:
            advance(sched, until)
        elif dispose_at is not None:
            advance(sched, dispose_at)
        else:
            run_until_idle(sched)
    except BaseException:
        # RxPY leaves a scheduler an exception went through marked running:
        # every later run on it would silently run nothing.
        sched.stop()
        raise
    return trace


#: Actions due at one instant, at most, before :func:`run_until_idle` says
#: virtual time stands still.
MOST_AT_ONE_INSTANT = 100_000


def run_until_idle(scheduler: VirtualTimeScheduler) -> None:
    """Run virtual time until nothing is left to run. Unlike RxPY's
    ``start``, which moves the clock a second on after 100 actions due at one
    instant (150 immediate retries "completed at 1.0"), the clock moves only
    to what is due.

    Raises:
        RuntimeError: more than :data:`MOST_AT_ONE_INSTANT` actions were due
            at one instant: something reschedules itself there for good (a
            retry with no delay and only a time budget, ``rx.interval(0)``),
            which virtual time can never get past (``start`` did, by moving
            the clock on its own).
    """
    queue = scheduler._queue
    at, count = scheduler.now, 0
    while queue:
        due = queue.peek().duetime
        if due > scheduler.now:
            scheduler.advance_to(due)  # everything due up to then, in order
            continue
        if scheduler.now != at:
            at, count = scheduler.now, 0
        count += 1
        if count > MOST_AT_ONE_INSTANT:
            raise RuntimeError(
                f"virtual time stands still at {scheduler.clock!r}: more than "
                f"{MOST_AT_ONE_INSTANT:,} actions due at that one instant "
                "(something reschedules itself there for good: a retry with no "
                "delay and only a time budget, rx.interval(0)); give run() "
                "until= or dispose_at="
            )
        advance(scheduler, scheduler.clock, most=1)  # one action due now


def advance(
    scheduler: VirtualTimeScheduler, to: float, *, most: int | None = None
) -> None:
    """Run virtual time to ``to``, including what is due at the current instant
    (``most`` actions of it at most)."""
    if to > scheduler.clock:
        scheduler.advance_to(to)
        return
    queue = scheduler._queue
    ran = 0
    # Marked running meanwhile, as advance_to marks it: a run() from inside
    # one of these actions is refused, not left to move the clock under it.
    scheduler._is_enabled = True
    try:
        while queue and queue.peek().duetime <= scheduler.now:
            if most is not None and ran >= most:
                return
            item = queue.dequeue()
            ran += 1
            if not item.is_cancelled():
                item.invoke()
    finally:
        scheduler._is_enabled = False
