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
# # Hedging, bulkheads and a fleet-wide rate limit
#
# Three ways to protect a call to a service that is slow now and then, or
# overloaded, or shared by many processes:
#
# - `rxr.hedge` asks again when an answer is late and takes whichever comes
#   first: it cuts the latency tail for a few extra requests;
# - `rxr.Bulkhead` bounds how many calls run at once, queues a few and sheds
#   the rest at once during a spike;
# - `rxr.RateLimiter` keeps a pace of calls, and with one shared storage it
#   keeps it for a whole fleet.
#
# Everything runs in virtual time on a `TestScheduler`: minutes of traffic
# take a moment, and a seed gives the same figures every run.

# %%
import math
import random

import matplotlib.pyplot as plt
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

# %% [markdown]
# ## A service with a heavy tail
#
# Most answers take about 40 ms, but 3 % of the requests hit a slow replica
# (a garbage-collection pause, a cold cache) and take from 0.3 s to several
# seconds. Each request is slow or not on its own, so a second request sent
# while the first is stuck is probably fast.


# %%
def latency(rng: random.Random) -> float:
    """Seconds one request takes: a log-normal body, a Pareto tail."""
    body = rng.lognormvariate(math.log(0.040), 0.3)
    if rng.random() < 0.03:
        return body + min(0.3 * rng.paretovariate(1.5), 8.0)
    return body


def measure(calls: int, hedge_after: float | None, seed: int = 8):
    """Latency (s) of each call seen by its caller, and the requests sent."""
    scheduler = TestScheduler()
    rng = random.Random(seed)
    sent = [0]

    def request(_):
        sent[0] += 1
        return rx.timer(latency(rng), scheduler=scheduler).pipe(ops.map(lambda _: "ok"))

    seen = []

    def place(_, index):
        start = scheduler.clock
        call = rx.defer(request)
        if hedge_after is not None:
            call = call.pipe(rxr.hedge(hedge_after))
        call.subscribe(
            lambda _: seen.append(scheduler.clock - start), scheduler=scheduler
        )
        if index + 1 < calls:  # the next call 10 ms later: 100 calls a second
            scheduler.schedule_relative(0.01, place, index + 1)

    scheduler.schedule_absolute(0.0, place, 0)
    scheduler.start()
    return seen, sent[0]


plain, plain_sent = measure(10_000, hedge_after=None)
cut = sorted(plain)[int(0.95 * len(plain))]  # hedge at the plain p95
hedged, hedged_sent = measure(10_000, hedge_after=cut)
quantiles = {"p50": 0.50, "p99": 0.99, "p99.9": 0.999}


def percentile(values, q):
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


print(f"hedge after {cut * 1000:.0f} ms (the p95 without hedging)")
for label, values, sent in (
    ("without hedging", plain, plain_sent),
    ("with hedging", hedged, hedged_sent),
):
    shown = ", ".join(
        f"{name} {percentile(values, q) * 1000:6.0f} ms"
        for name, q in quantiles.items()
    )
    print(f"{label:<16} {shown}   requests sent: {sent} for {len(values)} calls")

# %%
fig, ax = plt.subplots(figsize=(10, 4.2))
width = 0.38
positions = range(len(quantiles))
extra = 100 * (hedged_sent - plain_sent) / plain_sent
for offset, (label, values, colour) in enumerate(
    (
        ("without hedging", plain, "tab:gray"),
        (
            f"hedge(delay={cut * 1000:.0f} ms): {extra:.1f} % more requests",
            hedged,
            "tab:blue",
        ),
    )
):
    heights = [percentile(values, q) * 1000 for q in quantiles.values()]
    bars = ax.bar(
        [p + (offset - 0.5) * width for p in positions],
        heights,
        width,
        label=label,
        color=colour,
    )
    ax.bar_label(bars, fmt="%.0f ms", padding=2, fontsize=9)
ax.set_yscale("log")
ax.set_ylim(top=ax.get_ylim()[1] * 3)  # room for the bar labels
ax.set_xticks(list(positions), list(quantiles))
ax.set_xlabel("percentile of the latency a caller sees (10,000 calls each)")
ax.set_ylabel("latency (ms, log scale)")
ax.set_title(
    "Hedging at the p95 leaves the median alone and cuts the p99 and p99.9 tail"
)
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
fig.tight_layout()
plt.show()

# %% [markdown]
# The median is untouched: a hedge starts only after the p95, so 95 % of
# the calls never send a second request, and the extra load is about 5 %.
# The tail shrinks because a second request is rarely slow too (3 % of 3 %).
# The disposed first request may still be processed by the server: hedge
# only reads, or calls that carry a server-side idempotency key (with
# `rxr.idempotent` outside the hedge, never inside). The p99.9 of 10,000
# calls rests on its 10 slowest: read it as an order of magnitude.

