"""``RetryPolicy`` is the one source of ``rxr.retry``'s options; the keyword
forms typed for mypy stay in step with it."""

from __future__ import annotations

import dataclasses
import random
import typing
from typing import Any

import pytest
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience import _retry_policy
from rxresilience._retry_policy import (
    OPTION_DEFAULTS,
    RetryOptions,
    RetryPlacement,
    RetryPolicy,
)


def _field_hints() -> dict[str, Any]:
    hints = typing.get_type_hints(RetryPolicy, vars(_retry_policy))
    return {f.name: hints[f.name] for f in dataclasses.fields(RetryPolicy) if f.init}


def test_the_keyword_options_are_the_policy_fields_with_their_types() -> None:
    fields = _field_hints()
    options = typing.get_type_hints(RetryOptions, vars(_retry_policy))
    assert options == {k: v for k, v in fields.items() if k != "max_attempts"}
    assert set(OPTION_DEFAULTS) == set(options)
    placement = typing.get_type_hints(RetryPlacement, vars(_retry_policy))
    assert placement == {"rng": fields["rng"], "scheduler": fields["scheduler"]}


def test_every_option_builds_the_same_policy_as_the_policy_itself() -> None:
    options: dict[str, Any] = {
        "backoff": 2.0,
        "should_retry": ValueError,
        "max_elapsed": 30.0,
        "reset_on_success": True,
        "rng": random.Random(1),
        "scheduler": TestScheduler(),
        "on_retry": print,
        "retry_if_result": bool,
        "max_refusal_wait": 5.0,
        "name": "payments",
    }
    assert set(options) == set(OPTION_DEFAULTS)
    assert RetryPolicy(4, **options) == dataclasses.replace(
        RetryPolicy(), max_attempts=4, **options
    )
    rxr.retry(4, **options)  # accepted, every one of them


def test_a_misspelt_option_is_refused_naming_it() -> None:
    with pytest.raises(
        TypeError, match=r"^retry\(\) got an unexpected keyword argument 'bakoff'"
    ):
        rxr.retry(3, bakoff=1.0)  # type: ignore[call-overload]
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument '_backoff_policy'"
    ):
        rxr.retry(3, _backoff_policy=None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'bakoff'"):
        rxr.retry(RetryPolicy(), bakoff=1.0)  # type: ignore[call-overload]


def test_options_at_their_default_may_accompany_a_policy_as_before() -> None:
    policy = RetryPolicy(2, backoff=None)
    default_backoff = OPTION_DEFAULTS["backoff"]
    rxr.retry(policy, backoff=default_backoff, reset_on_success=False)  # type: ignore[call-overload]
    rxr.retry(policy, rng=None, scheduler=None)
    with pytest.raises(TypeError, match="either a RetryPolicy"):
        rxr.retry(policy, backoff=rxr.ExponentialBackoff())  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="either a RetryPolicy"):
        rxr.retry(policy, max_refusal_wait=1)  # type: ignore[call-overload]


def test_max_attempts_says_the_first_attempt_counts() -> None:
    with pytest.raises(ValueError, match=r"^max_attempts must be >= 1 \(the first"):
        RetryPolicy(0)
    with pytest.raises(
        TypeError, match=r"^max_attempts must be an int or None, got bool"
    ):
        RetryPolicy(True)
    with pytest.raises(TypeError, match=r"^reset_on_success must be a bool, got int"):
        RetryPolicy(reset_on_success=1)  # type: ignore[arg-type]
