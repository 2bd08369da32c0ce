"""Backoff policies: immutable values that describe the delays between attempts.

A policy never holds a random generator. Each retry episode asks the policy
for a fresh delay sequence with :meth:`Backoff.delays`, passing the generator
to draw jitter from, so a seeded ``random.Random`` gives the same delays on
every run and concurrent subscriptions never share a sequence.

Policies compose: ``policy.capped(10.0)`` bounds any policy's delays (the cap
applies after jitter), and ``policy + other`` (or ``policy + 0.5``) adds two
delay sequences attempt by attempt.

Every delay, cap and base is a duration: a finite number of seconds, at least
0, at most :data:`~rxresilience._clock.LONGEST_WAIT` (about 292 years, the
longest wait a timer can be armed for), kept as a float; anything else raises
``ValueError`` (``TypeError`` for a non-number or a ``bool``) naming the
argument. Delays are computed in floats and never overflow, whatever the
attempt number.
"""

from __future__ import annotations

import itertools
import math
import random
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

from ._arguments import (
    is_number,
    require_count,
    require_duration,
    require_finite,
    require_instance,
    require_unit_interval,
)
from ._clock import LONGEST_WAIT
from ._seeded_random import SeededOnFirstUse

__all__ = [
    "Backoff",
    "CappedBackoff",
    "ConstantBackoff",
    "DecorrelatedJitterBackoff",
    "EqualJitterBackoff",
    "ExponentialBackoff",
    "FullJitterBackoff",
    "LinearBackoff",
    "SumBackoff",
]


class Backoff(ABC):
    """Base class of backoff policies.

    Subclasses are frozen dataclasses. A policy's only job is
    :meth:`delays`: the sequence of delays, in seconds, before the 2nd, 3rd,
    ... attempt of one retry episode.
    """

    __slots__ = ()

    @abstractmethod
    def delays(self, rng: random.Random) -> Iterator[float]:
        """Return a fresh, endless iterator of delays in seconds.

        Args:
            rng: the generator to draw jitter from.

        Returns:
            The delay before the 2nd attempt, then before the 3rd, and so on.
        """

    def sample(self, count: int, rng: random.Random | None = None) -> list[float]:
        """Return the first ``count`` delays, for previews and plots.

        Examples:
            >>> ConstantBackoff(2.0).sample(3)
            [2.0, 2.0, 2.0]

        Raises:
            TypeError, ValueError: ``count`` not an int at least 0 (a ``bool``
                included).
        """
        require_count("count", count, minimum=0)
        return list(itertools.islice(self.delays(rng or SeededOnFirstUse()), count))

    def capped(self, max_delay: float) -> CappedBackoff:
        """Return this policy with every delay bounded by ``max_delay`` seconds."""
        return CappedBackoff(self, max_delay)

    def __add__(self, other: Backoff | float) -> SumBackoff:
        """Add two policies (or a policy and a constant) attempt by attempt."""
        if is_number(other):
            return SumBackoff(self, ConstantBackoff(other))
        if isinstance(other, Backoff):
            return SumBackoff(self, other)
        return NotImplemented

    def __radd__(self, other: float) -> SumBackoff:
        if is_number(other):
            return SumBackoff(ConstantBackoff(other), self)
        return NotImplemented


def next_delay(delays: Iterator[float], backoff: Backoff) -> float:
    """The next of ``backoff``'s delays, checked: a user's :class:`Backoff`
    that runs out, or gives what is not a number of seconds, fails here with
    an error naming it (never ``StopIteration``, which would end a generator
    or a loop it travels through)."""
    try:
        delay = next(delays)
    except StopIteration:
        raise ValueError(
            f"{type(backoff).__name__}.delays() ran out: a backoff's delays are endless"
        ) from None
    if not is_number(delay) or delay != delay:  # NaN too
        raise TypeError(
            f"{type(backoff).__name__}.delays() gave {delay!r}, not seconds"
        )
    if delay > LONGEST_WAIT:  # never float() of 10**400
        return math.inf
    return float(delay) if delay > 0 else 0.0


