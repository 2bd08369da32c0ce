"""``rxr.OptimisticState``: apply at once, roll back on failure, never clobber newer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import reactivex as rx
from reactivex import Observable, abc

from ._arguments import (
    close_coroutine,
    require_bool,
    require_observable_maker,
    require_scheduler,
)
from ._broadcast import Broadcast
from ._latest import Latest, Outcome
from ._optimistic_layers import Layer, LayerStack
from .errors import OptimisticApplyError, OptimisticStateDisposedError

__all__ = ["OptimisticState"]

_T = TypeVar("_T")
_NOTHING: Any = object()


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

    When a function raises:

    - at once, in :meth:`update`: the update is refused (nothing shown, the
      commit is never called, its result emits ``False``, the error goes to
      :attr:`errors`).
    - later, when the display is recomputed on a new base (a settled update,
      :meth:`set_confirmed`, :meth:`refresh`, a server's answer): the layer
      is left out of the display but stays pending; its error goes to
      :attr:`errors` once, when it starts failing.
    - when its commit succeeded and it is folded into the confirmed value:
      the server accepted it, so its result still emits ``True``; its layer
      is dropped, the confirmed value is left as it was, and
      :class:`~rxresilience.OptimisticApplyError` goes to :attr:`errors`: the
      confirmed value may now differ from the server's, call :meth:`refresh`.

    A subscriber that raises owns its exception; it is never taken for the
    commit's failure. When a value is pushed to the subscribers present (a
    change of the display or of :attr:`is_updating`, an error, the result of
    an update or refresh as its commit or fetch ends), a subscriber whose
    ``on_next`` raises is detached and receives its own exception as
    ``on_error`` (logged on the ``"rxresilience"`` logger if that raises too,
    as it does without an ``on_error``). The commit, the state, and the
    other subscribers carry on; nothing is rolled back or reported on
    :attr:`errors`. When a value is replayed to a subscriber as it
    subscribes, on its own call, RxPY's rule applies: the exception goes to
    its ``on_error``, or raises from its ``subscribe`` if it has none.

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
        self._errors: Broadcast[Exception] = Broadcast()
        self._stack = LayerStack(initial, self._errors.emit)
        # For refresh (SWR's rule): changes of the base since a fetch began,
        # commits in flight (superseded ones too), the newest fetch begun.
        self._base_changes = 0
        self._in_flight = 0
        self._fetches = 0
        self._disposed = False
        self._display: Latest[_T] = Latest(initial, self._lock)
        self._updating: Latest[bool] = Latest(False, self._lock)

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
            confirmed: _T = self._stack.confirmed
            return confirmed

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

        ``commit`` receives the displayed value right after the change: the
        confirmed value with every pending update applied, the older ones
        included though the server has not accepted them yet, then this
        change. With ``["apple"]`` confirmed and "add pear" pending, "add fig"
        commits ``["apple", "pear", "fig"]`` (see the example below).

        So a commit that sends that whole value (a snapshot) is only safe
        while updates never overlap: two overlapping whole-cart commits each
        carry the other's unaccepted change, and the snapshot the server gets
        last wins. If "add pear" is rejected the server still stores the
        pear from the fig snapshot; if the snapshots arrive out of order the
        server keeps the older one. Either way the server and the display
        disagree. For whole-object APIs, send the change itself and confirm
        with the server's answer::

            cart.update(
                lambda items: items if item in items else [*items, item],
                commit=lambda _shown: api.add_item(item),  # answers the cart
                confirm_with_result=True,
            )

        Each answer becomes the confirmed value when it arrives, with the
        still-pending changes applied on top of it; make those changes
        harmless to apply twice (as above), since the answer may already
        hold them. Answers are taken in the order they arrive: if an older
        answer can arrive after a newer one, :meth:`refresh` once they settle.

        Examples:
            >>> import reactivex as rx
            >>> cart = OptimisticState(["apple"])
            >>> sent = []
            >>> def save(shown):
            ...     sent.append(shown)
            ...     return rx.never()  # still pending
            >>> _ = cart.update(lambda items: [*items, "pear"], commit=save)
            >>> _ = cart.update(lambda items: [*items, "fig"], commit=save)
            >>> sent
            [['apple', 'pear'], ['apple', 'pear', 'fig']]

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
        require_observable_maker("commit", commit)
        require_bool("confirm_with_result", confirm_with_result)
        outcome = Outcome()
        with self._lock:
            if self._disposed:
                raise OptimisticStateDisposedError("the optimistic state was disposed")
            layer = self._stack.push(value_or_function)
            shown = self._recompute()
            if layer.failing:  # the change itself raised (reported): nothing applied
                self._stack.remove(layer)
                return rx.of(False)
            self._in_flight += 1
            self._updating.set(True)
        try:
            started = commit(shown)
            source = _as_observable(started, "commit")
        except Exception as error:
            self._settle(layer, error, _NOTHING, outcome, confirm_with_result)
            return outcome
        except BaseException as interrupted:  # KeyboardInterrupt: rolled back, then on
            stopped = RuntimeError(f"the commit was interrupted: {interrupted!r}")
            self._settle(layer, stopped, _NOTHING, outcome, confirm_with_result)
            raise
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
        layer: Layer,
        error: Exception | None,
        result: Any,
        outcome: Outcome,
        confirm_with_result: bool,
    ) -> None:
        """Take the commit's outcome, once; never raises into the commit's producer."""
        if error is None and confirm_with_result and result is _NOTHING:
            error = ValueError(
                "confirm_with_result=True, but the commit completed without a value"
            )
        with self._lock:
            if layer.settled:
                return
            layer.settled = True
            self._base_changes += 1
            self._in_flight -= 1
            not_applied: OptimisticApplyError | None = None
            pending = self._stack.remove(layer)  # not if superseded
            if pending and error is None and not self._disposed:
                try:
                    self._stack.confirm(layer, result, confirm_with_result)
                except Exception as failure:  # accepted, but cannot be folded in
                    not_applied = OptimisticApplyError(failure)
            if not self._disposed:
                self._recompute()
                if not_applied is not None:
                    self._errors.emit(not_applied)
                if error is not None:
                    self._errors.emit(error)
                self._updating.set(bool(self._stack))
        outcome.settle(error is None)

    def _recompute(self) -> _T:
        """Called under the lock: show the layers folded over the confirmed value."""
        value: _T = self._stack.fold()
        self._display.set(value)
        return value

    def set_confirmed(self, value: _T) -> None:
        """A fresh value from the server: the new base, pending layers re-applied.

        A pending function that raises on the new base is left out of the
        display but stays pending (nothing is dropped); its error goes to
        :attr:`errors` rather than being raised here.

        Raises:
            OptimisticStateDisposedError: the state was disposed.
        """
        with self._lock:
            if self._disposed:
                raise OptimisticStateDisposedError("the optimistic state was disposed")
            self._stack.confirmed = value
            self._base_changes += 1
            self._recompute()

    def refresh(self, fetch: Callable[[], Any]) -> Observable[bool]:
        """Fetch the server's value and make it the base, unless it is stale.

        A fetch is discarded when it may be stale (SWR's rule), so a stale
        read never overwrites a newer change: when an update settled, or the
        base was set (:meth:`set_confirmed`, another refresh), after it
        started; when an update's commit is still in flight as it answers
        (the server may have applied it, or not yet); when a newer refresh
        started after it. The result emits ``True`` when the value was
        applied, ``False`` when it was discarded or the fetch failed or
        completed without a value (its error goes to :attr:`errors`).
        """
        require_observable_maker("fetch", fetch)
        outcome = Outcome()
        with self._lock:
            if self._disposed:
                raise OptimisticStateDisposedError("the optimistic state was disposed")
            changes_at_start = self._base_changes
            self._fetches += 1
            fetch_number = self._fetches
        last: list[Any] = [_NOTHING]

        def finish(applied: bool, error: Exception | None = None) -> None:
            if error is not None:
                with self._lock:
                    self._errors.emit(error)
            outcome.settle(applied)

        def on_completed() -> None:
            if last[0] is _NOTHING:
                finish(False, ValueError("the fetch completed without a value"))
                return
            with self._lock:
                fresh = (
                    self._base_changes == changes_at_start
                    and self._in_flight == 0
                    and self._fetches == fetch_number
                    and not self._disposed
                )
                if fresh:
                    self._stack.confirmed = last[0]
                    self._base_changes += 1
                    self._recompute()
            finish(fresh)

        try:
            source = _as_observable(fetch(), "fetch")
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
        return f"OptimisticState(value={self.value!r}, pending={len(self._stack)})"


def _as_observable(started: Any, name: str) -> Observable[Any]:
    if isinstance(started, Observable):
        return started
    if isinstance(started, asyncio.Future | concurrent.futures.Future):
        return rx.from_future(started)
    if close_coroutine(started):
        raise TypeError(
            f"{name} must return an Observable or a future, got a coroutine: "
            "return rxr.from_async(lambda: ...) instead"
        )
    raise TypeError(
        f"{name} must return an Observable or a future, got {type(started).__name__}"
    )
