"""The registries' map: keyed by identity, never by ``==``, holding keys weakly."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

from rxresilience._weak_identity_map import WeakIdentityMap

from ._fork import in_forked_child


class AllEqual:
    """Compares equal to everything, hashes alike: as a dataclass of equal
    settings would."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0


class Unhashable:
    __hash__ = None  # type: ignore[assignment]


def test_keys_that_compare_equal_are_different_keys() -> None:
    values: WeakIdentityMap[Any, str] = WeakIdentityMap()
    a, b = AllEqual(), AllEqual()
    assert values.setdefault(a, lambda: "a") == "a"
    assert values.setdefault(b, lambda: "b") == "b"
    assert (values.get(a), values.get(b)) == ("a", "b")


def test_an_unhashable_key_is_a_key() -> None:
    values: WeakIdentityMap[Any, int] = WeakIdentityMap()
    key = Unhashable()
    assert values.setdefault(key, lambda: 1) == 1
    assert values.setdefault(key, lambda: 2) == 1  # made once


def test_an_entry_goes_with_its_key_and_a_new_key_never_finds_it() -> None:
    values: WeakIdentityMap[Any, str] = WeakIdentityMap()
    for i in range(20):  # new objects often take a dead one's id
        key = AllEqual()
        assert values.get(key) is None
        values.setdefault(key, lambda i=i: f"v{i}")  # type: ignore[misc]
        del key
        gc.collect()
    assert values.values() == []
    assert len(values) == 0


def test_a_key_that_cannot_be_weakly_referenced_is_refused() -> None:
    values: WeakIdentityMap[Any, str] = WeakIdentityMap()
    with pytest.raises(TypeError):
        values.setdefault(object(), lambda: "x")


def test_threads_racing_on_one_key_make_one_value() -> None:
    values: WeakIdentityMap[Any, object] = WeakIdentityMap()
    key = AllEqual()
    made: list[object] = []
    start = threading.Barrier(8)
    got: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    def race() -> None:
        start.wait()
        got.append(values.setdefault(key, make))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert got == made * 8


def test_a_map_held_only_by_another_goes_without_the_cycle_collector() -> None:
    import weakref

    outer: WeakIdentityMap[Any, WeakIdentityMap[Any, str]] = WeakIdentityMap()
    key, inner_key = AllEqual(), AllEqual()
    inner = outer.setdefault(key, WeakIdentityMap)
    inner.setdefault(inner_key, lambda: "v")
    gone = weakref.ref(inner)
    del inner
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        del key  # the outer entry goes, and with it the inner map, at once
        assert gone() is None
    finally:
        if was_enabled:
            gc.enable()


def test_a_forked_child_uses_a_map_whose_lock_a_parent_thread_held() -> None:
    values: WeakIdentityMap[Any, str] = WeakIdentityMap()
    key = AllEqual()

    def use() -> bool:
        return values.setdefault(key, lambda: "child") == "child"

    # A parent thread inside the map at the fork.
    assert in_forked_child(use, holding=values._lock) == 0
