"""A lock that a forked child has anew.

``os.fork`` copies a lock as it is: held by a thread of the parent, it stays
held in the child, where that thread does not exist, and the child's first
``with`` waits forever. The module-wide locks (registries, telemetry's
subscribers, warn-once sets) are such locks: a child makes each one anew,
unheld, as it starts.
"""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType

__all__ = ["ChildSafeLock"]


class ChildSafeLock:
    """A ``threading.Lock`` (or ``RLock``) replaced by a fresh one in a forked child.

    Examples:
        >>> lock = ChildSafeLock()
        >>> with lock:
        ...     pass
    """

    __slots__ = ("__weakref__", "_lock", "_reentrant")

    def __init__(self, *, reentrant: bool = False) -> None:
        self._reentrant = reentrant
        self._lock = threading.RLock() if reentrant else threading.Lock()
        _locks.add(self)

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.__exit__(kind, error, traceback)

    def acquire(self, timeout: float = -1) -> bool:
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def _renew(self) -> None:
        self._lock = threading.RLock() if self._reentrant else threading.Lock()


_locks: weakref.WeakSet[ChildSafeLock] = weakref.WeakSet()


def _renew_in_child() -> None:
    for lock in list(_locks):
        lock._renew()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_in_child)
