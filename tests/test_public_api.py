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


def test_importing_the_package_loads_no_test_tooling() -> None:
    """``testing`` and ``chaos`` load on first use: an application that only
    pipes operators imports neither Hypothesis nor ``reactivex.testing`` nor
    matplotlib."""
    import subprocess
    import sys

    code = (
        "import sys, rxresilience\n"
        "print(sorted(m for m in ('hypothesis', 'reactivex.testing', 'matplotlib',"
        " 'rxresilience.testing', 'rxresilience.chaos') if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_the_lazy_submodules_load_on_first_use() -> None:
    import rxresilience.chaos
    import rxresilience.testing

    assert rxresilience.testing is importlib.import_module("rxresilience.testing")
    assert rxresilience.chaos is importlib.import_module("rxresilience.chaos")
    assert {"chaos", "testing"} <= set(dir(rxresilience))
    from rxresilience import testing

    assert testing.run is rxresilience.testing.run


def test_every_exception_lives_in_errors() -> None:
    exceptions = [
        value
        for name in rxresilience.__all__
        if isinstance(value := getattr(rxresilience, name), type)
        and issubclass(value, BaseException)
    ]
    assert len(exceptions) > 15
    assert {
        e.__name__ for e in exceptions if e.__module__ != "rxresilience.errors"
    } == set()
    assert set(rxresilience.errors.__all__) == {e.__name__ for e in exceptions}


def test_modules_show_their_public_names_only() -> None:
    for name in (
        "rxresilience.testing",
        "rxresilience.testing.laws",
        "rxresilience.testing.strategies",
        "rxresilience.chaos",
    ):
        module = importlib.import_module(name)
        assert dir(module) == sorted(module.__all__), name
