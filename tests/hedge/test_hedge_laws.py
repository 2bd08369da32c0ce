"""The hedging law and strategies (``rxresilience.testing._hedge_laws``)."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from hypothesis import given, settings
from reactivex import operators as ops

import rxresilience as rxr
from rxresilience.testing import _hedge_laws as hedge_laws


@given(policy=hedge_laws.hedge_policies(), scripts=hedge_laws.hedge_scripts())
def test_hedge_emits_exactly_one_attempts_notifications(
    policy: rxr.HedgePolicy, scripts: list[tuple[float, str]]
) -> None:
    hedge_laws.hedging_emits_exactly_one_attempts_notifications(scripts, policy)


@given(
    policy=hedge_laws.hedge_policies(),
    scripts=hedge_laws.hedge_scripts(outcomes=("ok", "empty", "fail", "hang")),
)
def test_the_law_fits_a_users_pipeline_with_a_retry_outside_the_hedge(
    policy: rxr.HedgePolicy, scripts: list[tuple[float, str]]
) -> None:
    """(Not with "partial": the retry outside retries a winner that fails after
    its first item, so two rounds' notifications pass, as they should.)"""

    def pipeline() -> Any:
        return rx.compose(
            rxr.hedge(policy), rxr.retry(2, backoff=1.0), ops.map(lambda x: x)
        )

    hedge_laws.hedging_emits_exactly_one_attempts_notifications(
        scripts, operator=pipeline
    )


def test_the_default_policy_is_one_hedge_after_a_second() -> None:
    hedge_laws.hedging_emits_exactly_one_attempts_notifications([(5.0, "ok")])


def _fails_somewhere(operator: Any, scripts: list[list[tuple[float, str]]]) -> bool:
    for script in scripts:
        try:
            hedge_laws.hedging_emits_exactly_one_attempts_notifications(
                script, operator=operator
            )
        except AssertionError:
            return True
    return False


SCRIPTS = [
    [(3.0, "ok"), (1.0, "ok")],
    [(3.0, "ok"), (5.0, "ok")],
    [(1.0, "fail"), (1.0, "ok")],
    [(5.0, "hang")],
]


def test_the_law_catches_a_hedge_that_merges_the_attempts() -> None:
    def merged() -> Any:
        return lambda source: rx.merge(
            source, rx.timer(1.0).pipe(ops.flat_map(lambda _: source))
        )

    assert _fails_somewhere(merged, SCRIPTS)


def test_the_law_catches_a_hedge_that_never_disposes_the_loser() -> None:
    def leaky() -> Any:
        def apply(source: rx.Observable[Any]) -> rx.Observable[Any]:
            def subscribe(observer: Any, scheduler: Any = None) -> Any:
                won: list[int] = []

                def attempt(k: int) -> Any:
                    def on_next(value: Any) -> None:
                        if not won:
                            won.append(k)
                        if won == [k]:
                            observer.on_next(value)

                    def on_completed() -> None:
                        if won in ([], [k]):
                            observer.on_completed()

                    return source.subscribe(
                        on_next, observer.on_error, on_completed, scheduler=scheduler
                    )

                attempt(0)
                scheduler.schedule_relative(1.0, lambda *_: attempt(1))

            return rx.create(subscribe)

        return apply

    assert _fails_somewhere(leaky, SCRIPTS)


def test_rxpy_amb_of_delayed_copies_keeps_the_law_when_nothing_fails() -> None:
    """``amb`` is a hedge that does not hedge on errors: on answers alone it
    keeps the law (so the law is not tied to our operator)."""

    def amb() -> Any:
        return lambda source: source.pipe(
            ops.amb(rx.timer(1.0).pipe(ops.flat_map(lambda _: source)))
        )

    for script in ([(3.0, "ok"), (1.0, "ok")], [(0.5, "empty")], [(2.0, "partial")]):
        hedge_laws.hedging_emits_exactly_one_attempts_notifications(
            script, operator=amb
        )


def test_an_unknown_outcome_or_no_script_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        hedge_laws.hedging_emits_exactly_one_attempts_notifications([(1.0, "maybe")])
    with pytest.raises(ValueError, match="scripts"):
        hedge_laws.hedging_emits_exactly_one_attempts_notifications([])
    with pytest.raises(ValueError, match="latency"):
        hedge_laws.hedging_emits_exactly_one_attempts_notifications([(-1.0, "ok")])


@settings(max_examples=50)
@given(policy=hedge_laws.hedge_policies(max_hedges=2))
def test_generated_policies_are_valid_and_bounded(policy: rxr.HedgePolicy) -> None:
    assert 1 <= policy.max_hedges <= 2
    assert all(0.0 <= d <= 10.0 for d in policy.sample(3))


def test_the_module_shows_its_public_names_only() -> None:
    assert dir(hedge_laws) == sorted(hedge_laws.__all__)
