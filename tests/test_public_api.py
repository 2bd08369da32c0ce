"""The public surface: ``__all__`` is sorted, importable, and typed."""

from __future__ import annotations

import importlib
import pathlib

import rxresilience
import rxresilience.errors


def test_all_is_sorted() -> None:
    assert list(rxresilience.__all__) == sorted(rxresilience.__all__)


def test_every_public_name_is_importable() -> None:
    module = importlib.import_module("rxresilience")
    for name in rxresilience.__all__:
        assert getattr(module, name) is not None, name


def test_no_private_module_leaks_into_all() -> None:
    assert not [name for name in rxresilience.__all__ if name.startswith("_")]


def test_py_typed_ships() -> None:
    assert (pathlib.Path(rxresilience.__file__).parent / "py.typed").is_file()


def test_errors_share_one_root() -> None:
    assert issubclass(rxresilience.ResilienceError, Exception)
    assert rxresilience.errors.ResilienceError is rxresilience.ResilienceError
