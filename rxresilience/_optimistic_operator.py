"""``rxr.optimistic``: apply a stream of intents to an ``OptimisticState``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable
from reactivex import operators as ops

from ._arguments import require_bool, require_instance, require_observable_maker
from ._optimistic import OptimisticState

__all__ = ["optimistic"]

_T = TypeVar("_T")


def optimistic(
    state: OptimisticState[_T],
    *,
    commit: Callable[[_T], Any],
    confirm_with_result: bool = False,
) -> Callable[[Observable[Any]], Observable[bool]]:
    """Apply each intent (a value or a function) to ``state`` optimistically.

    ::

        intents:  --a-----b--------|
        result:   -------T----F----|     True when a commit succeeded, False
                                         when it failed and was rolled back

    Examples:
        >>> import reactivex as rx
        >>> name = OptimisticState("Ada")
        >>> rx.of("Grace").pipe(optimistic(name, commit=lambda v: rx.of(v))).run()
        True
        >>> name.value
        'Grace'

    Args:
        state: the optimistic state to update.
        commit: as for :meth:`OptimisticState.update`.
        confirm_with_result: as for :meth:`OptimisticState.update`.

    Returns:
        An operator emitting each update's outcome, in the order they settle.
    """
    require_instance("state", state, OptimisticState)
    require_observable_maker("commit", commit)
    require_bool("confirm_with_result", confirm_with_result)

    def one(intent: Any) -> Observable[bool]:
        return state.update(intent, commit, confirm_with_result=confirm_with_result)

    def apply(intents: Observable[Any]) -> Observable[bool]:
        outcomes: Observable[bool] = intents.pipe(ops.flat_map(one))
        return outcomes

    return apply
