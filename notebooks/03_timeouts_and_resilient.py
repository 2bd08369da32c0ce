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
# # Timeouts, and everything together with `rxr.resilient`
#
# `rxr.timeout` has three budgets: `first` (the first item), `each` (every
# gap) and `total` (the whole subscription). `rxr.resilient` then combines a
# per-attempt timeout, a retry, a breaker and a fallback in one order.

# %%
import matplotlib.pyplot as plt
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import draw_timeline, flaky, run


def ticks(times):
    """A cold source emitting at the given times after subscription."""
    return lambda s: rx.merge(
        *[
            rx.timer(t, scheduler=s).pipe(ops.map(lambda _, i=i: f"v{i}"))
            for i, t in enumerate(times)
        ]
    )


stream = [1.0, 2.0, 3.5, 8.0, 9.0]
traces = {
    "source": run(ticks(stream), until=12),
    "timeout(3)": run(lambda s: ticks(stream)(s).pipe(rxr.timeout(3.0)), until=12),
    "timeout(first=0.5)": run(
        lambda s: ticks(stream)(s).pipe(rxr.timeout(first=0.5)), until=12
    ),
    "timeout(total=6)": run(
        lambda s: ticks(stream)(s).pipe(rxr.timeout(total=6.0)), until=12
    ),
    "timeout(3, fallback='cached')": run(
        lambda s: ticks(stream)(s).pipe(rxr.timeout(3.0, fallback="cached")), until=12
    ),
}
for name, trace in traces.items():
    print(f"{name:<32} {trace.marbles()}")

# %%
ax = draw_timeline(traces, title="One source, four budgets", until=12)
ax.figure.tight_layout()
plt.show()

# %% [markdown]
# ## A hanging and flaky service behind `rxr.resilient`
#
# The service hangs on its first call, fails on the second and answers the
# third. The per-attempt timeout abandons the hanging call, the breaker
# counts every attempt, and the retry waits its backoff between them.

# %%
service = flaky(["profile"], failures=["hang", "fail", "ok"], latency=1.0)
scheduler = TestScheduler()  # the breaker keeps the pipeline's (virtual) clock
breaker = rxr.CircuitBreaker(
    failure_threshold=5, reset_timeout=30.0, scheduler=scheduler
)
fetch = rxr.resilient(
    timeout=2.0,
    retry=rxr.RetryPolicy(max_attempts=4, backoff=1.0),
    breaker=breaker,
    fallback=lambda error: rx.of("cached profile"),
)
trace = run(lambda: service.pipe(fetch), until=20, scheduler=scheduler)
print(service.subscriptions)
print(trace.marbles())
print(breaker.metrics())

# %%
ax = draw_timeline(
    {"service calls": [], "resilient(...)": trace},
    spans={"service calls": service.subscriptions},
    title="hang (timed out at 2 s) -> wait 1 s -> fail -> wait 1 s -> answer",
    until=10,
)
ax.figure.tight_layout()
plt.show()
