"""Module-wide locks that a forked child has anew."""

from __future__ import annotations

import pytest

from rxresilience._child_safe_lock import ChildSafeLock

from ._fork import in_forked_child


@pytest.mark.parametrize("reentrant", [False, True])
def test_a_forked_child_takes_a_lock_a_parent_thread_held(reentrant: bool) -> None:
    lock = ChildSafeLock(reentrant=reentrant)

    def take() -> bool:
        with lock:
            return True

    assert in_forked_child(take, holding=lock) == 0


def test_a_reentrant_one_can_be_taken_twice_by_its_thread() -> None:
    lock = ChildSafeLock(reentrant=True)
    with lock, lock:
        pass
