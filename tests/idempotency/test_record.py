"""What is recorded for a key (``idempotency/_record.py``): outcomes through the
codec, the marker of an outcome that could not be recorded."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr

from ._doubles import (
    Runs,
)


def test_the_marker_is_read_whatever_the_codec(store: Any) -> None:
    """A duplicate whose codec could not decode the marker still reads it."""

    class Refusing:
        def encode(self, value: Any) -> bytes:
            if isinstance(value, dict):
                raise TypeError("no dicts here")
            return b"v"

        def decode(self, data: bytes) -> Any:
            raise AssertionError("the marker must be read before the codec")

    policy = rxr.IdempotencyPolicy(store, codec=Refusing())
    runs = Runs(lambda: rx.of(1))
    charge = runs.observable().pipe(rxr.idempotent(policy, key="k"))
    for _ in range(3):
        with pytest.raises(rxr.IdempotencyCodecError) as failure:
            charge.run()
        assert failure.value.ran
    assert runs.count == 1


def test_the_librarys_dataclass_codec_replays_dataclasses(store: Any) -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Receipt:
        id: str
        cents: int

    policy = rxr.IdempotencyPolicy(store, codec=rxr.DataclassCodec(Receipt))
    runs = Runs(lambda: rx.of(Receipt("r-1", 999)))
    charge = runs.observable().pipe(rxr.idempotent(policy, key="k"))
    assert charge.run() == Receipt("r-1", 999)
    assert charge.run() == Receipt("r-1", 999)
    assert runs.count == 1
