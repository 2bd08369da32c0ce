"""Which process holds a saga, and whether that process is gone.

An owner's token carries its process's identity, so that ``rxr.recover``
on the same machine can tell a crashed owner from a slow one without
waiting for its lease: after a crash or a restart, its sagas are taken at
once. On Linux the identity is the boot id (``/proc/sys/kernel/random/boot_id``)
and the PID namespace (the inode of ``/proc/self/ns/pid``), which together
say that two pids are comparable, then the pid and the process's start time
(field 22 of ``/proc/<pid>/stat``, in clock ticks since boot), which say
that a pid still names the same process and not a later one that reused
it. The host name is not an identity: containers share them.

Only a definite answer counts: another machine, another namespace, another
system than Linux, or anything unreadable, and the owner is taken to be
alive, so ``recover`` waits for its lease as it always did.

The identity travels inside the owner token (``<random>@<boot>:<ns>:<pid>:<start>``)
rather than in columns of its own, so that every journal (and every compare-and-set
on the token) carries it with no change of schema.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from dataclasses import dataclass

__all__ = [
    "ProcessIdentity",
    "current",
    "new_owner_token",
    "owner_is_gone",
    "process_state",
]

_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_PID_NAMESPACE = "/proc/self/ns/pid"
_TOKEN = re.compile(
    r"[0-9a-f]{32}@([0-9a-f-]{1,64}):([0-9]{1,20}):([0-9]{1,10}):([0-9]{1,20})"
)


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A process, named so that another process can tell whether it is gone."""

    boot_id: str
    pid_namespace: int
    pid: int
    start_time: int

    def __str__(self) -> str:
        return f"{self.boot_id}:{self.pid_namespace}:{self.pid}:{self.start_time}"

    @staticmethod
    def parse(token: str) -> ProcessIdentity | None:
        """The identity inside an owner token; None for a token without one
        (another system, 0.1, a journal written by hand)."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        boot_id, namespace, pid, start = match.groups()
        if not 0 < int(pid) < 2**31:  # pid_t; and kill(0) would mean the group
            return None
        return ProcessIdentity(boot_id, int(namespace), int(pid), int(start))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except (OSError, ValueError):
        return None


def process_state(pid: int) -> tuple[str, int] | None:
    """The state letter and start time of ``pid`` from ``/proc/<pid>/stat``."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields
    # that follow begin after its last ')', with the state (field 3).
    fields = text[text.rfind(")") + 1 :].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _namespace() -> int | None:
    try:
        link = os.readlink(_PID_NAMESPACE)  # "pid:[4026531836]"
    except OSError:
        return None
    match = re.fullmatch(r"pid:\[([0-9]+)\]", link)
    return None if match is None else int(match.group(1))


def current() -> ProcessIdentity | None:
    """This process's identity; None where it cannot be read (not Linux)."""
    return _identify(os.getpid())  # by pid: a forked child reads its own


@functools.lru_cache(maxsize=1)
def _identify(pid: int) -> ProcessIdentity | None:
    boot_id = _read(_BOOT_ID)
    namespace = _namespace()
    started = process_state(pid)
    if boot_id is None or namespace is None or started is None:
        return None
    identity = ProcessIdentity(boot_id.strip(), namespace, pid, started[1])
    # Only an identity that a token can carry back (a boot id of another
    # shape would never parse, so it is not written either).
    return identity if ProcessIdentity.parse(f"{'0' * 32}@{identity}") else None


def new_owner_token() -> str:
    """A fresh owner token, carrying this process's identity where it has one."""
    token = uuid.uuid4().hex
    here = current()
    return token if here is None else f"{token}@{here}"


def owner_is_gone(token: str | None) -> bool:
    """True only when the token's process ran on this machine, in this PID
    namespace, and is certainly gone (exited, a zombie, or its pid reused)."""
    if token is None:
        return False
    owner = ProcessIdentity.parse(token)
    here = current()
    if owner is None or here is None:
        return False
    if (owner.boot_id, owner.pid_namespace) != (here.boot_id, here.pid_namespace):
        return False
    if owner.pid == here.pid:
        return owner.start_time != here.start_time
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True  # no process has that pid in this namespace
    except OSError:
        pass  # it exists, under another user: its /proc entry tells the rest
    started = process_state(owner.pid)
    if started is None:
        # Hidden (hidepid) or exiting as we look: not certain, so alive.
        return False
    state, start_time = started
    return state in ("Z", "X") or start_time != owner.start_time
