"""The validation of a circuit breaker's settings, naming the argument at fault."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

from reactivex import abc

from .._arguments import (
    ErrorPredicate,
    error_predicate,
    require_bool,
    require_callable,
    require_count,
    require_duration,
    require_instance,
    require_name,
    require_positive,
    require_scheduler,
)
from ._storage import BreakerStorage, InMemoryBreakerStorage
from ._types import BreakerConfig
from ._window import CountWindow, TimeWindow

__all__ = ["BreakerArguments", "check_arguments", "make_config"]


class BreakerArguments(NamedTuple):
    """A ``CircuitBreaker``'s arguments, checked (and defaulted)."""

    config: BreakerConfig
    record: ErrorPredicate
    ignore: ErrorPredicate | None
    storage: BreakerStorage


def check_arguments(
    *,
    failure_threshold: int | None,
    reset_timeout: float,
    half_open_max_calls: int,
    window: CountWindow | TimeWindow | None,
    failure_rate_threshold: float | None,
    slow_call_duration: float | None,
    slow_call_rate_threshold: float | None,
    minimum_calls: int | None,
    record: Any,
    ignore: Any,
    failure_if: Callable[[Any], bool] | None,
    max_half_open_wait: float | None,
    auto_half_open: bool,
    scheduler: abc.SchedulerBase | None,
    storage: BreakerStorage | None,
    name: str,
) -> BreakerArguments:
    """Check every argument of ``CircuitBreaker``, in order, naming the one at fault."""
    config = make_config(
        failure_threshold=failure_threshold,
        reset_timeout=reset_timeout,
        half_open_max_calls=half_open_max_calls,
        window=window,
        failure_rate_threshold=failure_rate_threshold,
        slow_call_duration=slow_call_duration,
        slow_call_rate_threshold=slow_call_rate_threshold,
        minimum_calls=minimum_calls,
    )
    record_predicate = error_predicate("record", record)
    ignore_predicate = None if ignore is None else error_predicate("ignore", ignore)
    if failure_if is not None:
        require_callable("failure_if", failure_if)
    if max_half_open_wait is not None:
        config = dataclasses.replace(
            config,
            max_half_open_wait=require_duration(
                "max_half_open_wait", max_half_open_wait, positive=True
            ),
        )
    require_bool("auto_half_open", auto_half_open)
    require_scheduler("scheduler", scheduler)
    if storage is None:
        storage = InMemoryBreakerStorage()
    else:
        require_instance("storage", storage, BreakerStorage)
    require_name("name", name)  # what every exporter and store can write
    return BreakerArguments(config, record_predicate, ignore_predicate, storage)


_DEFAULT_TIME_WINDOW_MINIMUM = 10


def make_config(
    *,
    failure_threshold: int | None,
    reset_timeout: float,
    half_open_max_calls: int,
    window: CountWindow | TimeWindow | None,
    failure_rate_threshold: float | None,
    slow_call_duration: float | None,
    slow_call_rate_threshold: float | None,
    minimum_calls: int | None,
) -> BreakerConfig:
    """Validate the breaker's settings, naming the argument at fault."""
    if failure_threshold is not None:
        require_count("failure_threshold", failure_threshold, or_none=True)
    timeout = require_duration("reset_timeout", reset_timeout, positive=True)
    require_count("half_open_max_calls", half_open_max_calls)
    if window is not None and not isinstance(window, CountWindow | TimeWindow):
        raise TypeError(
            f"window must be a CountWindow or a TimeWindow, got {type(window).__name__}"
        )
    for name, rate in (
        ("failure_rate_threshold", failure_rate_threshold),
        ("slow_call_rate_threshold", slow_call_rate_threshold),
    ):
        if rate is not None and require_positive(name, rate) > 1.0:  # (0, 1]
            raise ValueError(f"{name} must be within (0, 1], got {rate!r}")
    if slow_call_duration is not None:
        slow_call_duration = require_duration(
            "slow_call_duration", slow_call_duration, positive=True
        )
    if (slow_call_duration is None) != (slow_call_rate_threshold is None):
        raise ValueError(
            "slow_call_duration and slow_call_rate_threshold go together: "
            "give both or neither"
        )
    has_rate = (
        failure_rate_threshold is not None or slow_call_rate_threshold is not None
    )
    if window is not None and not has_rate:
        raise ValueError(
            "window needs failure_rate_threshold or slow_call_rate_threshold"
        )
    if window is None and has_rate:
        raise ValueError(
            "failure_rate_threshold and slow_call_rate_threshold need a window "
            "(rxr.CountWindow or rxr.TimeWindow)"
        )
    if failure_threshold is None and not has_rate:
        raise ValueError(
            "failure_threshold=None leaves no rule that could open the breaker: "
            "give a window with a rate threshold"
        )
    if minimum_calls is not None:
        require_count("minimum_calls", minimum_calls, or_none=True)
        if isinstance(window, CountWindow) and minimum_calls > window.size:
            raise ValueError(
                f"minimum_calls must be <= the window's size {window.size}, "
                f"got {minimum_calls!r}"
            )
        minimum = minimum_calls
    elif isinstance(window, CountWindow):
        minimum = window.size
    else:
        minimum = _DEFAULT_TIME_WINDOW_MINIMUM
    return BreakerConfig(
        failure_threshold=failure_threshold,
        reset_timeout=timeout,
        half_open_max_calls=half_open_max_calls,
        window=window,
        failure_rate_threshold=failure_rate_threshold,
        slow_call_duration=slow_call_duration,
        slow_call_rate_threshold=slow_call_rate_threshold,
        minimum_calls=minimum,
    )