def _powers(base: float, factor: float, max_delay: float) -> Iterator[float]:
    """``base * factor ** (k - 1)`` for k = 1, 2, ..., in floats, held at
    ``max_delay`` once it gets there.

    Never overflows: once at the cap the sequence stops computing, and a
    ``factor ** exponent`` beyond the largest float (a tiny ``base``, or a huge
    ``factor``) continues by multiplying, which at worst gives ``inf``, past
    any cap.
    """
    raw = base
    if raw == 0.0 or factor == 1.0:
        yield from itertools.repeat(min(raw, max_delay))
        return
    exponent = 0
    while raw < max_delay:
        yield raw
        exponent += 1
        try:
            raw = base * factor**exponent
        except OverflowError:
            raw *= factor
    yield from itertools.repeat(max_delay)


def _durations(policy: Backoff, *names: str, positive: tuple[str, ...] = ()) -> None:
    """Check a frozen policy's duration fields and keep each as a float."""
    for name in names:
        seconds = require_duration(
            name, getattr(policy, name), positive=name in positive
        )
        object.__setattr__(policy, name, seconds)


@dataclass(frozen=True, slots=True)
class ConstantBackoff(Backoff):
    """The same delay before every retry.

    Examples:
        >>> ConstantBackoff(0.5).sample(3)
        [0.5, 0.5, 0.5]
    """

    delay: float = 1.0

    def __post_init__(self) -> None:
        _durations(self, "delay")

    def delays(self, rng: random.Random) -> Iterator[float]:
        return itertools.repeat(self.delay)


@dataclass(frozen=True, slots=True)
class LinearBackoff(Backoff):
    """``min(initial + step * (k - 1), max_delay)`` before attempt k + 1.

    Examples:
        >>> LinearBackoff(initial=1.0, step=2.0, max_delay=4.0).sample(4)
        [1.0, 3.0, 4.0, 4.0]
    """

    initial: float = 1.0
    step: float = 1.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        _durations(self, "initial", "step", "max_delay")

    def delays(self, rng: random.Random) -> Iterator[float]:
        initial, step, cap = self.initial, self.step, self.max_delay
        for k in itertools.count():
            delay = initial + step * k
            if delay >= cap:
                break
            yield delay
        yield from itertools.repeat(cap)


@dataclass(frozen=True, slots=True)
class ExponentialBackoff(Backoff):
    """Exponential backoff with proportional jitter, capped after the jitter.

    The delay before attempt k + 1 (k = 1, 2, ...) is::

        min(base * factor ** (k - 1) * (1 + U * jitter), max_delay)

    with ``U`` drawn uniformly from [0, 1) by the operator's ``rng``. The
    defaults give 1 s, 2 s, 4 s, ... each plus up to 30 %, never above 30 s.

    Examples:
        >>> ExponentialBackoff(base=1.0, factor=2.0, max_delay=5.0, jitter=0.0).sample(4)
        [1.0, 2.0, 4.0, 5.0]

    Args:
        base: the first delay, in seconds, before jitter: at least 0 (0 for
            no delay at all), at most ``LONGEST_WAIT``.
        factor: the growth per attempt: a finite ratio, at least 1.
        max_delay: the cap, applied after jitter: above 0, at least ``base``,
            at most ``LONGEST_WAIT``.
        jitter: the proportional jitter, within [0, 1]; 0 disables it.

    Raises:
        ValueError: a duration (``base``, ``max_delay``) that is not finite,
            is negative (``max_delay``: not above 0) or exceeds
            ``LONGEST_WAIT`` (about 292 years); ``max_delay < base``; a
            ``factor`` below 1 or not finite; ``jitter`` outside [0, 1].
        TypeError: an argument that is not a number (a ``bool`` included).
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.3

    def __post_init__(self) -> None:
        _check_exponential(self)
        object.__setattr__(self, "jitter", require_unit_interval("jitter", self.jitter))

    def delays(self, rng: random.Random) -> Iterator[float]:
        jitter, cap = self.jitter, self.max_delay
        for raw in _powers(self.base, self.factor, cap):
            if jitter:
                yield min(raw * (1 + rng.random() * jitter), cap)
            else:
                yield min(raw, cap)


@dataclass(frozen=True, slots=True)
class FullJitterBackoff(Backoff):
    """AWS "full jitter": ``U * min(max_delay, base * factor ** (k - 1))``.

    Spreads retries over the whole window, which drains contention fastest
    (AWS Architecture Blog, "Exponential Backoff And Jitter").

    Examples:
        >>> all(d < 1.0 for d in FullJitterBackoff(base=1.0).sample(1))
        True
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        _check_exponential(self)

    def delays(self, rng: random.Random) -> Iterator[float]:
        cap = self.max_delay
        for raw in _powers(self.base, self.factor, cap):
            yield rng.random() * min(raw, cap)


