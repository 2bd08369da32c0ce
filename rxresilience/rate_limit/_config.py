"""``RateLimiterConfig``: a rate limiter's settings, checked once, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._arguments import require_count, require_duration, require_positive
from .._clock import LONGEST_WAIT, RESOLUTION
from ._gcra import CLOCK_MAGNITUDE, spaced

__all__ = ["RateLimiterConfig"]


@dataclass(frozen=True, slots=True)
class RateLimiterConfig:
    """``rate`` permits every ``per`` seconds, ``burst`` of them at once from idle.

    The settings of a :class:`~rxresilience.RateLimiter` (GCRA, the generic
    cell rate algorithm, the token bucket written with one number): permits
    are spaced ``interval = per / rate`` seconds apart, and an idle limiter
    lends up to ``burst - 1`` of the coming intervals, its ``tolerance``.
    Over any window of ``w`` seconds it admits at most ``burst + w * rate /
    per`` permits. A storage is bound with it.

    Examples:
        >>> config = RateLimiterConfig(rate=100, per=1.0, burst=10)
        >>> config.interval, config.tolerance
        (0.01, 0.09)

    Args:
        rate: permits per ``per`` seconds, above 0 (a float is fine: 0.5).
        per: the period of ``rate``, in seconds, above 0.
        burst: permits available at once from idle, an int >= 1.

    Raises:
        TypeError: a value of the wrong type (``bool`` included, and a
            float ``burst``).
        ValueError: ``rate`` or ``per`` not above 0 or not finite; ``burst
            < 1``; an interval (``per / rate``) or a tolerance (``(burst - 1)
            * per / rate``) beyond ``LONGEST_WAIT`` (about 292 years), or an
            interval too small to be told apart from 0: at most
            ``RESOLUTION`` (a microsecond, within which a permit due is free
            now), or one that moves a clock reading 2**32 seconds (the epoch
            clock until 2106) by no more than that: the spacing must exceed
            about 1.43 us (some 700,000 permits a second).
    """

    rate: float
    per: float = 1.0
    burst: int = 1
    interval: float = field(init=False, repr=False, compare=False)
    tolerance: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rate = require_positive("rate", self.rate)
        per = require_duration("per", self.per, positive=True)
        burst = require_count("burst", self.burst)
        interval = per / rate
        if not 0.0 < interval <= LONGEST_WAIT:
            raise ValueError(
                f"rate must space permits (per / rate) between 0 and "
                f"{LONGEST_WAIT:g} seconds, got per={self.per!r}, rate={self.rate!r}"
            )
        if not spaced(interval):
            raise ValueError(
                f"rate and per must space permits (per / rate) more than "
                f"{RESOLUTION:g} seconds apart on a clock reading {CLOCK_MAGNITUDE:g} "
                f"seconds, got per={self.per!r}, rate={self.rate!r}"
            )
        # float(burst - 1) raises OverflowError for an int beyond any float.
        tolerance = float(burst - 1) * interval if burst < 2**53 else float("inf")
        if tolerance > LONGEST_WAIT:
            raise ValueError(
                f"burst must lend at most {LONGEST_WAIT:g} seconds of permits "
                f"((burst - 1) * per / rate), got burst={self.burst!r}"
            )
        object.__setattr__(self, "interval", interval)
        object.__setattr__(self, "tolerance", tolerance)
