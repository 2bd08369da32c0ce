"""``SagaStep``: one forward action and its compensation."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reactivex import Observable

from .._arguments import (
    require_bool,
    require_callable,
    require_instance,
    require_name,
    require_number,
)
from .._retry import RetryPolicy
from .._timeout import AttemptBudget, TimeoutPolicy, per_attempt

__all__ = ["SagaStep", "call_with_key", "check_budget"]


@dataclass(frozen=True, slots=True)
class SagaStep:
    """A step of a saga.

    ``execute(ctx)`` (or ``execute(ctx, key)``) returns an observable whose
    last value is the next context; ``compensate(ctx)`` (or
    ``compensate(ctx, key)``) returns an observable that completes once the
    step is undone. ``key`` is the stable idempotency key
    ``f"{saga_id}:{step}"`` (``f"{saga_id}:{step}:compensate"`` for the
    compensation), so participants can deduplicate across retries and
    recovery; a function receives it when declared with two required
    parameters. A function that can take neither (context) nor (context,
    key) is refused here, not when the saga runs.

    Args:
        name: unique within its saga.
        execute: the forward action.
        compensate: the undo; ``None`` for a step with nothing to undo.
        retry: a retry policy for ``execute``.
        timeout: a per-attempt budget for ``execute`` (inside ``retry``):
            seconds or a ``timedelta``, above 0 and at most ``LONGEST_WAIT``
            (about 292 years), as ``TimeoutPolicy(each=...)`` takes; or a
            ``TimeoutPolicy``. Seconds are kept as a float.
        compensation_retry: a retry policy for ``compensate``.
        compensate_on_failure: compensate this step even when it failed (or
            was cancelled), for steps that may have had partial effects; it
            then receives the context it was given.
        compensation_timeout: a per-attempt budget for ``compensate`` (inside
            ``compensation_retry``): seconds or a ``timedelta`` for the whole
            attempt, whatever it emits (``TimeoutPolicy(total=...)``), or a
            ``TimeoutPolicy`` as ``timeout`` takes; None: the saga's
            default (``Saga(compensation_timeout=)``, or
            ``recover(compensation_timeout=)`` when recovering). A
            compensation that runs out ends as ``CompensationFailed`` with
            :class:`~rxresilience.TimeoutError`.

    Raises:
        ValueError: an empty name, or a ``timeout`` or
            ``compensation_timeout`` out of range (not above 0, not finite,
            above ``LONGEST_WAIT``).
        TypeError: an argument of the wrong type (a ``bool`` or a
            ``datetime`` as a budget included), or a function with the wrong
            number of required parameters.
    """

    name: str
    execute: Callable[..., Observable[Any]]
    compensate: Callable[..., Observable[Any] | None] | None = None
    retry: RetryPolicy | None = None
    timeout: float | timedelta | TimeoutPolicy | None = None
    compensation_retry: RetryPolicy | None = None
    compensate_on_failure: bool = False
    compensation_timeout: float | timedelta | TimeoutPolicy | None = None

    _execute_takes_key: bool = field(init=False, repr=False, compare=False)
    _compensate_takes_key: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require_name("name", self.name)
        require_callable("execute", self.execute)
        object.__setattr__(self, "_execute_takes_key", _arity("execute", self.execute))
        takes_key = False
        if self.compensate is not None:
            require_callable("compensate", self.compensate)
            takes_key = _arity("compensate", self.compensate)
        object.__setattr__(self, "_compensate_takes_key", takes_key)
        for field_name in ("retry", "compensation_retry"):
            value = getattr(self, field_name)
            if value is not None:
                require_instance(field_name, value, RetryPolicy)
        for field_name in ("timeout", "compensation_timeout"):
            budget = check_budget(field_name, getattr(self, field_name))
            object.__setattr__(self, field_name, budget)
        require_bool("compensate_on_failure", self.compensate_on_failure)

    def execution(self, context: Any, key: str) -> Any:
        """``execute`` called as it is declared: with the context, and the key."""
        if self._execute_takes_key:
            return self.execute(context, key)
        return self.execute(context)

    def compensation(self, context: Any, key: str) -> Any:
        """``compensate`` called as it is declared (the step must have one)."""
        assert self.compensate is not None
        if self._compensate_takes_key:
            return self.compensate(context, key)
        return self.compensate(context)


def check_budget(name: str, budget: object) -> AttemptBudget | None:
    """A budget a ``timeout`` operator will take, refused now rather than when
    the saga runs; seconds come back as a float."""
    if budget is None:
        return None
    per_attempt(name, budget)
    if isinstance(budget, timedelta | TimeoutPolicy):
        return budget
    return require_number(name, budget)  # a number, checked: as a float


def _arity(name: str, function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes (context, key); raise if it takes neither that
    nor (context)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return False  # a builtin that does not say: trusted with the context
    takes_key = _takes_key(function)
    arguments = (None, "key") if takes_key else (None,)
    try:
        signature.bind(*arguments)
    except TypeError:
        raise TypeError(
            f"{name} must take the context, or the context and the idempotency "
            f"key, got {getattr(function, '__qualname__', function)!r} taking "
            f"{signature}"
        ) from None
    return takes_key


def _takes_key(function: Callable[..., Any]) -> bool:
    """Whether ``function`` is declared with two required parameters (context, key).

    Parameters with defaults do not count, so the closure idiom
    ``lambda ctx, i=i: ...`` still takes only the context.
    """
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
    ]
    return len(required) >= 2


def call_with_key(function: Callable[..., Any], context: Any, key: str) -> Any:
    """``function(context, key)`` or ``function(context)``, by its declaration."""
    if _takes_key(function):
        return function(context, key)
    return function(context)