@dataclass(frozen=True, slots=True)
class EqualJitterBackoff(Backoff):
    """AWS "equal jitter": half the exponential delay, plus a random half.

    With ``t = min(max_delay, base * factor ** (k - 1))`` the delay is
    ``t / 2 + U * t / 2``.
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        _check_exponential(self)

    def delays(self, rng: random.Random) -> Iterator[float]:
        cap = self.max_delay
        for raw in _powers(self.base, self.factor, cap):
            half = min(raw, cap) / 2
            yield half + rng.random() * half


@dataclass(frozen=True, slots=True)
class DecorrelatedJitterBackoff(Backoff):
    """AWS "decorrelated jitter": each delay depends on the previous one.

    ``delay = min(max_delay, uniform(base, previous * multiplier))`` with
    ``previous`` starting at ``base``.

    Examples:
        >>> all(1.0 <= d <= 3.0 for d in DecorrelatedJitterBackoff().sample(1))
        True
    """

    base: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 3.0

    def __post_init__(self) -> None:
        _durations(self, "base", "max_delay")
        _require_cap_above_base(self.base, self.max_delay)
        multiplier = require_finite("multiplier", self.multiplier, minimum=1.0)
        object.__setattr__(self, "multiplier", multiplier)

    def delays(self, rng: random.Random) -> Iterator[float]:
        base, cap, multiplier = self.base, self.max_delay, self.multiplier
        largest = sys.float_info.max  # previous * multiplier may overflow to inf
        previous = base
        while True:
            high = min(previous * multiplier, largest)
            previous = min(cap, rng.uniform(base, high))
            yield previous


@dataclass(frozen=True, slots=True)
class CappedBackoff(Backoff):
    """Another policy's delays, each bounded by ``max_delay`` seconds.

    Examples:
        >>> ConstantBackoff(10.0).capped(3.0).sample(2)
        [3.0, 3.0]
    """

    policy: Backoff
    max_delay: float

    def __post_init__(self) -> None:
        require_instance("policy", self.policy, Backoff)
        _durations(self, "max_delay")

    def delays(self, rng: random.Random) -> Iterator[float]:
        cap = self.max_delay
        return (min(delay, cap) for delay in self.policy.delays(rng))


@dataclass(frozen=True, slots=True)
class SumBackoff(Backoff):
    """Two policies' delays added attempt by attempt (``first + second``).

    Examples:
        >>> (ConstantBackoff(1.0) + 0.5).sample(2)
        [1.5, 1.5]
    """

    first: Backoff
    second: Backoff

    def __post_init__(self) -> None:
        require_instance("first", self.first, Backoff)
        require_instance("second", self.second, Backoff)

    def delays(self, rng: random.Random) -> Iterator[float]:
        # Two delays from functions (see ``_backoff_argument``) may add up past
        # the largest float: hold the sum there, still "never" for a retry.
        largest = sys.float_info.max
        for first, second in zip(
            self.first.delays(rng), self.second.delays(rng), strict=True
        ):
            yield min(first + second, largest)


def _check_exponential(
    policy: ExponentialBackoff | FullJitterBackoff | EqualJitterBackoff,
) -> None:
    """``base`` and ``max_delay`` are durations (the cap above 0), ``factor`` a
    finite ratio >= 1; all kept as floats."""
    _durations(policy, "base")
    factor = require_finite("factor", policy.factor, minimum=1.0)
    object.__setattr__(policy, "factor", factor)
    _durations(policy, "max_delay", positive=("max_delay",))
    _require_cap_above_base(policy.base, policy.max_delay)


def _require_cap_above_base(base: float, max_delay: float) -> None:
    if max_delay < base:
        raise ValueError(
            f"max_delay must be >= base, got max_delay={max_delay!r} and base={base!r}"
        )
