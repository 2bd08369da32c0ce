"""A map from objects, by identity, to values, that does not keep the objects alive.

The registries that find a journal's writer, a store's executions in flight,
or a scheduler's shared timer are keyed by objects users hand us. A
``WeakKeyDictionary`` keys them by ``==``: two journals of a dataclass that
compare equal (same settings, different connections) would share one writer,
and the second one's writes would go to the first one's database. Here each
object is its own key, whatever its ``__eq__`` and ``__hash__`` (an unhashable
object is a key too); an entry goes when its object does.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from ._child_safe_lock import ChildSafeLock

__all__ = ["WeakIdentityMap"]

_K = TypeVar("_K")
_V = TypeVar("_V")


class WeakIdentityMap(Generic[_K, _V]):
    """Values by the identity of their keys, held weakly; thread-safe.

    Examples:
        >>> class Journal:
        ...     def __eq__(self, other): return True
        ...     __hash__ = None
        >>> writers: WeakIdentityMap[Journal, str] = WeakIdentityMap()
        >>> a, b = Journal(), Journal()
        >>> writers.setdefault(a, lambda: "a's"), writers.setdefault(b, lambda: "b's")
        ("a's", "b's")
        >>> writers.get(a)
        "a's"
    """

    __slots__ = ("__weakref__", "_entries", "_lock")

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[_K], _V]] = {}
        # Reentrant: an entry's object may die (and its callback run) on a
        # thread that holds the lock, in the middle of setdefault.
        self._lock = ChildSafeLock(reentrant=True)

    def get(self, key: _K) -> _V | None:
        """The value of ``key`` (this very object), or None."""
        entry = self._entries.get(id(key))
        if entry is not None and entry[0]() is key:
            return entry[1]
        return None

    def setdefault(self, key: _K, make: Callable[[], _V]) -> _V:
        """The value of ``key``, made by ``make()`` (once) if it has none.

        Raises:
            TypeError: ``key`` cannot be weakly referenced.
        """
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self.get(key)
            if found is not None:
                return found
            ident = id(key)
            # The callback holds the map weakly: a map held only by a value of
            # another map (a journal's writers by loop) goes without the
            # cycle collector.
            home = weakref.ref(self)

            def forget(ref: weakref.ref[_K]) -> None:
                each = home()
                if each is not None:
                    each._forget(ident, ref)

            reference = weakref.ref(key, forget)
            value = make()
            self._entries[ident] = (reference, value)
            return value

    def __len__(self) -> int:
        """How many entries the map holds (of keys alive, or just gone)."""
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def values(self) -> list[_V]:
        """The values of the keys alive now."""
        with self._lock:
            return [value for ref, value in self._entries.values() if ref() is not None]

    def _forget(self, ident: int, reference: weakref.ref[_K]) -> None:
        with self._lock:
            entry = self._entries.get(ident)
            if entry is not None and entry[0] is reference:  # not a later object's
                del self._entries[ident]
