"""When and where the hedges of one subscription are due."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import TypeVar

from reactivex import abc

from ._backoff import Backoff, next_delay
from ._clock import choose_scheduler
from ._hedge_policy import HedgePolicy
from ._shared_timer import shared_timer

__all__ = ["HedgeTimer"]

_S = TypeVar("_S")


class HedgeTimer:
    """The waits before each hedge and the timers that count them down.

    The waits come from the policy: a constant, or a backoff whose k-th delay
    is the wait before hedge k, drawn lazily and only by the run's launch loop
    (so its iterator is never shared). The timers run on the scheduler chosen
    by ``choose_scheduler`` when the first one is armed. On a scheduler whose
    every timer is a thread (``TimeoutScheduler``, the default), they are
    deadlines on its shared timer: a subscription answered before its hedge
    is due then costs no thread. Elsewhere (virtual time, event loops) each is
    a timer of the scheduler's own.
    """

    __slots__ = (
        "_delay",
        "_delay_index",
        "_delays",
        "_own",
        "_policy",
        "_rng",
        "_scheduler",
        "_subscribed",
    )

    def __init__(
        self,
        policy: HedgePolicy,
        rng: random.Random,
        own: abc.SchedulerBase | None,
        subscribed: abc.SchedulerBase | None,
    ) -> None:
        self._policy = policy
        self._rng = rng
        self._own = own
        self._subscribed = subscribed
        self._scheduler: abc.SchedulerBase | None = None
        self._delays: Iterator[float] | None = None
        self._delay_index = 0
        self._delay = 0.0

    def wait_before(self, number: int) -> float:
        """Seconds from the start of attempt ``number`` to hedge ``number``."""
        delay = self._policy.delay
        if type(delay) is float:  # the policy keeps a constant as a float
            return delay
        assert isinstance(delay, Backoff)
        delays = self._delays
        if delays is None:
            delays = self._delays = delay.delays(self._rng)
        while self._delay_index < number:
            self._delay = next_delay(delays, delay)
            self._delay_index += 1
        return self._delay

    def arm(
        self, wait: float, action: abc.ScheduledAction[_S], state: _S
    ) -> abc.DisposableBase:
        """Run ``action(scheduler, state)`` in ``wait`` seconds; raises what a
        scheduler that refuses the timer raises."""
        scheduler = self._scheduler
        if scheduler is None:
            scheduler = self._scheduler = choose_scheduler(self._own, self._subscribed)
        shared = shared_timer(scheduler)
        if shared is not None:
            return shared.schedule_relative(wait, action, state)
        return scheduler.schedule_relative(wait, action, state)
