"""Which process holds a saga, and whether that process is gone.

An owner's token carries its process's identity, so that ``rxr.recover``
on the same machine can tell a crashed owner from a slow one without
waiting for its lease: after a crash or a restart, its sagas are taken at
once. On Linux the identity is the boot id (``/proc/sys/kernel/random/boot_id``),
the PID namespace (the inode of ``/proc/self/ns/pid``) and the time
namespace (of ``/proc/self/ns/time``: the kernel shifts start times by the
reader's boot-time offset), which together say that two pids and their
start times are comparable; then the pid and the process's start time
(field 22 of ``/proc/<pid>/stat``, in clock ticks since boot), which say
that a pid still names the same process and not a later one that reused
it. The host name is not an identity: containers share them. A process
whose ``/proc`` is another PID namespace's (``/proc/self`` is not its pid)
has no identity.

Only a definite answer counts: another machine, another namespace, another
system than Linux, or anything unreadable, and the owner is taken to be
alive, so ``recover`` waits for its lease as it always did.

The identity travels inside the owner token
(``<random>@<boot>:<pid ns>:<time ns>:<pid>:<start>``)
rather than in columns of its own, so that every journal (and every compare-and-set
on the token) carries it with no change of schema.
"""

from __future__ import annotations

import functools
import itertools
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
    r"[0-9a-f]{32}@([0-9a-f-]{1,64}):([0-9]{1,20}):([0-9]{1,20}):([0-9]{1,10}):([0-9]{1,20})"
)


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A process, named so that another process can tell whether it is gone."""

    boot_id: str
    pid_namespace: int
    time_namespace: int
    pid: int
    start_time: int

    def __str__(self) -> str:
        return (
            f"{self.boot_id}:{self.pid_namespace}:{self.time_namespace}:"
            f"{self.pid}:{self.start_time}"
        )

    def machine(self) -> tuple[str, int, int]:
        """What must be equal for two identities' pids and start times to
        be comparable."""
        return (self.boot_id, self.pid_namespace, self.time_namespace)

    @staticmethod
    def parse(token: str) -> ProcessIdentity | None:
        """The identity inside an owner token; None for a token without one
        (another system, 0.1, a journal written by hand)."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        boot_id, pid_namespace, time_namespace, pid, start = match.groups()
        if not 0 < int(pid) < 2**31:  # pid_t; and kill(0) would mean the group
            return None
        return ProcessIdentity(
            boot_id, int(pid_namespace), int(time_namespace), int(pid), int(start)
        )


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


def _namespace(kind: str) -> int | None:
    """The inode of this process's ``kind`` namespace; 0 for a time namespace
    on a kernel without them (every process shares the one clock)."""
    try:
        link = os.readlink(f"/proc/self/ns/{kind}")  # "pid:[4026531836]"
    except FileNotFoundError:
        return 0 if kind == "time" else None
    except OSError:
        return None
    match = re.fullmatch(kind + r":\[([0-9]+)\]", link)
    return None if match is None else int(match.group(1))


def _threads(pid: int) -> int | None:
    """How many threads ``pid`` has, from ``/proc/<pid>/status``."""
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("Threads:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def current() -> ProcessIdentity | None:
    """This process's identity; None where it cannot be read (not Linux)."""
    return _identify(os.getpid())  # by pid: a forked child reads its own


@functools.lru_cache(maxsize=1)
def _identify(pid: int) -> ProcessIdentity | None:
    try:  # a /proc of another PID namespace would describe another process
        if os.readlink("/proc/self") != str(pid):
            return None
    except OSError:
        return None
    boot_id = _read(_BOOT_ID)
    pid_namespace, time_namespace = _namespace("pid"), _namespace("time")
    started = process_state(pid)
    if (
        boot_id is None
        or pid_namespace is None
        or time_namespace is None
        or started is None
    ):
        return None
    identity = ProcessIdentity(
        boot_id.strip(), pid_namespace, time_namespace, pid, started[1]
    )
    # Only an identity that a token can carry back (a boot id of another
    # shape would never parse, so it is not written either).
    return identity if ProcessIdentity.parse(f"{'0' * 32}@{identity}") else None


def new_owner_token() -> str:
    """A fresh owner token, carrying this process's identity where it has one.

    Unique without asking the OS for randomness each time (a saga run makes
    one): 64 random bits drawn once per process, then a counter.
    """
    nonce, counter = _nonce(os.getpid())
    return f"{nonce}{next(counter):016x}{_suffix(current())}"


@functools.lru_cache(maxsize=1)
def _nonce(pid: int) -> tuple[str, itertools.count[int]]:
    """This process's random half of its tokens (drawn again after a fork)."""
    return uuid.uuid4().hex[:16], itertools.count()


@functools.lru_cache(maxsize=4)
def _suffix(here: ProcessIdentity | None) -> str:
    """The ``@identity`` a token ends with (formatted once, not per saga)."""
    return "" if here is None else f"@{here}"


def owner_is_gone(token: str | None) -> bool:
    """True only when the token's process ran on this machine, in this PID
    and time namespace, and is certainly gone (exited, a zombie with no
    thread left, or its pid reused)."""
    if token is None:
        return False
    owner = ProcessIdentity.parse(token)
    here = current()
    if owner is None or here is None:
        return False
    if owner.machine() != here.machine():
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
    if start_time != owner.start_time:
        return True  # the pid names a later process
    if state == "X":
        return True
    # A zombie leader may still lead live threads (its main thread exited).
    return state == "Z" and _threads(owner.pid) == 1
