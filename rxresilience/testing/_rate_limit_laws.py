"""Rate limiter laws, and a strategy for its settings.

The laws run in virtual time and raise ``AssertionError``; the strategy
needs Hypothesis (the ``testing`` extra), imported when it is called, so
this module loads without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import reactivex as rx
from reactivex.testing import TestScheduler

from .._clock import RESOLUTION
from ..rate_limit import RateLimiter, RateLimiterConfig, pace, rate_limit
from ._trace import assert_no_pending, run, run_until_idle

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "admissions_fit_the_rate",
    "pace_delivers_every_item_in_order_within_the_rate",
    "rate_limit_never_exceeds_the_rate",
    "rate_limiter_configs",
]

Operator = Callable[[rx.Observable[Any]], rx.Observable[Any]]


def rate_limiter_configs() -> SearchStrategy[RateLimiterConfig]:
    """``RateLimiterConfig`` values: round rates and periods (and a third, whose
    spacing is no exact float), bursts from 1 to 5."""
    from hypothesis import strategies as st

    return st.builds(
        RateLimiterConfig,
        rate=st.sampled_from([0.5, 1, 2, 3, 4, 10]),
        per=st.sampled_from([0.5, 1.0, 2.0, 10.0]),
        burst=st.integers(1, 5),
    )


def admissions_fit_the_rate(
    times: Sequence[float], config: RateLimiterConfig, *, skew: float = 0.0
) -> None:
    """Over every window, the admissions at ``times`` are at most
    ``burst + (window + skew) * rate / per``.

    The window is closed (both ends count), which is GCRA's exact bound; a
    microsecond of slack covers the schedulers' resolution (a permit due
    within it is free) and the rounding of the spacing. ``skew``: how far
    apart the admitting clocks may be (a fleet's).
    """
    ordered = sorted(times)
    interval, burst = config.interval, config.burst
    for first, start in enumerate(ordered):
        for last in range(first + burst, len(ordered)):
            window = ordered[last] - start
            slack = RESOLUTION + 1e-12 * (abs(start) + abs(ordered[last]))
            allowed = burst + (window + skew + slack) / interval
            count = last - first + 1
            assert count <= allowed, (
                f"{count} admissions in [{start!r}, {ordered[last]!r}]: more than "
                f"burst {burst} + {window + skew:g} s at {config.rate:g} per "
                f"{config.per:g} s allow"
            )


def rate_limit_never_exceeds_the_rate(
    config: RateLimiterConfig,
    subscribe_at: Sequence[float],
    pipeline: Callable[[RateLimiter], Operator] | None = None,
) -> None:
    """Calls subscribed at ``subscribe_at`` reach the source no faster than the rate.

    ``pipeline(limiter)`` is the operator under test (default
    ``rxr.rate_limit(limiter)``): a user's pipeline that takes a limiter
    (``lambda limiter: lambda source: source.pipe(rxr.rate_limit(limiter),
    rxr.retry(3))``). Each call's source completes at once with one value;
    the law checks the instants the source was subscribed over every
    window, that without a pipeline of one's own every call got through,
    and that nothing is left pending.
    """
    scheduler = TestScheduler()
    limiter = RateLimiter(config.rate, config.per, config.burst, scheduler=scheduler)
    operator = (pipeline or rate_limit)(limiter)
    reached: list[float] = []

    def call(_: Any) -> rx.Observable[Any]:
        reached.append(float(scheduler.clock))
        return rx.of("done")

    traces = [
        run(
            lambda: rx.defer(call).pipe(operator),
            subscribe_at=at,
            scheduler=scheduler,
            until=at,
        )
        for at in sorted(subscribe_at)
    ]
    run_until_idle(scheduler)
    admissions_fit_the_rate(reached, config)
    if pipeline is None:
        assert len(reached) == len(subscribe_at), (
            f"{len(subscribe_at) - len(reached)} call(s) never reached the source"
        )
        assert all(trace.completed for trace in traces)
    assert_no_pending(scheduler)


def pace_delivers_every_item_in_order_within_the_rate(
    config: RateLimiterConfig, arrivals: Sequence[float]
) -> None:
    """Items arriving at ``arrivals`` through ``rxr.pace`` all come out, in
    order, none before it arrived, within the rate; completion after the last."""
    scheduler = TestScheduler()
    limiter = RateLimiter(config.rate, config.per, config.burst, scheduler=scheduler)
    ordered = sorted(arrivals)
    end = ordered[-1] if ordered else 0.0

    def source(observer: Any, _: Any = None) -> Any:
        for index, at in enumerate(ordered):
            scheduler.schedule_absolute(at, lambda *_, i=index: observer.on_next(i))
        return scheduler.schedule_absolute(end, lambda *_: observer.on_completed())

    trace = run(
        lambda: rx.create(source).pipe(pace(limiter)),
        subscribe_at=0.0,
        scheduler=scheduler,
    )
    values = trace.values
    assert values == list(range(len(ordered))), f"items came out as {values}"
    emitted = [event.time for event in trace.events if event.kind == "next"]
    early = [i for i, at in enumerate(emitted) if at < ordered[i]]
    assert not early, f"items {early} came out before they arrived"
    admissions_fit_the_rate(emitted, config)
    assert trace.completed, "the completion never came"
    assert trace.ended_at is not None
    assert trace.ended_at >= max(emitted, default=end), "completed before an item"
    assert_no_pending(scheduler)
