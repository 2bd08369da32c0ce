# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A circuit breaker in front of a service that degrades and recovers
#
# A service's failure rate climbs to 90 % between t=60 s and t=120 s, then
# recovers. Calls arrive twice a second through one `rxr.CircuitBreaker`
# with a sliding-window rule. While the breaker is OPEN calls are rejected
# at once: the service gets a rest.

# %%
import random

import matplotlib.pyplot as plt
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

# %%
scheduler = TestScheduler()
rng = random.Random(3)
breaker = rxr.CircuitBreaker(
    failure_threshold=None,
    reset_timeout=10.0,
    half_open_max_calls=3,
    window=rxr.TimeWindow(20.0),
    failure_rate_threshold=0.5,
    minimum_calls=10,
    scheduler=scheduler,
)
changes = []
breaker.state_changes.subscribe(changes.append)


def failure_rate(t: float) -> float:
    return 0.9 if 60 <= t < 120 else 0.05


calls = []  # (time, outcome)


def call() -> rx.Observable[str]:
    def start(_):
        failed = rng.random() < failure_rate(scheduler.clock)
        answer = rx.throw(ConnectionError("503")) if failed else rx.of("200")
        return rx.timer(0.2, scheduler=scheduler).pipe(ops.flat_map(lambda _: answer))

    return rx.defer(start)


def place() -> None:
    at = scheduler.clock
    call().pipe(rxr.circuit_breaker(breaker)).subscribe(
        on_next=lambda _: calls.append((at, "ok")),
        on_error=lambda e: calls.append(
            (at, "rejected" if isinstance(e, rxr.CircuitOpenError) else "failed")
        ),
        scheduler=scheduler,
    )


for step in range(400):
    scheduler.schedule_absolute(step * 0.5, lambda *_: place())
scheduler.advance_to(205)
print(breaker.metrics())
for change in changes[:8]:
    print(
        f"{change.at:7.1f}s  {change.previous.value:>9} -> {change.current.value:<9} {change.reason}"
    )

# %%
levels = {"closed": 0, "half-open": 1, "open": 2}
times = [0.0] + [c.at for c in changes] + [200.0]
states = [0] + [levels[c.current.value] for c in changes]
states.append(states[-1])
fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
top.step(times, states, where="post", color="tab:purple", label="breaker state")
top.set_yticks([0, 1, 2], ["closed", "half-open", "open"])
top.set_title(
    "The breaker opens as failures pile up, probes with half-open trials, then closes"
)
top.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
buckets = range(0, 200, 5)
for outcome, color in (
    ("ok", "tab:green"),
    ("failed", "tab:red"),
    ("rejected", "tab:gray"),
):
    counts = [
        sum(1 for t, o in calls if o == outcome and b <= t < b + 5) for b in buckets
    ]
    bottom.bar(
        list(buckets),
        counts,
        width=5,
        align="edge",
        alpha=0.6,
        color=color,
        label=outcome,
    )
bottom.plot(
    list(range(0, 200)),
    [10 * failure_rate(t) for t in range(200)],
    color="black",
    linestyle="--",
    label="service failure rate x10",
)
bottom.set_title("Calls per 5 s: rejected while OPEN, never reaching the service")
bottom.set_xlabel("virtual time (s)")
bottom.set_ylabel("calls")
bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
fig.tight_layout()
plt.show()
