"""Codecs: how values cross process boundaries; and payload fingerprints.

Nothing a store returns is ever unpickled: a shared store must not become a
way to run code in every process that reads it. The default codec is JSON;
a codec is any object with ``encode(value) -> bytes`` and
``decode(data) -> value``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import hashlib
import json
import uuid
from typing import Any, Protocol, runtime_checkable

__all__ = ["Codec", "JsonCodec", "fingerprint"]


@runtime_checkable
class Codec(Protocol):
    """Turns values into bytes and back."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class JsonCodec:
    """JSON, UTF-8: dicts, lists, strings, numbers, booleans and None.

    Values come back as JSON gives them (a tuple comes back as a list).
    NaN and infinities are refused, as strict JSON has no spelling for them.

    Examples:
        >>> codec = JsonCodec()
        >>> codec.decode(codec.encode({"id": 7, "items": ["a"]}))
        {'id': 7, 'items': ['a']}
    """

    __slots__ = ()

    def encode(self, value: Any) -> bytes:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)

    def __repr__(self) -> str:
        return "JsonCodec()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonCodec)

    def __hash__(self) -> int:
        return hash(JsonCodec)


def _canonical(value: Any) -> Any:
    """Reduce a payload to JSON types, deterministically."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "__dataclass__": type(value).__qualname__,
            **{
                f.name: _canonical(getattr(value, f.name))
                for f in dataclasses.fields(value)
            },
        }
    if isinstance(value, enum.Enum):
        return _canonical(value.value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(
            (_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True)
        )
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(
        f"payload of type {type(value).__name__} cannot be fingerprinted: use JSON "
        "types, dataclasses, enums, bytes, decimals, UUIDs or datetimes"
    )


def fingerprint(payload: Any) -> str:
    """A stable SHA-256 of the payload's canonical JSON encoding.

    Examples:
        >>> fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": (1, 2), "b": 1})
        True
    """
    canonical = json.dumps(
        _canonical(payload), sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
