"""GCRA, the arithmetic alone: one theoretical arrival time, no clock, no lock.

The generic cell rate algorithm keeps one number, the theoretical arrival
time (TAT): when the next permit would be due if permits were taken exactly
``interval`` apart. A request at ``now`` starts from ``max(TAT, now)`` (an
idle limiter does not bank permits beyond its burst); its permit is free at
that instant less the ``tolerance`` (``(burst - 1) * interval``), and taking
it moves the TAT one ``interval`` on. So from idle ``burst`` permits are free
at once, and after that one every ``interval``.

``redis_gcra.lua`` does the same sums, in the same order, on the same
doubles: the differential test holds the two to equal answers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .._clock import RESOLUTION

__all__ = ["CLOCK_MAGNITUDE", "Gcra", "RateLimiterReservation", "spaced", "wait_at"]

#: The magnitude of the times GCRA's sums are made on: the real (epoch) clock
#: reads below 2**32 seconds until the year 2106, in steps of 2**-20 s (0.95 us).
CLOCK_MAGNITUDE = 2.0**32


def spaced(interval: float) -> bool:
    """Whether permits ``interval`` apart stay apart: one interval must move a
    TAT of :data:`CLOCK_MAGNITUDE` by more than
    :data:`~rxresilience._clock.RESOLUTION` (a permit due within it is free
    now), else a burst of permits is free at one instant, or the TAT never
    moves at all. Python and ``redis_gcra.lua`` run the same sums, so one
    refusal at construction holds for both."""
    return (
        interval > RESOLUTION
        and (CLOCK_MAGNITUDE + interval) - CLOCK_MAGNITUDE > RESOLUTION
    )


class RateLimiterReservation(NamedTuple):
    """One permit taken from a rate limiter, usable ``wait`` seconds after it was asked for.

    What a :class:`~rxresilience.RateLimiterStorage` hands out. ``tat`` is
    the limiter's theoretical arrival time this reservation set, and
    ``previous`` the one it started from: giving the permit back is a
    compare-and-set, ``TAT == tat`` becomes ``TAT = previous``, so a permit
    is given back only while no later one was taken.

    Attributes:
        wait: seconds from the request until the permit is free (0: at once).
        previous: the TAT the reservation started from.
        tat: the TAT it set.
    """

    wait: float
    previous: float
    tat: float


def wait_at(tat: float, now: float, tolerance: float) -> float:
    """Seconds from ``now`` until the next permit is free; 0 if it is free now.

    A permit due within :data:`~rxresilience._clock.RESOLUTION` (a
    microsecond, the finest step a scheduler's timer resolves) is free now.
    """
    wait = (tat if tat > now else now) - tolerance - now
    return wait if wait > RESOLUTION else 0.0


class Gcra:
    """The state of one limiter, for a caller that holds the lock around it."""

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(
        self, interval: float, tolerance: float, tat: float = -math.inf
    ) -> None:
        self.interval = interval
        self.tolerance = tolerance
        self.tat = tat  # -inf: no permit was ever taken, idle at any time

    def reserve(self, now: float, max_wait: float) -> RateLimiterReservation | float:
        """Take the next permit if it is free within ``max_wait`` seconds.

        Returns the reservation, or (nothing taken) the seconds until a
        permit is free.
        """
        start = self.tat if self.tat > now else now
        wait = start - self.tolerance - now
        if wait <= RESOLUTION:
            wait = 0.0
        elif wait > max_wait:
            return wait
        tat = self.tat = start + self.interval
        return RateLimiterReservation(wait, start, tat)

    def cancel(self, reservation: RateLimiterReservation) -> bool:
        """Give ``reservation`` back if it is still the latest; True if it was."""
        if self.tat != reservation.tat:
            return False
        self.tat = reservation.previous
        return True

    def time_to_permit(self, now: float) -> float:
        """Seconds until a permit is free, taking nothing."""
        return wait_at(self.tat, now, self.tolerance)
