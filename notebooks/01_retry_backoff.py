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
# # Retry with backoff and jitter
#
# `rxr.retry` resubscribes to a failing source, waiting between attempts. The
# waits come from a **backoff policy**: an immutable value that produces a
# delay sequence from a random generator you pass in. Everything below runs
# in virtual time.

# %%
import random

import matplotlib.pyplot as plt

import rxresilience as rxr
from rxresilience.testing import draw_timeline, flaky, run

# %% [markdown]
# ## Three ways to jitter
#
# Proportional jitter (`ExponentialBackoff`) adds up to 30 % to each delay;
# AWS's *full jitter* spreads a retry anywhere in the window; *decorrelated
# jitter* makes each delay depend on the previous one. Below: the delay
# before the 4th attempt, over 10,000 draws of each.

# %%
policies = {
    "proportional (ExponentialBackoff, jitter=0.3)": rxr.ExponentialBackoff(),
    "full jitter (FullJitterBackoff)": rxr.FullJitterBackoff(),
    "decorrelated jitter (DecorrelatedJitterBackoff)": rxr.DecorrelatedJitterBackoff(),
}
rng = random.Random(42)
edges = [k * 0.5 for k in range(62)]  # one set of 0.5 s bins: heights compare
fig, axes = plt.subplots(3, 1, figsize=(10, 5.6), sharex=True)
for ax, (label, policy), colour in zip(
    axes, policies.items(), ("tab:blue", "tab:orange", "tab:green"), strict=True
):
    draws = [policy.sample(4, rng)[3] for _ in range(10_000)]
    ax.hist(draws, bins=edges, color=colour, alpha=0.8)
    ax.set_title(label, fontsize=10, loc="left")
    ax.set_ylabel("draws")
axes[-1].set_xlabel("delay before the 4th attempt (s); max_delay=30 caps them all")
fig.suptitle(
    "Delay before the 4th attempt, 10,000 draws each: how far each jitter spreads"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# A seeded generator gives the same delays every run, and the cap applies
# after the jitter:

# %%
print(rxr.ExponentialBackoff(max_delay=5.0).sample(6, random.Random(1)))
print(rxr.ExponentialBackoff(max_delay=5.0).sample(6, random.Random(1)))

# %% [markdown]
# ## A retry timeline against a flaky source
#
# The source fails its first three calls, each answering after one second.
# `max_attempts` counts every subscription, the first included.

# %%
source = flaky(["user #42"], failures=3, latency=1.0)
trace = run(
    lambda: source.pipe(
        rxr.retry(
            max_attempts=5,
            backoff=rxr.ExponentialBackoff(base=1.0, factor=2.0, jitter=0.3),
            rng=random.Random(7),
        )
    )
)
print(source.subscriptions)
print(trace.marbles())

# %%
ax = draw_timeline(
    {"source calls": [], "retry(5)": trace},
    spans={"source calls": source.subscriptions},
    title="Attempts (shaded) and what the subscriber sees",
)
ax.figure.tight_layout()
plt.show()
