"""What ``rxr.idempotent`` records for a key: an outcome, or a marker saying it ran.

An outcome is ``{"values": [...], "error": None | {"type", "message"}}``
encoded by the codec. When the operation ran but its outcome cannot be
encoded (a ``Decimal``, a ``datetime``, a response object), a *marker* is
recorded instead: reserved leading bytes and a small JSON object naming the
type that did not fit. The marker is recognised before the codec is asked to
decode anything, so it works whatever the codec; duplicates then get
``IdempotencyCodecError`` until the ``ttl`` ends, and never run the
operation again.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .._codec import Codec, DataclassCodec, JsonCodec
from ..errors import IdempotencyCodecError, RecordedError

__all__ = [
    "Outcome",
    "blamed_type",
    "check_round_trip",
    "decode_record",
    "encode_outcome",
    "qualified_name",
    "unrecordable",
    "unrecordable_marker",
]

# No codec's output starts with a NUL byte followed by this text by accident:
# JSON never starts with NUL, and a codec of the user's gets the check too.
_MARKER = b"\x00rxresilience:unrecordable\x00"


class Outcome(NamedTuple):
    """A decoded record: the values, and the recorded error if there was one."""

    values: list[Any]
    error: RecordedError | None


def qualified_name(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def blamed_type(values: list[Any]) -> str:
    """The type to blame for an outcome that could not be recorded: the last
    value's (the one the codec choked on, if encoding failed at a value)."""
    return qualified_name(values[-1]) if values else "outcome"


def encode_outcome(codec: Codec, values: list[Any], error: Exception | None) -> bytes:
    """The record of an outcome; raises what the codec raises."""
    described = (
        None
        if error is None
        else {"type": qualified_name(error), "message": str(error)}
    )
    return codec.encode({"values": values, "error": described})


def unrecordable_marker(value_type: str, message: str) -> bytes:
    """The record saying the operation ran but its outcome could not be encoded."""
    details = json.dumps({"type": value_type, "message": message[:500]})
    return _MARKER + details.encode()


def unrecordable(key: str, value_type: str, message: str) -> IdempotencyCodecError:
    """The error of an operation that ran but whose outcome could not be recorded."""
    return IdempotencyCodecError(
        f"the operation of idempotency key {key!r} ran, but its outcome could not "
        f"be recorded: the codec cannot encode a {value_type} ({message}); it will "
        f"not run again for this key until the ttl ends. Map the value to JSON "
        f"(str, int, float, bool, None, lists, dicts) before idempotent, or pass "
        f"codec=",
        key=key,
        value_type=value_type,
        ran=True,
    )


def decode_record(codec: Codec, key: str, record: bytes) -> Outcome:
    """Decode a record; raises ``IdempotencyCodecError`` for a marker or bad bytes."""
    if record.startswith(_MARKER):
        try:
            details = json.loads(record[len(_MARKER) :])
            value_type, message = str(details["type"]), str(details["message"])
        except Exception:  # a damaged marker still says the operation ran
            value_type, message = "value", "the record is damaged"
        raise unrecordable(key, value_type, message)
    try:
        outcome = _decode_envelope(codec, record)
        values = list(outcome["values"])
        error = outcome.get("error")
        recorded = (
            None
            if error is None
            else RecordedError(str(error["type"]), str(error["message"]))
        )
    except Exception as failure:
        raise IdempotencyCodecError(
            f"cannot decode the record of idempotency key {key!r}: {failure}",
            key=key,
        ) from failure
    return Outcome(values, recorded)


def _decode_envelope(codec: Codec, record: bytes) -> Any:
    """The ``{"values", "error"}`` envelope; a ``DataclassCodec`` rebuilds each
    value as its dataclass (the envelope itself is plain JSON)."""
    if isinstance(codec, DataclassCodec):
        envelope = json.loads(record)
        values = [
            codec.decode(json.dumps(value).encode()) for value in envelope["values"]
        ]
        return {"values": values, "error": envelope.get("error")}
    return codec.decode(record)


def check_round_trip(codec: Codec, key: str, record: bytes) -> None:
    """Raise unless a codec of the user's reads back what it wrote (else every
    duplicate would fail to decode until the ttl ends)."""
    if type(codec) is JsonCodec:
        return
    decode_record(codec, key, record)
