"""Running a check in a forked child, while a thread of the parent holds a lock."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any


def in_forked_child(
    check: Callable[[], bool],
    *,
    holding: contextlib.AbstractContextManager[Any] | None = None,
) -> int:
    """Fork; in the child, run ``check`` and exit 0 if it answers True (1 if
    it raises, 2 if False; an alarm kills a child that hangs, so a deadlock
    fails the test instead of hanging the suite). With ``holding``, a thread
    of the parent is inside it at the instant of the fork. The child's exit
    code."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        assert holding is not None
        with holding:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold) if holding is not None else None
    if holder is not None:
        holder.start()
        held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                signal.alarm(20)
                code = 0 if check() else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        if holder is not None:
            holder.join()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
