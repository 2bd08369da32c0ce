"""Sagas, part 2: a crashed owner on this machine is recovered at once.

An owner token carries its process's identity (boot id, PID namespace, pid,
start time). ``recover`` takes a saga without waiting for its lease when its
owner ran on this machine, in this PID namespace, and that process is gone;
in every other case (another machine or namespace, a live process, anything
unreadable) it waits for the lease.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex as rx
from hypothesis import given
from hypothesis import strategies as st
from reactivex import operators as ops

import rxresilience as rxr
from rxresilience.saga import _process_identity as identity

from .. import _saga_worker as worker


def here() -> identity.ProcessIdentity:
    found = identity.current()
    assert found is not None
    return found


def here_or_none() -> str:
    """This machine's boot id and namespaces, as a token has them."""
    found = identity.current()
    if found is None:
        return "x:1:1"
    return f"{found.boot_id}:{found.pid_namespace}:{found.time_namespace}"


def wait_until_zombie(pid: int) -> None:
    """A signal is delivered when the kernel next runs its target, and its
    threads exit one by one: until the last has, the process still runs (and
    is rightly taken to be alive)."""
    deadline = time.monotonic() + 10

    def dead() -> bool:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
        return "State:\tZ" in status and "Threads:\t1\n" in status

    while not dead():
        assert time.monotonic() < deadline, f"process {pid} never died"
        os.sched_yield()


def token_of(who: identity.ProcessIdentity) -> str:
    return f"{uuid.uuid4().hex}@{who}"


def test_a_token_carries_this_process_and_reads_back() -> None:
    token = identity.new_owner_token()
    assert identity.ProcessIdentity.parse(token) == here()
    assert here().pid == os.getpid()
    assert identity.new_owner_token() != token  # still unique per owner


def test_this_live_process_is_not_gone() -> None:
    assert not identity.owner_is_gone(identity.new_owner_token())


def test_another_live_process_is_not_gone() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        started = identity.process_state(child.pid)
        assert started is not None
        who = dataclasses.replace(here(), pid=child.pid, start_time=started[1])
        assert not identity.owner_is_gone(token_of(who))
    finally:
        child.kill()
        child.wait()
    assert identity.owner_is_gone(token_of(who))  # exited and reaped


def test_a_killed_process_not_yet_reaped_is_gone() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    started = identity.process_state(child.pid)
    assert started is not None
    who = dataclasses.replace(here(), pid=child.pid, start_time=started[1])
    os.kill(child.pid, signal.SIGKILL)
    wait_until_zombie(child.pid)
    try:
        assert identity.owner_is_gone(token_of(who))
    finally:
        child.wait()


def test_a_pid_reused_by_a_later_process_means_the_owner_is_gone() -> None:
    me = here()
    earlier = dataclasses.replace(me, start_time=me.start_time - 1)
    assert identity.owner_is_gone(token_of(earlier))


@pytest.mark.parametrize(
    "who", ["another boot", "another PID namespace", "another time namespace"]
)
def test_an_owner_elsewhere_is_never_judged_gone(who: str) -> None:
    # pid 2**22 + 1 is above Linux's pid_max: no such process here.
    same = dataclasses.replace(here(), pid=2**22 + 1, start_time=1)
    if who == "another boot":
        other = dataclasses.replace(same, boot_id="0" * 8 + same.boot_id[8:])
    elif who == "another PID namespace":
        other = dataclasses.replace(same, pid_namespace=same.pid_namespace + 1)
    else:  # its start times are shifted by another boot-time offset
        other = dataclasses.replace(same, time_namespace=same.time_namespace + 1)
    assert not identity.owner_is_gone(token_of(other))
    assert identity.owner_is_gone(token_of(same))


