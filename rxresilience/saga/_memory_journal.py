"""``InMemorySagaJournal``: a journal in this process's memory."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..errors import SagaError
from ._journal import JournalEntry, JournalWrite, SagaJournal, SagaRecord, lease_of

__all__ = ["InMemorySagaJournal"]


class _Row:
    __slots__ = ("lease_until", "name", "owner", "status", "touched")

    def __init__(
        self, name: str, touched: float, owner: str | None, lease_until: float | None
    ) -> None:
        self.name = name
        self.status = "running"
        self.touched = touched
        self.owner = owner
        self.lease_until = lease_until

    def gone(self, stale_before: float, gone_owner: str | None) -> bool:
        """Running, and its lease (else its last touch) is before ``stale_before``
        or its owner is ``gone_owner``."""
        mark = self.touched if self.lease_until is None else self.lease_until
        return self.status == "running" and (
            mark < stale_before or (gone_owner is not None and self.owner == gone_owner)
        )


class InMemorySagaJournal(SagaJournal):
    """A journal in this process's memory (for tests and for sagas that need no
    recovery across restarts)."""

    writes_may_block = False  # a lock held for a few dict updates

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sagas: dict[str, _Row] = {}
        self._entries: dict[str, list[JournalEntry]] = {}

    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        self._begin(saga_id, _Row(saga_name, now, None, None))

    def begin_owned(
        self,
        saga_id: str,
        saga_name: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
    ) -> None:
        self._begin(saga_id, _Row(saga_name, now, owner, lease_until))

    def _begin(self, saga_id: str, row: _Row) -> None:
        with self._lock:
            if saga_id in self._sagas:
                raise SagaError(f"saga id {saga_id!r} is already in the journal")
            self._sagas[saga_id] = row
            self._entries[saga_id] = []

    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        with self._lock:
            self._sagas[saga_id].touched = now
            self._entries[saga_id].append(entry)

    def append_owned(
        self, saga_id: str, entry: JournalEntry, now: float, *, owner: str
    ) -> bool:
        with self._lock:
            row = self._sagas.get(saga_id)
            if row is None or row.owner != owner:
                return False
            row.touched = now
            self._entries[saga_id].append(entry)
            return True

    def finish(self, saga_id: str, status: str, now: float) -> None:
        with self._lock:
            row = self._sagas[saga_id]
            row.status, row.touched = status, now

    def write_owned(self, writes: Sequence[JournalWrite]) -> list[bool]:
        with self._lock:  # one transaction: nobody sees half of it
            if len(writes) == 1:  # a run's own commit, outside asyncio: the usual
                return [self._apply(writes[0])]
            return [self._apply(write) for write in writes]

    def _apply(self, write: JournalWrite) -> bool:
        saga_id = write.saga_id
        if write.begin is not None:
            if saga_id in self._sagas:
                return False
            row = _Row(write.begin, write.now, write.owner, lease_of(write))
            self._sagas[saga_id] = row
            self._entries[saga_id] = []
        else:
            found = self._sagas.get(saga_id)
            if found is None or found.owner != write.owner:
                return False
            row = found
        row.touched = write.now
        self._entries[saga_id].extend(write.entries)
        if write.status is not None:
            row.status = write.status
        return True

    def finish_owned(
        self, saga_id: str, status: str, now: float, *, owner: str
    ) -> bool:
        with self._lock:
            row = self._sagas.get(saga_id)
            if row is None or row.owner != owner:
                return False
            row.status, row.touched = status, now
            return True

    def load(self, saga_id: str) -> SagaRecord | None:
        with self._lock:
            row = self._sagas.get(saga_id)
            if row is None:
                return None
            return SagaRecord(
                saga_id,
                row.name,
                row.status,
                row.touched,
                tuple(self._entries[saga_id]),
                row.owner,
                row.lease_until,
            )

    def unfinished(self) -> list[str]:
        with self._lock:
            running = [
                (row.touched, saga_id)
                for saga_id, row in self._sagas.items()
                if row.status == "running"
            ]
        return [saga_id for _, saga_id in sorted(running)]

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        with self._lock:
            row = self._sagas.get(saga_id)
            if row is None or row.status != "running" or row.touched >= stale_before:
                return False
            row.touched = now
            return True

    def take(
        self,
        saga_id: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
        stale_before: float,
        gone_owner: str | None = None,
    ) -> bool:
        with self._lock:
            row = self._sagas.get(saga_id)
            if row is None or not row.gone(stale_before, gone_owner):
                return False
            row.owner, row.lease_until, row.touched = owner, lease_until, now
            return True

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        with self._lock:
            row = self._sagas.get(saga_id)
            if row is None or row.owner != owner or row.status != "running":
                return False
            row.lease_until, row.touched = lease_until, now
            return True
