"""``rxr.RateLimiter``: one rate limit shared by many pipelines and plain calls."""

from __future__ import annotations

import logging
import warnings
import weakref

from reactivex import abc

from .._arguments import require_duration, require_name, require_scheduler
from .._child_safe_lock import ChildSafeLock
from .._clock import LONGEST_WAIT, clock_of, is_virtual
from ..errors import RateLimitedError
from ..telemetry import _bus
from ..telemetry._registry import register
from ._config import RateLimiterConfig
from ._gcra import RateLimiterReservation
from ._storage import InMemoryRateLimiterStorage, RateLimiterStorage

__all__ = ["RateLimiter", "warn_of_two_clocks"]

_log = logging.getLogger("rxresilience")


class RateLimiter:
    """A rate limit (GCRA): ``rate`` permits per ``per`` seconds, ``burst`` at once.

    Permits are spaced ``per / rate`` seconds apart; from idle, ``burst`` of
    them are free at once. Over any window of ``w`` seconds the limiter
    admits at most ``burst + w * rate / per`` permits. It keeps one number,
    the theoretical arrival time of the next permit, so it costs the same
    whatever the rate.

    Guard an observable with :func:`rxresilience.rate_limit` (one
    subscription is one call, waiting for its permit on a timer) or pace its
    items with :func:`rxresilience.pace`; in plain code, :meth:`try_acquire`
    takes a permit if one is free now. Time is the ``scheduler``'s clock
    (default: the real clock), as for a circuit breaker: a limiter is shared,
    so it keeps its own time; under a ``TestScheduler`` give it the test's
    scheduler, and the operators' waits are exact in virtual time. It is
    thread-safe: its lock is held only for a few sums.

    Examples:
        >>> limiter = RateLimiter(rate=2, per=1.0, burst=3, name="payments-api")
        >>> [limiter.try_acquire() for _ in range(4)]
        [True, True, True, False]
        >>> 0 < limiter.time_to_permit() <= 0.5
        True

    Args:
        rate: permits per ``per`` seconds, above 0.
        per: the period of ``rate``, in seconds.
        burst: permits free at once from idle (an int >= 1).
        storage: where the state lives (default: in this process); a
            :class:`~rxresilience.RedisRateLimiterStorage` shares one limit
            with every process using its name.
        name: a name for errors and logs.
        scheduler: the clock (default: the real clock).

    Raises:
        ValueError: ``rate`` or ``per`` not above 0 or not finite, ``burst <
            1``, spacing or burst beyond ``LONGEST_WAIT``, an empty name, a
            storage already bound to another limiter.
        TypeError: an argument of the wrong type (a ``bool`` or a float
            ``burst`` included).
    """

    __slots__ = ("__weakref__", "_clock", "_config", "_name", "_scheduler", "_storage")

    def __init__(
        self,
        rate: float,
        per: float = 1.0,
        burst: int = 1,
        *,
        storage: RateLimiterStorage | None = None,
        name: str = "rate-limiter",
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        config = RateLimiterConfig(rate, per, burst)
        require_name("name", name)
        require_scheduler("scheduler", scheduler)
        register("rate limiter", name, self, default="rate-limiter", stacklevel=3)
        if storage is None:
            storage = InMemoryRateLimiterStorage()
        elif not isinstance(storage, RateLimiterStorage):
            raise TypeError(
                f"storage must be a RateLimiterStorage, got {type(storage).__name__}"
            )
        storage.bind(config)
        self._config = config
        self._name = name
        self._scheduler = scheduler
        self._storage = storage
        self._clock = clock_of(scheduler)

    @property
    def config(self) -> RateLimiterConfig:
        """The settings: ``rate``, ``per``, ``burst``, and the derived spacing."""
        return self._config

    @property
    def name(self) -> str:
        return self._name

    @property
    def scheduler(self) -> abc.SchedulerBase | None:
        """The scheduler whose clock the limiter keeps (None: the real clock)."""
        return self._scheduler

    @property
    def storage(self) -> RateLimiterStorage:
        return self._storage

    def try_acquire(self) -> bool:
        """Take a permit if one is free now: True if one was taken (``limits``' ``hit``)."""
        return isinstance(
            self._storage.reserve(self._clock(), 0.0), RateLimiterReservation
        )

    def time_to_permit(self) -> float:
        """Seconds until a permit is free (0: now); nothing is taken."""
        return self._storage.time_to_permit(self._clock())

    def try_reserve(
        self, max_wait: float | None = None
    ) -> RateLimiterReservation | RateLimitedError:
        """Take the next permit if it is free within ``max_wait`` seconds.

        For work that neither operator wraps: wait the reservation's
        ``wait`` seconds, then call; give it back with :meth:`cancel` if the
        call is called off before then.

        Args:
            max_wait: seconds the caller is willing to wait (None: as long as
                needed, up to ``LONGEST_WAIT``).

        Returns:
            The reservation, or (nothing taken) the error that refuses it,
            whose ``retry_after`` is the seconds until a permit is free.
        """
        if max_wait is None:
            bound = LONGEST_WAIT
        elif type(max_wait) is float and 0.0 <= max_wait <= LONGEST_WAIT:
            bound = max_wait
        else:
            bound = require_duration("max_wait", max_wait)
        now = self._clock()
        answer = self._storage.reserve(now, bound)
        if isinstance(answer, RateLimiterReservation):
            if _bus.listening and answer.wait:
                self._report("rate_limit.waited", now, answer.wait, None)
            return answer
        refusal = RateLimitedError(self._name, answer)
        if _bus.listening:
            self._report("rate_limit.refused", now, None, refusal)
        return refusal

    def _report(
        self,
        kind: str,
        now: float,
        wait: float | None,
        error: RateLimitedError | None,
    ) -> None:
        """Emit one telemetry event (only while someone listens); never raises."""
        try:
            _bus.emit(
                kind,
                self._name,
                now,
                error=error,
                attributes=None if wait is None else {"delay": wait},
                context=_bus.trace_context(),
            )
        except Exception:
            _log.exception("reporting rate limiter %r's event failed", self._name)

    def cancel(self, reservation: RateLimiterReservation) -> bool:
        """Give ``reservation`` back if no later permit was taken since.

        Give each reservation back once at most: the check is on the
        limiter's time alone, so a second call, after another request took
        an identical reservation, would give that one's permit back.

        Returns:
            True if it was given back; False if it stays spent (another
            permit was taken after it, and moving the limiter's time back
            would hand that one's slot out twice).
        """
        return self._storage.cancel(reservation, self._clock())

    def __repr__(self) -> str:
        config = self._config
        return (
            f"RateLimiter(rate={config.rate!r}, per={config.per!r}, "
            f"burst={config.burst!r}, name={self._name!r})"
        )


# Limiters already warned about running on the real clock in virtual time.
_warned: weakref.WeakSet[RateLimiter] = weakref.WeakSet()
_warned_lock = ChildSafeLock()


def warn_of_two_clocks(limiter: RateLimiter, scheduler: abc.SchedulerBase) -> None:
    """Warn, once per limiter, when a pipeline's timers and the limiter keep
    different time: one on virtual time, the other on the real clock (either way)."""
    limiter_virtual = is_virtual(limiter.scheduler)
    if is_virtual(scheduler) == limiter_virtual:
        return
    with _warned_lock:
        if limiter in _warned:
            return
        _warned.add(limiter)
    if limiter_virtual:
        message = (
            f"rate limiter {limiter.name!r} keeps virtual time "
            f"({type(limiter.scheduler).__name__}), but this pipeline's timers "
            f"run on the real clock ({type(scheduler).__name__}): its waits are "
            f"measured in virtual seconds and timed in real ones; give the "
            f"pipeline the limiter's scheduler, or the limiter the real clock"
        )
    else:
        message = (
            f"rate limiter {limiter.name!r} keeps the real clock, but this pipeline "
            f"runs in virtual time ({type(scheduler).__name__}): its waits are "
            f"measured in real seconds and timed in virtual ones; give the limiter "
            f"the pipeline's scheduler"
        )
    warnings.warn(
        message,
        RuntimeWarning,
        stacklevel=3,
    )
