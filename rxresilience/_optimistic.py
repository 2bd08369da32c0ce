"""``rxr.OptimisticState``: apply at once, roll back on failure, never clobber newer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import reactivex as rx
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import AsyncSubject

from ._arguments import require_scheduler
from ._broadcast import Broadcast
from .errors import OptimisticStateDisposedError

__all__ = ["OptimisticState", "optimistic"]

_T = TypeVar("_T")
_NOTHING: Any = object()


class _Layer:
    """One pending update over the confirmed value."""

    __slots__ = ("change", "id", "is_function", "superseded")

    def __init__(self, layer_id: int, change: Any, is_function: bool) -> None:
        self.id = layer_id
        self.change = change
        self.is_function = is_function
        self.superseded = False

    def apply(self, value: Any) -> Any:
        return self.change(value) if self.is_function else self.change


class _Latest(Observable[_T], Generic[_T]):
    """A hot stream that replays its current value to each new subscriber."""

    def __init__(self, value: _T, lock: threading.RLock) -> None:
        super().__init__()
        self._value = value
        self._lock = lock
        self._broadcast: Broadcast[_T] = Broadcast()
        self._completed = False

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        with self._lock:
            observer.on_next(self._value)
            if self._completed:
                observer.on_completed()
                return Disposable()
            return self._broadcast.subscribe(observer)

    def set(self, value: _T, *, always: bool = False) -> None:
        """Called under the lock: emit ``value`` if it differs (or ``always``)."""
        if not always and _same(self._value, value):
            return
        self._value = value
        self._broadcast.emit(value)

    def complete(self) -> None:
        self._completed = True
        self._broadcast.complete()


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


class OptimisticState(Observable[_T], Generic[_T]):
    """A reactive value updated at once and rolled back if its commit fails.

    The displayed value is the confirmed base with every pending update
    applied in the order the updates were made. An update is a *function*
    (a change, like ``lambda n: n + 1``) or a plain *value* (a whole new
    value):

    - a function's commit receives the displayed value right after the
      change; on success the function is applied to the confirmed base; on
      failure its layer is removed and the layers above are re-applied. So
      with A = +1 (fails late) and B = +10 (succeeds early) on 0, the display
      ends at 10: an older failure never clobbers a newer success.
    - a value's commit receives exactly that value; on success it becomes the
      confirmed base and supersedes every older pending update (their layers
      leave the display; their later outcomes change nothing shown, though
      failures are still reported on :attr:`errors`).

    Subscribing replays the displayed value, then every change; a subscriber
    never sees a value that mixes half an update. Observers run under the
    state's lock, so keep them quick and never block in them on another
    thread that updates the same state.

    Examples:
        >>> import reactivex as rx
        >>> counter = OptimisticState(0)
        >>> shown = []
        >>> _ = counter.subscribe(shown.append)
        >>> _ = counter.update(lambda n: n + 1, commit=lambda n: rx.throw(IOError("down")))
        >>> shown
        [0, 1, 0]

    Args:
        initial: the confirmed value to start from.
        scheduler: passed to every commit's subscription.
    """

    def __init__(
        self, initial: _T, *, scheduler: abc.SchedulerBase | None = None
    ) -> None:
        super().__init__()
        require_scheduler("scheduler", scheduler)
        self._lock = threading.RLock()
        self._scheduler = scheduler
        self._confirmed: _T = initial
        self._layers: list[_Layer] = []
        self._ids = itertools.count()
        self._settled = 0  # how many updates have settled (for refresh)
        self._disposed = False
        self._display: _Latest[_T] = _Latest(initial, self._lock)
        self._updating: _Latest[bool] = _Latest(False, self._lock)
        self._errors: Broadcast[Exception] = Broadcast()

    # -- reading -------------------------------------------------------------------------

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[_T],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        return self._display.subscribe(observer)

    @property
    def value(self) -> _T:
        """The displayed value."""
        with self._lock:
            return self._display._value

    @property
    def confirmed(self) -> _T:
        """The last value the server confirmed."""
        with self._lock:
            return self._confirmed

    @property
    def is_updating(self) -> Observable[bool]:
        """True while any update is pending (replays the current answer)."""
        return self._updating

    @property
    def errors(self) -> Observable[Exception]:
        """The error of every failed commit or refresh (hot, no replay)."""
        return self._errors

    # -- changing --------------------------------------------------------------------------

    def update(
        self,
        value_or_function: _T | Callable[[_T], _T],
        commit: Callable[[_T], Any],
        *,
        confirm_with_result: bool = False,
    ) -> Observable[bool]:
        """Show the change at once and commit it.

        The update happens whether or not anyone subscribes to the result
        (it is hot from this call). The result emits ``True`` and completes
        when the commit succeeds, or emits ``False`` and completes after the
        rollback when it fails (the error goes to :attr:`errors`).

        Args:
            value_or_function: a new value, or a function of the value below.
            commit: ``commit(new_value)`` returning an observable (or a
                future) that completes when the server accepted the change.
            confirm_with_result: the commit's last value is the server's
                value, which becomes the confirmed value for this layer.

        Raises:
            TypeError: ``commit`` is not callable.
            OptimisticStateDisposedError: the state was disposed.
        """
        if not callable(commit):
            raise TypeError(f"commit must be callable, got {type(commit).__name__}")
        outcome: AsyncSubject[bool] = AsyncSubject()
        with self._lock:
            if self._disposed:
                raise OptimisticStateDisposedError("the optimistic state was disposed")
            layer = _Layer(
                next(self._ids), value_or_function, callable(value_or_function)
            )
            self._layers.append(layer)
            try:
                shown = self._recompute()
            except Exception as error:  # the change itself raised: nothing applied
                self._layers.remove(layer)
                self._recompute()
                self._errors.emit(error)
                return rx.of(False)
            self._updating.set(True)
        try:
            started = commit(shown)
            source = _as_observable(started)
        except Exception as error:
            self._settle(layer, error, _NOTHING, outcome, confirm_with_result)
            return outcome
        last: list[Any] = [_NOTHING]

        def on_next(value: Any) -> None:
            last[0] = value

        def on_error(error: Exception) -> None:
            self._settle(layer, error, _NOTHING, outcome, confirm_with_result)

        def on_completed() -> None:
            self._settle(layer, None, last[0], outcome, confirm_with_result)

        source.subscribe(on_next, on_error, on_completed, scheduler=self._scheduler)
        return outcome

    def _settle(
        self,
        layer: _Layer,
        error: Exception | None,
        result: Any,
        outcome: AsyncSubject[bool],
        confirm_with_result: bool,
    ) -> None:
        if error is None and confirm_with_result and result is _NOTHING:
            error = ValueError(
                "confirm_with_result=True, but the commit completed without a value"
            )
        with self._lock:
            self._settled += 1
            if layer in self._layers:
                self._layers.remove(layer)
                if error is None and not layer.superseded and not self._disposed:
                    self._confirm(layer, result, confirm_with_result)
            if not self._disposed:
                try:
                    self._recompute()
                except Exception as failure:  # a layer's function raised on re-apply
                    self._errors.emit(failure)
                if error is not None:
                    self._errors.emit(error)
                self._updating.set(bool(self._layers))
        outcome.on_next(error is None)
        outcome.on_completed()

    def _confirm(self, layer: _Layer, result: Any, confirm_with_result: bool) -> None:
        """Called under the lock: fold a succeeded layer into the confirmed base."""
        if confirm_with_result:
            self._confirmed = result
        else:
            self._confirmed = layer.apply(self._confirmed)
        if not layer.is_function:
            # A whole new value supersedes every older pending update.
            older = [pending for pending in self._layers if pending.id < layer.id]
            for pending in older:
                pending.superseded = True
                self._layers.remove(pending)

    def _recompute(self) -> _T:
        """Called under the lock: fold the layers over the base and show the result."""
        value = self._confirmed
        for layer in self._layers:
            value = layer.apply(value)
        self._display.set(value)
        return value

    def set_confirmed(self, value: _T) -> None:
        """A fresh value from the server: the new base, pending layers re-applied."""
        with self._lock:
            if self._disposed:
                raise OptimisticStateDisposedError("the optimistic state was disposed")
            self._confirmed = value
            self._recompute()

    def refresh(self, fetch: Callable[[], Any]) -> Observable[bool]:
        """Fetch the server's value and make it the base, unless it is stale.

        A fetch that started before the latest update settled is discarded
        (SWR's rule), so a stale read never overwrites a newer change. The
        result emits ``True`` when the value was applied, ``False`` when it
        was discarded or the fetch failed (its error goes to :attr:`errors`).
        """
        if not callable(fetch):
            raise TypeError(f"fetch must be callable, got {type(fetch).__name__}")
        outcome: AsyncSubject[bool] = AsyncSubject()
        with self._lock:
            if self._disposed:
                raise OptimisticStateDisposedError("the optimistic state was disposed")
            settled_at_start = self._settled
        last: list[Any] = [_NOTHING]

        def finish(applied: bool, error: Exception | None = None) -> None:
            if error is not None:
                with self._lock:
                    self._errors.emit(error)
            outcome.on_next(applied)
            outcome.on_completed()

        def on_completed() -> None:
            with self._lock:
                fresh = (
                    last[0] is not _NOTHING
                    and self._settled == settled_at_start
                    and not self._disposed
                )
                if fresh:
                    self._confirmed = last[0]
                    self._recompute()
            finish(fresh)

        try:
            source = _as_observable(fetch())
        except Exception as error:
            finish(False, error)
            return outcome
        source.subscribe(
            lambda value: last.__setitem__(0, value),
            lambda error: finish(False, error),
            on_completed,
            scheduler=self._scheduler,
        )
        return outcome

    def dispose(self) -> None:
        """Complete the streams; later updates raise."""
        with self._lock:
            if self._disposed:
                return
            self._disposed = True
            self._display.complete()
            self._updating.complete()
            self._errors.complete()

    def __repr__(self) -> str:
        return f"OptimisticState(value={self.value!r}, pending={len(self._layers)})"


def _as_observable(started: Any) -> Observable[Any]:
    if isinstance(started, Observable):
        return started
    if isinstance(started, asyncio.Future | concurrent.futures.Future):
        return rx.from_future(started)
    raise TypeError(
        f"commit must return an Observable or a future, got {type(started).__name__}"
    )


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
    if not isinstance(state, OptimisticState):
        raise TypeError(f"state must be an OptimisticState, got {type(state).__name__}")
    if not callable(commit):
        raise TypeError(f"commit must be callable, got {type(commit).__name__}")

    def one(intent: Any) -> Observable[bool]:
        return state.update(intent, commit, confirm_with_result=confirm_with_result)

    def apply(intents: Observable[Any]) -> Observable[bool]:
        outcomes: Observable[bool] = intents.pipe(ops.flat_map(one))
        return outcomes

    return apply
