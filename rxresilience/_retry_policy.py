"""``rxr.RetryPolicy``: the options of ``rxr.retry`` as one frozen value, and the
``RetryEvent`` that ``on_retry`` receives."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias

from reactivex import abc
from typing_extensions import TypedDict

from ._arguments import (
    ErrorPredicate,
    error_predicate,
    require_bool,
    require_callable,
    require_count,
    require_duration,
    require_instance,
    require_scheduler,
)
from ._backoff import Backoff, ExponentialBackoff
from ._backoff_argument import to_backoff
from .telemetry._registry import require_policy_name

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_REFUSAL_WAIT",
    "OPTION_DEFAULTS",
    "BackoffLike",
    "RetryEvent",
    "RetryOptions",
    "RetryPlacement",
    "RetryPolicy",
    "RetryPredicate",
]

BackoffLike: TypeAlias = Backoff | float | Callable[[int], float] | None
"""What ``backoff=`` accepts: a policy, constant seconds, ``f(attempt)``, or None."""

RetryPredicate: TypeAlias = (
    Callable[[Exception], bool]
    | type[BaseException]
    | tuple[type[BaseException], ...]
    | None
)
"""What ``should_retry=`` accepts: a predicate, exception type(s), or None (all)."""

DEFAULT_BACKOFF = ExponentialBackoff()
DEFAULT_MAX_REFUSAL_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """What ``on_retry`` receives each time a retry is scheduled.

    Attributes:
        attempt: the number of the attempt that just failed (1 for the first);
            for a refusal, the number of the attempt that was refused and will
            be made again.
        delay: seconds until the next attempt starts (0 means at once).
        error: the exception that attempt failed with.
        refused: True when ``error`` is a :class:`~rxresilience.CallRefusedError`
            (nothing was called; the wait does not use up an attempt).
    """

    attempt: int
    delay: float
    error: Exception
    refused: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The options of :func:`retry` as one frozen, reusable value.

    ``rxr.retry(policy)`` and ``rxr.retry(max_attempts=..., ...)`` build the
    same operator. See :func:`retry` for the meaning of every field.

    Examples:
        >>> policy = RetryPolicy(max_attempts=5, backoff=ConstantBackoff(0.1))
        >>> policy.max_attempts
        5
    """

    max_attempts: int | None = 3
    backoff: BackoffLike = DEFAULT_BACKOFF
    should_retry: RetryPredicate = None
    max_elapsed: float | None = None
    reset_on_success: bool = False
    rng: random.Random | None = None
    scheduler: abc.SchedulerBase | None = None
    on_retry: Callable[[RetryEvent], None] | None = None
    retry_if_result: Callable[[Any], bool] | None = None
    max_refusal_wait: float = DEFAULT_MAX_REFUSAL_WAIT
    name: str = "retry"

    _backoff_policy: Backoff | None = field(init=False, repr=False, compare=False)
    _should_retry: ErrorPredicate | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts is not None:
            require_count(
                "max_attempts",
                self.max_attempts,
                or_none=True,
                why="the first attempt counts",
            )
        object.__setattr__(self, "_backoff_policy", to_backoff(self.backoff))
        object.__setattr__(
            self,
            "_should_retry",
            None
            if self.should_retry is None
            else error_predicate("should_retry", self.should_retry),
        )
        if self.max_elapsed is not None:
            require_duration("max_elapsed", self.max_elapsed, positive=True)
        require_duration("max_refusal_wait", self.max_refusal_wait)
        require_bool("reset_on_success", self.reset_on_success)
        if self.rng is not None:
            require_instance("rng", self.rng, random.Random, "a random.Random")
        require_scheduler("scheduler", self.scheduler)
        if self.on_retry is not None:
            require_callable("on_retry", self.on_retry)
        if self.retry_if_result is not None:
            require_callable("retry_if_result", self.retry_if_result)
        require_policy_name("name", self.name)

    @property
    def backoff_policy(self) -> Backoff | None:
        """``backoff`` as a :class:`Backoff` policy (None for no delay)."""
        return self._backoff_policy

    @property
    def retry_predicate(self) -> ErrorPredicate | None:
        """``should_retry`` as a predicate (None retries every error)."""
        return self._should_retry


# The keyword options of ``rxr.retry``, typed for ``**options: Unpack[...]``.
# RetryPolicy's fields are the one source of their defaults and checks; these
# two mirror the fields' types for mypy (tests/test_retry_policy.py keeps
# them in step), so a misspelt keyword is an error in the caller's code.


class RetryPlacement(TypedDict, total=False):
    """What ``rxr.retry(policy, ...)`` may add to a prebuilt policy: where its
    delays run and where their jitter comes from (None keeps the policy's)."""

    rng: random.Random | None
    scheduler: abc.SchedulerBase | None


class RetryOptions(RetryPlacement, total=False):
    """Every :class:`RetryPolicy` field but ``max_attempts``, as keywords of
    ``rxr.retry``; see :func:`~rxresilience.retry` for their meaning."""

    backoff: BackoffLike
    should_retry: RetryPredicate
    max_elapsed: float | None
    reset_on_success: bool
    on_retry: Callable[[RetryEvent], None] | None
    retry_if_result: Callable[[Any], bool] | None
    max_refusal_wait: float
    name: str


#: Every keyword option's default, from the policy's own fields.
OPTION_DEFAULTS: dict[str, object] = {
    option.name: option.default
    for option in fields(RetryPolicy)
    if option.init and option.name != "max_attempts"
}