def test_a_process_whose_proc_is_another_namespaces_has_no_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``/proc`` mounted for another PID namespace (``unshare --pid`` without
    ``--mount-proc``) would describe an unrelated process."""
    identity._identify.cache_clear()
    real = os.readlink
    monkeypatch.setattr(
        os, "readlink", lambda path: "1" if path == "/proc/self" else real(path)
    )
    try:
        assert identity.current() is None
        assert "@" not in identity.new_owner_token()
        assert not identity.owner_is_gone(token_of(here_after_all()))
    finally:
        monkeypatch.undo()
        identity._identify.cache_clear()
    assert identity.current() is not None


def here_after_all() -> identity.ProcessIdentity:
    return identity.ProcessIdentity("0" * 36, 1, 1, 2**22 + 1, 1)


def test_a_zombie_leader_whose_threads_run_on_is_not_gone() -> None:
    """The main thread may exit (pthread_exit) while other threads run: the
    leader then shows ``Z``, and the process lives."""
    import ctypes.util  # noqa: F401 - the child needs libc's pthread_exit

    code = (
        "import ctypes, sys, threading\n"
        "threading.Thread(target=sys.stdin.read).start()\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while (identity.process_state(child.pid) or ("?", 0))[0] != "Z":
            assert time.monotonic() < deadline, "the main thread never exited"
            os.sched_yield()
        started = identity.process_state(child.pid)
        assert started is not None
        who = dataclasses.replace(here(), pid=child.pid, start_time=started[1])
        assert not identity.owner_is_gone(token_of(who))
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        uuid.uuid4().hex,  # a token without an identity (another system)
        "dead",
        f"{uuid.uuid4().hex}@x:1:2:3",
        f"{uuid.uuid4().hex}@abc:1:1:0:3",  # pid 0: the caller's process group
        f"{uuid.uuid4().hex}@abc:1:1:-5:3",
        f"{uuid.uuid4().hex}@{here_or_none()}:9999999999:3",  # above any pid_t
        f"{uuid.uuid4().hex}@abc:1:2:3:4",
    ],
)
def test_a_token_without_a_readable_identity_is_never_gone(token: str | None) -> None:
    assert not identity.owner_is_gone(token)


@given(st.text())
def test_any_text_as_a_token_is_read_without_error(text: str) -> None:
    identity.owner_is_gone(text)
    identity.owner_is_gone(f"{uuid.uuid4().hex}@{text}")


@given(
    pid=st.integers(min_value=-(2**70), max_value=2**70), start=st.integers(0, 2**70)
)
def test_any_number_as_a_pid_is_read_without_error(pid: int, start: int) -> None:
    identity.owner_is_gone(f"{uuid.uuid4().hex}@{here_or_none()}:{pid}:{start}")


def test_a_forked_child_has_its_own_identity() -> None:
    parent = here()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its identity's pid and leave at once
        os.write(write, str(identity.current()).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    assert child.split(":")[-2] == str(pid)
    assert str(parent).split(":")[-2] == str(os.getpid())


# --- the journal takes a saga from a gone owner at once ---------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def journal(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    yield from worker.journal_of(request, tmp_path)


def test_take_from_a_gone_owner_is_a_compare_and_set_on_its_token(journal: Any) -> None:
    journal.begin_owned("s-1", "s", 0.0, owner="dead", lease_until=3600.0)
    assert not journal.take("s-1", 1.0, owner="r1", lease_until=31.0, stale_before=1.0)
    assert not journal.take(
        "s-1", 1.0, owner="r1", lease_until=31.0, stale_before=1.0, gone_owner="other"
    )
    assert journal.take(
        "s-1", 1.0, owner="r1", lease_until=31.0, stale_before=1.0, gone_owner="dead"
    )
    # A second recoverer that judged the same owner gone comes too late.
    assert not journal.take(
        "s-1", 1.0, owner="r2", lease_until=31.0, stale_before=1.0, gone_owner="dead"
    )
    assert not journal.append_owned(
        "s-1", rxr.JournalEntry("step_started", "a"), 2.0, owner="dead"
    )
    journal.finish_owned("s-1", "compensated", 3.0, owner="r1")
    assert not journal.take(  # an ended saga is never taken
        "s-1", 4.0, owner="r3", lease_until=34.0, stale_before=1.0, gone_owner="r1"
    )


def test_a_saga_held_by_this_live_process_is_left_alone() -> None:
    journal = rxr.InMemorySagaJournal()
    saga = rxr.Saga("s", lease=3600).step(
        "a", execute=lambda ctx: rx.never(), compensate=lambda ctx: None
    )
    running = saga.execute("x", journal=journal, saga_id="s-1").subscribe()
    try:
        assert rxr.recover(journal, {"s": saga}).pipe(ops.to_list()).run() == []
    finally:
        running.dispose()


def test_a_saga_whose_owner_ran_in_a_gone_process_here_is_taken_at_once() -> None:
    journal = rxr.InMemorySagaJournal()
    me = here()
    gone = token_of(dataclasses.replace(me, pid=2**22 + 1, start_time=1))
    journal.begin_owned("s-1", "s", time.time(), owner=gone, lease_until=1e12)
    journal.append_owned(
        "s-1", rxr.JournalEntry("step_succeeded", "a", b'"x"'), time.time(), owner=gone
    )
    undone: list[Any] = []
    saga = rxr.Saga("s").step("a", execute=rx.of, compensate=undone.append)
    events = rxr.recover(journal, {"s": saga}).pipe(ops.to_list()).run()
    assert [type(e).__name__ for e in events] == [
        "CompensationStarted",
        "StepCompensated",
    ]
    assert undone == ["x"]


# --- a SIGKILLed process, recovered at once by its parent -------------------------------


def start_hanging_order(
    tmp_path: pathlib.Path, lease: float, redis_url: str = ""
) -> tuple[Any, str]:
    journal_path = str(tmp_path / "sagas.db")
    effects_path = str(tmp_path / "effects.db")
    ready_path = str(tmp_path / "ready")
    if not redis_url:
        rxr.SQLiteSagaJournal(journal_path).close()
    child = multiprocessing.get_context("spawn").Process(
        target=worker.run_and_hang,
        args=(journal_path, effects_path, ready_path, lease, redis_url),
    )
    child.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(ready_path):
        assert time.monotonic() < deadline, "the child never reached its third step"
        child.join(0.01)
    return child, effects_path


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_sigkilled_owners_saga_is_recovered_at_once_by_its_parent(
    kind: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    journal: rxr.SagaJournal
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        journal = rxr.RedisSagaJournal(server.client(), prefix="instant:")
        child, effects_path = start_hanging_order(tmp_path, 3600.0, server.url)
    else:
        child, effects_path = start_hanging_order(tmp_path, 3600.0)
        journal = rxr.SQLiteSagaJournal(tmp_path / "sagas.db")
    saga = worker.order_saga(effects_path, hang_at_third=False, lease=3600.0)
    alive = rxr.recover(journal, {"order": saga}).pipe(ops.to_list()).run()
    assert alive == []  # its owner lives, with an hour of lease left
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    if kind == "redis":
        child.join()  # reaped; the sqlite run looks while it is a zombie
    else:
        wait_until_zombie(child.pid)
    events = rxr.recover(journal, {"order": saga}).pipe(ops.to_list()).run()
    child.join()
    assert [(type(e).__name__, e.step) for e in events] == [
        ("CompensationStarted", "charge"),
        ("StepCompensated", "charge"),
        ("CompensationStarted", "reserve"),
        ("StepCompensated", "reserve"),
    ]
    state = journal.state("order-o-1")
    assert state is not None
    assert state.status == "compensated"
    journal.close()
