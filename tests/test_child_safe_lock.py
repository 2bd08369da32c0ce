"""Module-wide locks that a forked child has anew."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from rxresilience._child_safe_lock import ChildSafeLock


@pytest.mark.parametrize("reentrant", [False, True])
def test_a_forked_child_takes_a_lock_a_parent_thread_held(reentrant: bool) -> None:
    lock = ChildSafeLock(reentrant=reentrant)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                signal.alarm(20)  # a hung child fails the test, never hangs it
                with lock:
                    code = 0
            finally:
                os._exit(code)
    finally:
        release.set()
        holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_reentrant_one_can_be_taken_twice_by_its_thread() -> None:
    lock = ChildSafeLock(reentrant=True)
    with lock, lock:
        pass
