"""The pending updates of an ``OptimisticState``, layered over its confirmed value.

The display is the confirmed value with every pending layer applied, in the
order the updates were made. A layer whose function raises is left out of
the display but stays pending; a layer that settles is folded into the
confirmed value (a succeeded one) or removed (a failed one), and the layers
above are applied again on the new base.

Not thread-safe on its own: the state's lock guards every call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

__all__ = ["Layer", "LayerStack"]


class Layer:
    """One pending update over the confirmed value."""

    __slots__ = ("change", "failing", "id", "is_function", "settled", "superseded")

    def __init__(self, layer_id: int, change: Any, is_function: bool) -> None:
        self.id = layer_id
        self.change = change
        self.is_function = is_function
        self.superseded = False
        self.settled = False  # its commit's outcome was taken (exactly once)
        self.failing = False  # its function raised on the last fold

    def apply(self, value: Any) -> Any:
        return self.change(value) if self.is_function else self.change


class LayerStack:
    """The confirmed value and the pending layers over it, oldest first.

    ``report`` receives the error of a layer's function once, when the layer
    starts failing (it is called under the state's lock).
    """

    __slots__ = ("_ids", "_report", "confirmed", "layers")

    def __init__(self, confirmed: Any, report: Callable[[Exception], None]) -> None:
        self.confirmed = confirmed
        self.layers: list[Layer] = []
        self._ids = itertools.count()
        self._report = report

    def push(self, value_or_function: Any) -> Layer:
        """A new layer on top, for an update just made."""
        layer = Layer(next(self._ids), value_or_function, callable(value_or_function))
        self.layers.append(layer)
        return layer

    def remove(self, layer: Layer) -> bool:
        """Take ``layer`` out; False if it was not pending (superseded, or gone)."""
        if layer not in self.layers:
            return False
        self.layers.remove(layer)
        return True

    def __len__(self) -> int:
        return len(self.layers)

    def confirm(self, layer: Layer, result: Any, confirm_with_result: bool) -> None:
        """Fold a succeeded layer (already out of ``layers``) into the confirmed value.

        Raises what the layer's function raises, having changed nothing.
        """
        if confirm_with_result:
            self.confirmed = result
        else:
            self.confirmed = layer.apply(self.confirmed)
        if not layer.is_function:
            # A whole new value supersedes every older pending update.
            older = [pending for pending in self.layers if pending.id < layer.id]
            for pending in older:
                pending.superseded = True
                self.layers.remove(pending)

    def fold(self) -> Any:
        """The confirmed value with every layer applied that does not raise.

        A layer whose function raises is left out (it stays pending); its error
        is reported when it starts failing. Never raises.
        """
        value = self.confirmed
        for layer in self.layers:
            try:
                value = layer.apply(value)
            except Exception as error:
                if not layer.failing:
                    layer.failing = True
                    self._report(error)
                continue
            layer.failing = False
        return value