# %% [markdown]
# ## A bulkhead during a spike
#
# An inventory service answers in 0.2 to 0.4 s. Calls arrive at 20 a second,
# and at 120 a second between t=10 s and t=14 s. One shared
# `rxr.Bulkhead(max_concurrent=10, max_queue=20, max_wait=0.5)` lets 10
# calls run, queues 20 more (without blocking a thread), and refuses the
# rest at once with `BulkheadFullError`: the load the service cannot take is
# shed at the door instead of piling up inside it.

# %%
SPIKE = (10.0, 14.0)


def arrivals(rng: random.Random, until: float) -> list[float]:
    """Poisson arrivals: 20 calls a second, 120 during the spike."""
    times, now = [], 0.0
    while now < until:
        rate = 120.0 if SPIKE[0] <= now < SPIKE[1] else 20.0
        now += rng.expovariate(rate)
        times.append(now)
    return times


def spike(bulkhead: rxr.Bulkhead | None, seed: int = 4):
    scheduler = TestScheduler()
    rng = random.Random(seed)  # arrivals
    slowness = random.Random(seed + 1)  # how long each call takes
    running = [0]  # calls running at the service
    outcomes = []  # (arrival time, "ok" | why it was refused)

    def service(_):
        running[0] += 1
        return rx.timer(slowness.uniform(0.2, 0.4), scheduler=scheduler).pipe(
            ops.map(lambda _: "ok"),
            ops.finally_action(lambda: running.__setitem__(0, running[0] - 1)),
        )

    def place(*_):
        at = scheduler.clock
        call = rx.defer(service)
        if bulkhead is not None:
            call = call.pipe(rxr.bulkhead(bulkhead))
        call.subscribe(
            lambda _: outcomes.append((at, "ok")),
            lambda error: outcomes.append((at, error.reason)),
            scheduler=scheduler,
        )

    for at in arrivals(rng, 25.0):
        scheduler.schedule_absolute(at, place)
    samples = []  # (time, running at the service, queued)

    def sample(*_):
        queued = bulkhead.metrics().queued if bulkhead is not None else 0
        samples.append((scheduler.clock, running[0], queued))

    for tick in range(0, 25 * 20 + 1):
        scheduler.schedule_absolute(tick / 20, sample)
    scheduler.start()
    return samples, outcomes


inventory = rxr.Bulkhead(
    max_concurrent=10, max_queue=20, max_wait=0.5, name="inventory"
)
guarded, guarded_outcomes = spike(inventory)
unguarded, _ = spike(None)
print(inventory.metrics())

# %%
fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.4), sharex=True)
times = [t for t, _, _ in guarded]
for axes in (top, bottom):
    axes.axvspan(*SPIKE, color="tab:orange", alpha=0.12, label="spike: 120 calls/s")
top.plot(
    [t for t, _, _ in unguarded],
    [r for _, r, _ in unguarded],
    color="tab:gray",
    linestyle="--",
    label="running, without a bulkhead",
)
top.step(
    times,
    [r for _, r, _ in guarded],
    where="post",
    color="tab:blue",
    label="running (active)",
)
top.step(
    times,
    [q for _, _, q in guarded],
    where="post",
    color="tab:purple",
    label="waiting (queued)",
)
top.axhline(
    10, color="tab:blue", linewidth=0.8, linestyle=":", label="max_concurrent = 10"
)
top.set_ylabel("calls")
top.set_title("The bulkhead holds the service at 10 calls and queues 20 more")
top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
second = 0.5
edges = [k * second for k in range(int(25 / second))]
stacked = [0.0] * len(edges)
for outcome, colour, label in (
    ("ok", "tab:green", "answered"),
    ("queue full", "tab:red", "refused at once: queue full"),
    ("wait exceeded", "tab:orange", "refused after 0.5 s queued"),
):
    counts = [
        sum(1 for at, o in guarded_outcomes if o == outcome and e <= at < e + second)
        / second
        for e in edges
    ]
    bottom.bar(
        edges,
        counts,
        width=second,
        bottom=stacked,
        align="edge",
        color=colour,
        alpha=0.8,
        label=label,
    )
    stacked = [a + b for a, b in zip(stacked, counts, strict=True)]
bottom.set_xlim(0, 25)
bottom.set_xlabel("virtual time (s)")
bottom.set_ylabel("calls per second (by arrival)")
bottom.set_title("What it cannot take it refuses, without waiting for the service")
bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## One limit for a fleet
#
# Four processes call a payments API that allows 10 calls a second, with
# bursts of 5. Each process has its own `rxr.RateLimiter(rate=10,
# burst=5)`; each call goes through `rxr.rate_limit(limiter, max_wait=2.0)`
# (wait up to 2 s for a permit, else `RateLimitedError`).
#
# With a storage in each process, each keeps the limit alone, and the fleet
# takes up to four times what the API allows. With one storage shared by
# all (in production `rxr.RedisRateLimiterStorage(client,
# name="payments-api")`, one Lua script per permit), the fleet keeps the one
# limit. Here the shared storage is an in-memory stand-in for Redis: one
# GCRA state behind the `rxr.RateLimiterStorage` interface, which every
# process's limiter uses.


