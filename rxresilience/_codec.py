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
import json.encoder
import math
import types
import typing
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

_D = TypeVar("_D")

__all__ = ["Codec", "DataclassCodec", "JsonCodec", "codec_or_json", "fingerprint"]


@runtime_checkable
class Codec(Protocol):
    """Turns values into bytes and back."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


def codec_or_json(codec: object) -> Codec:
    """The given codec, checked, or JSON when it is None."""
    if codec is None:
        return JsonCodec()
    if not isinstance(codec, Codec):
        raise TypeError(
            f"codec must have encode() and decode(), got {type(codec).__name__}"
        )
    return codec


#: One encoder for every JsonCodec: ``json.dumps`` with these options builds
#: a new one per call. Stateless: safe to share between threads.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _one_shot_encoder() -> Callable[[Any, int], Iterable[str]] | None:
    """The C encoder ``_ENCODER.encode`` builds anew on every call, built once.

    Without a circular-reference check (its table is per call): a cycle
    raises ``RecursionError`` here, and :meth:`JsonCodec.encode` then asks
    ``_ENCODER`` for its own error. None where the C accelerator is missing.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encoder: Callable[[Any, int], Iterable[str]] = make(
            None,  # no markers: no cycle check
            _ENCODER.default,
            json.encoder.encode_basestring,  # ensure_ascii=False
            None,  # indent
            ":",
            ",",
            False,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
    except TypeError:  # another interpreter's signature: keep the slow path
        return None
    return encoder


_ONE_SHOT = _one_shot_encoder()


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
        if _ONE_SHOT is not None:
            try:
                return "".join(_ONE_SHOT(value, 0)).encode()
            except RecursionError:  # a cycle, or nested too deep: see below
                pass
        return _ENCODER.encode(value).encode()

    def decode(self, data: bytes) -> Any:
        return json.loads(data)

    def __repr__(self) -> str:
        return "JsonCodec()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonCodec)

    def __hash__(self) -> int:
        return hash(JsonCodec)


class DataclassCodec(Generic[_D]):
    """JSON for a dataclass type, rebuilt from its type hints on the way back.

    Handles nested dataclasses, ``list``/``tuple``/``dict``/``set`` of them,
    ``X | None``, enums and JSON scalars: what saga contexts are made of.

    Examples:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Order:
        ...     id: str
        ...     items: tuple[str, ...] = ()
        >>> codec = DataclassCodec(Order)
        >>> codec.decode(codec.encode(Order("o-1", ("book",))))
        Order(id='o-1', items=('book',))
    """

    __slots__ = ("kind",)

    def __init__(self, kind: type[_D]) -> None:
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            raise TypeError(f"kind must be a dataclass type, got {kind!r}")
        self.kind = kind

    def encode(self, value: Any) -> bytes:
        return json.dumps(
            _plain(value), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()

    def decode(self, data: bytes) -> _D:
        built: _D = _build(self.kind, json.loads(data))
        return built

    def __repr__(self) -> str:
        return f"DataclassCodec({self.kind.__qualname__})"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _build(kind: Any, data: Any) -> Any:
    """Rebuild ``data`` (plain JSON) as an instance of the type hint ``kind``."""
    if data is None or kind is Any:
        return data
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _build(options[0], data) if len(options) == 1 else data
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(
            **{
                f.name: _build(hints.get(f.name, Any), data[f.name])
                for f in dataclasses.fields(kind)
                if f.init and f.name in data
            }
        )
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(data)
    args = typing.get_args(kind)
    if origin in (list, set, frozenset):
        item = args[0] if args else Any
        return origin(_build(item, v) for v in data)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v) for v in data)
        return tuple(_build(k, v) for k, v in zip(args, data, strict=False))
    if origin is dict:
        value_kind = args[1] if len(args) == 2 else Any
        return {k: _build(value_kind, v) for k, v in data.items()}
    return data


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
        for key in value:
            if isinstance(key, float) and not math.isfinite(key):
                raise ValueError(
                    f"Out of range float values are not JSON compliant: {key!r}"
                )
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
    try:
        canonical = json.dumps(
            _canonical(payload), sort_keys=True, separators=(",", ":"), allow_nan=False
        )
    except ValueError as error:  # NaN or an infinity: strict JSON has none
        raise ValueError(f"payload cannot be fingerprinted: {error}") from None
    return hashlib.sha256(canonical.encode()).hexdigest()
