"""How ``RedisSagaJournal`` writes a saga's entries and reads its keys back.

Entries are JSON, a context is base64 of the codec's bytes, never a pickle;
a saga's meta hash is read as bytes, whatever the client's
``decode_responses``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ._journal import JournalEntry, JournalWrite, SagaRecord, lease_of

__all__ = ["entry_json", "saga_ids", "saga_record", "write_row"]


def entry_json(entry: JournalEntry) -> str:
    """An entry as JSON (its context as base64, never a pickle)."""
    return json.dumps(
        {
            "kind": entry.kind,
            "step": entry.step,
            "context": None
            if entry.context is None
            else base64.b64encode(entry.context).decode(),
            "error": entry.error,
        }
    )


def write_row(write: JournalWrite) -> dict[str, Any]:
    """One write of a batch, as the ``WRITE`` script reads it."""
    return {
        "id": write.saga_id,
        "owner": write.owner,
        "now": repr(write.now),
        "name": write.begin or "",
        "lease": "" if write.begin is None else repr(lease_of(write)),
        "status": write.status or "",
        "entries": [entry_json(entry) for entry in write.entries],
    }


def saga_record(
    saga_id: str, meta: Mapping[bytes, bytes], entries: Iterable[bytes | str]
) -> SagaRecord:
    """The saga read back from its meta hash and its entries' JSON (a saga
    written by 0.1 has no owner nor lease)."""
    decoded = []
    for item in entries:
        data = json.loads(item)
        context = data["context"]
        decoded.append(
            JournalEntry(
                data["kind"],
                data["step"],
                None if context is None else base64.b64decode(context),
                data["error"],
            )
        )
    return SagaRecord(
        saga_id,
        meta[b"name"].decode(),
        meta[b"status"].decode(),
        float(meta[b"touched"]),
        tuple(decoded),
        meta[b"owner"].decode() if b"owner" in meta else None,
        float(meta[b"lease_until"]) if b"lease_until" in meta else None,
    )


def saga_ids(members: Iterable[Any]) -> list[str]:
    """The ids of the running sagas, from the members of their sorted set."""
    return [i.decode() if isinstance(i, bytes) else str(i) for i in members]
