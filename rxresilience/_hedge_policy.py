"""``rxr.HedgePolicy``: the options of ``rxr.hedge`` as one frozen value."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from ._arguments import (
    ErrorPredicate,
    error_predicate,
    is_number,
    require_count,
    require_duration,
)
from ._backoff import Backoff
from ._clock import RESOLUTION
from ._seeded_random import SeededOnFirstUse
from .telemetry._registry import require_policy_name

__all__ = ["HedgeDelay", "HedgePolicy", "HedgePredicate"]

HedgeDelay: TypeAlias = float | Backoff
"""What ``delay=`` accepts: constant seconds, or a :class:`Backoff` policy whose
k-th delay is the wait before hedge k."""

HedgePredicate: TypeAlias = (
    Callable[[Exception], bool]
    | type[BaseException]
    | tuple[type[BaseException], ...]
    | None
)
"""What ``should_hedge=`` accepts: a predicate, exception type(s), or None (all)."""


#: Hedges a policy with ``delay=0`` may ask for at most: they all start at
#: once, each one more call in flight (Polly allows 10 hedged attempts).
MOST_HEDGES_AT_ONCE = 100


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """The options of :func:`hedge` as one frozen, reusable value.

    ``rxr.hedge(policy)`` and ``rxr.hedge(delay, max_hedges, should_hedge=...)``
    build the same operator. See :func:`hedge` for the meaning of every field.

    Examples:
        >>> policy = HedgePolicy(0.2, max_hedges=2)
        >>> policy.delay, policy.max_hedges
        (0.2, 2)
        >>> HedgePolicy(LinearBackoff(initial=1.0, step=1.0)).sample(3)
        [1.0, 2.0, 3.0]

    Attributes:
        delay: seconds to wait for an answer before each hedge (a duration:
            finite, at least 0, kept as a float; 0 starts every attempt at
            once), or a :class:`Backoff` policy: its k-th delay is the wait
            before hedge k, counted from the start of the attempt before it.
        max_hedges: how many extra subscriptions at most (an ``int`` >= 1,
            never a ``bool``; at most :data:`MOST_HEDGES_AT_ONCE` with
            ``delay=0``, which starts them all at once): ``1 + max_hedges``
            attempts in all.
        should_hedge: which errors start the next hedge: a predicate, an
            exception type, or a tuple of them; ``None`` hedges on every
            error. An error it rejects ends the hedge at once with that error.
        name: the policy's name on its telemetry events (``hedge.started``,
            ``hedge.won``); a non-empty string.
    """

    delay: HedgeDelay
    max_hedges: int = 1
    should_hedge: HedgePredicate = None
    name: str = "hedge"

    _should_hedge: ErrorPredicate | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_policy_name("name", self.name)
        delay = self.delay
        if not isinstance(delay, Backoff):
            if not is_number(delay):
                raise TypeError(
                    "delay must be a number of seconds or a Backoff policy, got "
                    f"{type(delay).__name__}"
                )
            object.__setattr__(self, "delay", require_duration("delay", delay))
        hedges = require_count(
            "max_hedges", self.max_hedges, why="the first attempt is not a hedge"
        )
        at_once = isinstance(self.delay, float) and self.delay < RESOLUTION
        if hedges > MOST_HEDGES_AT_ONCE and at_once:
            # Every hedge at one instant: as many calls in flight at once (a
            # source that never answers at once would be subscribed without end).
            raise ValueError(
                f"max_hedges must be <= {MOST_HEDGES_AT_ONCE} with a delay of 0 (below "
                f"a microsecond: every hedge starts at once), got {hedges!r}"
            )
        object.__setattr__(
            self,
            "_should_hedge",
            None
            if self.should_hedge is None
            else error_predicate("should_hedge", self.should_hedge),
        )

    @property
    def hedge_predicate(self) -> ErrorPredicate | None:
        """``should_hedge`` as a predicate (None hedges on every error)."""
        return self._should_hedge

    def delays(self, rng: random.Random) -> Iterator[float]:
        """The waits before hedge 1, 2, ..., in seconds: endless.

        Args:
            rng: where a jittered backoff draws from.
        """
        delay = self.delay
        if isinstance(delay, Backoff):
            return delay.delays(rng)
        return itertools.repeat(delay)

    def sample(self, count: int, rng: random.Random | None = None) -> list[float]:
        """The first ``count`` waits, for previews and plots."""
        return list(itertools.islice(self.delays(rng or SeededOnFirstUse()), count))