# %%
class SharedStorage(rxr.RateLimiterStorage):
    """One limiter state for several limiters, as a Redis key is for a fleet."""

    def __init__(
        self, fleet: rxr.RateLimiterStorage, config: rxr.RateLimiterConfig
    ) -> None:
        self.fleet = fleet  # bound once, with the fleet's settings
        self.config = config

    def bind(self, config: rxr.RateLimiterConfig) -> None:
        if config != self.config:
            raise ValueError("every process must use the fleet's settings")

    def reserve(self, now, max_wait):
        return self.fleet.reserve(now, max_wait)

    def cancel(self, reservation, now):
        return self.fleet.cancel(reservation, now)

    def time_to_permit(self, now):
        return self.fleet.time_to_permit(now)


RATE, BURST, HORIZON = 10.0, 5, 20.0
PROCESSES = {  # calls per second each process wants, and when
    "process A": lambda t: 6.0,
    "process B": lambda t: 14.0 if 4 <= t < 8 else 1.0,
    "process C": lambda t: 5.0 if t >= 10 else 0.0,
    "process D": lambda t: 3.0,
}


def fleet(shared: bool, seed: int = 21):
    scheduler = TestScheduler()
    rng = random.Random(seed)
    config = rxr.RateLimiterConfig(RATE, 1.0, BURST)
    fleet_state = rxr.InMemoryRateLimiterStorage()
    fleet_state.bind(config)
    permits = {name: [] for name in PROCESSES}  # when each call reached the API
    refused = {name: 0 for name in PROCESSES}
    for index, (name, wants) in enumerate(PROCESSES.items()):
        limiter = rxr.RateLimiter(
            RATE,
            burst=BURST,
            storage=SharedStorage(fleet_state, config) if shared else None,
            scheduler=scheduler,
            name=f"payments-api {'shared' if shared else 'local'} {index}",
        )

        def call(_, name=name):
            permits[name].append(scheduler.clock)
            return rx.of("paid")

        def place(*_, name=name, limiter=limiter, call=call):
            rx.defer(call).pipe(rxr.rate_limit(limiter, max_wait=2.0)).subscribe(
                on_error=lambda _: refused.__setitem__(name, refused[name] + 1),
                scheduler=scheduler,
            )

        tick = 0.05  # a Bernoulli draw every 50 ms approximates each rate
        for step in range(int(HORIZON / tick)):
            t = step * tick
            if rng.random() < wants(t) * tick:
                scheduler.schedule_absolute(t, place)
    scheduler.start()
    return permits, refused


results = {shared: fleet(shared) for shared in (False, True)}
for shared, (permits, refused) in results.items():
    taken = sum(len(p) for p in permits.values())
    print(
        f"{'one shared storage' if shared else 'a storage per process':<22}"
        f" permits {taken:4}, refused {sum(refused.values()):4},"
        f" the limit allows {BURST + RATE * HORIZON:.0f} in {HORIZON:.0f} s"
    )

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
grid = [k * 0.1 for k in range(int(HORIZON * 10) + 21)]
colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple"]
for ax, shared in zip(axes, (False, True), strict=True):
    permits, _ = results[shared]
    stacks = [
        [sum(1 for p in permits[name] if p <= t) for t in grid] for name in PROCESSES
    ]
    ax.stackplot(grid, stacks, labels=list(PROCESSES), colors=colours, alpha=0.75)
    ax.plot(
        grid,
        [BURST + RATE * t for t in grid],
        color="black",
        linestyle="--",
        linewidth=1.5,
        label="the limit: 5 + 10 per second",
    )
    ax.set_xlim(0, HORIZON + 2)  # a call may wait up to 2 s for its permit
    ax.set_xticks(range(0, int(HORIZON) + 1, 5))
    ax.set_xlabel("virtual time (s)")
    ax.set_title(
        "One shared storage: the fleet keeps the limit"
        if shared
        else "A storage per process: 4 limits, too many calls",
        fontsize=11,
    )
axes[0].set_ylabel("calls let through, cumulative (fleet)")
handles, labels = axes[1].get_legend_handles_labels()
fig.legend(
    handles, labels, loc="lower center", ncol=5, frameon=False, bbox_to_anchor=(0.5, 0)
)
fig.suptitle("Four processes, one payments API limited to 10 calls a second")
fig.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()

# %% [markdown]
# With a storage per process, each process keeps its own 10 a second, and
# the fleet's total runs above the dashed line whenever more than one
# process is busy. With the shared storage, the stacked total never crosses
# the line: a permit taken by one process is gone for the others, and a
# process asking for more than its share waits (or, past `max_wait`, is
# refused with a `retry_after`). With Redis the clocks are each process's
# own: keep them in sync, since a process `s` seconds ahead can take up to
# `s * rate / per` extra permits.
