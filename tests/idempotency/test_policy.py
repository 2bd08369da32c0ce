"""The policy of the idempotency operators (``idempotency/_policy.py``): options
checked once where the value is made, naming the argument; a frozen, reusable
value; the one source of the operators' keyword options."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import pytest
import reactivex as rx

import rxresilience as rxr
from rxresilience.idempotency import _policy
from rxresilience.idempotency._policy import IdempotencyOptions, IdempotencyPolicy
from rxresilience.stores import Claim

from .._support import DURATIONS_OUT_OF_RANGE

_OUT_OF_RANGE = DURATIONS_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"key": ""}, ValueError, "key"),
        ({"key": 42}, TypeError, "key"),
        ({"key": "k", "ttl": 0}, ValueError, "ttl"),
        ({"key": "k", "ttl": -5}, ValueError, "ttl"),
        ({"key": "k", "on_in_progress": "ignore"}, ValueError, "on_in_progress"),
        ({"key": "k", "in_progress_timeout": 0}, ValueError, "in_progress_timeout"),
        ({"key": "k", "payload": object()}, TypeError, "payload"),
        ({"key": "k", "record_errors": "all"}, TypeError, "record_errors"),
        ({"key": "k", "finish_on_dispose": "yes"}, TypeError, "finish_on_dispose"),
    ],
)
def test_bad_input_raises_at_construction_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=argument):
        rxr.idempotent(rxr.InMemoryIdempotencyStore(), **kwargs)


def test_a_store_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="store"):
        rxr.idempotent({}, key="k")  # type: ignore[arg-type]


@pytest.mark.parametrize("argument", ["ttl", "in_progress_timeout", "poll_interval"])
@pytest.mark.parametrize(("value", "error"), [*_OUT_OF_RANGE, (0, ValueError)])
def test_a_duration_out_of_range_is_refused_naming_it(
    argument: str, value: object, error: type[Exception]
) -> None:
    store = rxr.InMemoryIdempotencyStore()
    options: dict[str, Any] = {argument: value}
    with pytest.raises(error, match=rf"^{argument} "):
        rxr.idempotent(store, key="k", **options)
    with pytest.raises(error, match=rf"^{argument} "):
        rxr.idempotent_map(rx.of, store=store, key=str, **options)


@pytest.mark.parametrize("argument", ["ttl", "in_progress_timeout", "poll_interval"])
def test_a_duration_in_range_is_kept_as_seconds(argument: str) -> None:
    from rxresilience._clock import LONGEST_WAIT

    for value in (5, 0.5, LONGEST_WAIT):
        options: dict[str, Any] = {argument: value}
        policy = rxr.IdempotencyPolicy(rxr.InMemoryIdempotencyStore(), **options)
        kept = getattr(policy, argument)
        assert type(kept) is float
        assert kept == value
    store = rxr.InMemoryIdempotencyStore()
    options = {argument: 5}
    values = rx.of(1).pipe(rxr.idempotent(store, key="k", **options)).run()
    assert values == 1


@pytest.mark.parametrize("argument", ["in_progress_timeout", "poll_interval"])
def test_a_lease_or_poll_below_a_millisecond_is_refused(argument: str) -> None:
    options: dict[str, Any] = {argument: 1e-7}
    with pytest.raises(ValueError, match=argument):
        rxr.IdempotencyPolicy(rxr.InMemoryIdempotencyStore(), **options)


def test_a_policy_is_frozen_reusable_and_refuses_options_beside_it() -> None:
    store = rxr.InMemoryIdempotencyStore()
    policy = rxr.IdempotencyPolicy(store, ttl=60, max_run=30)
    assert (policy.ttl, policy.max_run, policy.finish_on_dispose) == (60.0, 30.0, None)
    with pytest.raises(AttributeError):
        policy.ttl = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="ttl"):
        rxr.idempotent(policy, key="k", ttl=5)
    assert rx.of(1).pipe(rxr.idempotent(policy, key="a")).run() == 1
    assert rx.of(2).pipe(rxr.idempotent(policy, key="a")).run() == 1
    assert (
        rx.of("r").pipe(rxr.idempotent_map(rx.of, policy=policy, key=str)).run() == "r"
    )
    with pytest.raises(TypeError, match="exactly one"):
        rxr.idempotent_map(rx.of, key=str)
    with pytest.raises(TypeError, match="ttl"):  # an option beside a policy
        rxr.idempotent_map(rx.of, policy=policy, key=str, ttl=5)
    with pytest.raises(ValueError, match="max_run"):
        rxr.IdempotencyPolicy(store, max_run=0)


def test_a_store_without_renew_warns_when_the_operator_is_built() -> None:
    class Old(rxr.IdempotencyStore):  # a third-party store written for 0.1
        def __init__(self) -> None:
            self.inner = rxr.InMemoryIdempotencyStore()

        def claim(self, *args: Any) -> Claim:
            return self.inner.claim(*args)

        def complete(self, *args: Any) -> bool:
            return self.inner.complete(*args)

        def release(self, *args: Any) -> bool:
            return self.inner.release(*args)

        def get(self, *args: Any) -> bytes | None:
            return self.inner.get(*args)

        def purge_expired(self, now: float | None = None) -> int:
            return self.inner.purge_expired(now)

    old = Old()
    with pytest.warns(RuntimeWarning, match="renew"):
        charge = rx.of("ok").pipe(rxr.idempotent(old, key="k"))
    assert charge.run() == "ok"  # 0.1's behaviour: it works, unrenewed


def test_the_keyword_options_are_the_policy_fields_with_their_types() -> None:
    hints = typing.get_type_hints(IdempotencyPolicy, vars(_policy))
    fields = {
        f.name: hints[f.name]
        for f in dataclasses.fields(IdempotencyPolicy)
        if f.init and f.name != "store"
    }
    options = typing.get_type_hints(IdempotencyOptions, vars(_policy))
    # An operator decides finish_on_dispose; only a policy may leave it None.
    assert fields.pop("finish_on_dispose") == bool | None
    assert options.pop("finish_on_dispose") is bool
    assert options == fields


def test_a_misspelt_option_is_refused_naming_the_operator() -> None:
    store = rxr.InMemoryIdempotencyStore()
    with pytest.raises(TypeError, match=r"^idempotent\(\) got an unexpected .* 'tll'"):
        rxr.idempotent(store, key="k", tll=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^idempotent_map\(\) got an unexpected"):
        rxr.idempotent_map(rx.of, store=store, key=str, tll=5)  # type: ignore[call-arg]


def test_options_at_their_default_may_accompany_a_policy_as_before() -> None:
    store = rxr.InMemoryIdempotencyStore()
    policy = IdempotencyPolicy(store, ttl=60)
    options: dict[str, Any] = {
        "ttl": 24 * 3600,
        "on_in_progress": "wait",
        "finish_on_dispose": False,
        "record_errors": None,
    }
    assert rx.of(1).pipe(rxr.idempotent(policy, key="k", **options)).run() == 1
    with pytest.raises(TypeError, match="finish_on_dispose"):
        rxr.idempotent(policy, key="k", finish_on_dispose=True)


def test_an_operator_decides_finish_on_dispose_false_unless_told() -> None:
    store = rxr.InMemoryIdempotencyStore()
    decided = _policy.policy_from("idempotent", store, {})
    assert decided.finish_on_dispose is False
    told = _policy.policy_from("idempotent", store, {"finish_on_dispose": True})
    assert told.finish_on_dispose is True


@pytest.mark.parametrize("value", [True, 2.0, "2"])
def test_max_concurrency_of_the_wrong_type_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match=r"^max_concurrency must be an int or None"):
        rxr.idempotent_map(
            rx.of,
            store=rxr.InMemoryIdempotencyStore(),
            key=str,
            max_concurrency=value,  # type: ignore[arg-type]
        )
