"""What ``rxr.retry(backoff=...)`` accepts, as a policy: a :class:`Backoff`, a
number of seconds (a constant delay), a ``function(attempt) -> seconds``, or
``None`` (no delay)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ._arguments import is_number, require_duration, require_finite
from ._backoff import Backoff, ConstantBackoff
from ._clock import LONGEST_WAIT

__all__ = ["FunctionBackoff", "to_backoff"]


def to_backoff(
    value: Backoff | float | Callable[[int], float] | None,
) -> Backoff | None:
    """Normalise what ``rxr.retry(backoff=...)`` accepts to a policy or ``None``.

    A number is a constant delay (a duration: finite, at least 0, at most
    ``LONGEST_WAIT``); a callable is ``function(attempt) -> seconds``.
    """
    if value is None or isinstance(value, Backoff):
        return value
    if is_number(value):
        return ConstantBackoff(require_duration("backoff", value))
    if callable(value):
        return FunctionBackoff(value)
    raise TypeError(
        "backoff must be a Backoff policy, a number of seconds, a function of the "
        f"attempt number, or None, got {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True)
class FunctionBackoff(Backoff):
    """A plain ``function(attempt) -> seconds`` used as a policy.

    ``attempt`` is the number of the attempt that just failed (1 for the
    first). A result that is not a number, NaN or negative fails the stream
    with ``TypeError``/``ValueError``; one too large for any timer (infinity
    included) means "never", and ``rxr.retry`` gives up with the attempt's
    error.
    """

    function: Callable[[int], float]

    def delays(self, rng: random.Random) -> Iterator[float]:
        for attempt in itertools.count(1):
            yield function_delay(self.function(attempt))


def function_delay(value: object) -> float:
    """A function backoff's answer as seconds: ``inf`` for "never"."""
    if is_number(value) and value > LONGEST_WAIT:  # an int beyond any float too
        return math.inf
    return require_finite("backoff(attempt)", value)
