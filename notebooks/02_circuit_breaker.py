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
#
# The breaker's timeline is read from its telemetry: every transition is a
# `breaker.state_changed` event on `rxr.telemetry.events(...)`, the same
# stream the logging, OpenTelemetry and Prometheus adapters listen to.

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
    name="orders-api",
)
transitions = []  # one telemetry event per state change, in transition order
listening = rxr.telemetry.events(
    kinds="breaker.state_changed", policies=breaker.name
).subscribe(transitions.append)


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
listening.dispose()  # detached: the stream delivers nothing more to it
print(breaker.metrics())
print(f"{len(transitions)} state changes; the first eight:")
for event in transitions[:8]:
    facts = event.attributes
    print(
        f"{event.at:7.1f}s  {facts['previous']:>9} -> {facts['state']:<9} {facts['reason']}"
    )

# %%
levels = {"closed": 0, "half-open": 1, "open": 2}
colours = {"closed": "tab:green", "half-open": "tab:orange", "open": "tab:red"}
end = 200.0
times = [0.0] + [event.at for event in transitions] + [end]
states = ["closed"] + [event.attributes["state"] for event in transitions]
fig, (top, bottom) = plt.subplots(
    2, 1, figsize=(11, 6.2), sharex=True, height_ratios=(2, 3)
)
for start, stop, state in zip(times, times[1:], states, strict=False):
    top.axvspan(start, stop, color=colours[state], alpha=0.18, linewidth=0)
top.step(
    times,
    [levels[s] for s in states] + [levels[states[-1]]],
    where="post",
    color="black",
    linewidth=1.5,
)
top.set_yticks([0, 1, 2], ["closed", "half-open", "open"])
top.set_ylim(-0.3, 2.3)
top.set_ylabel("breaker state")
top.set_title(
    "From its breaker.state_changed events: the breaker opens as failures pile up,\n"
    "probes the service every 10 s with half-open trials, then closes"
)
buckets = range(0, 200, 5)
stacked = [0] * len(buckets)
for outcome, color, label in (
    ("ok", "tab:green", "answered"),
    ("failed", "tab:red", "failed at the service"),
    ("rejected", "tab:gray", "rejected by the breaker"),
):
    counts = [
        sum(1 for t, o in calls if o == outcome and b <= t < b + 5) for b in buckets
    ]
    bottom.bar(
        list(buckets),
        counts,
        width=5,
        bottom=stacked,
        align="edge",
        alpha=0.75,
        color=color,
        label=label,
    )
    stacked = [a + b for a, b in zip(stacked, counts, strict=True)]
rate = bottom.twinx()
rate.plot(
    list(range(0, 200)),
    [100 * failure_rate(t) for t in range(200)],
    color="black",
    linestyle="--",
    label="service failure rate (right axis)",
)
rate.set_ylim(0, 100)
rate.set_ylabel("service failure rate (%)")
bottom.set_xlim(0, end)
bottom.set_ylim(0, 10)
bottom.set_title("Calls per 5 s: rejected while OPEN, never reaching the service")
bottom.set_xlabel("virtual time (s)")
bottom.set_ylabel("calls per 5 s")
handles = bottom.get_legend_handles_labels()[0] + rate.get_legend_handles_labels()[0]
bottom.legend(
    handles=handles,
    loc="upper center",
    bbox_to_anchor=(0.5, -0.22),
    ncol=4,
    frameon=False,
)
fig.tight_layout()
plt.show()
