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
# # Property-testing your own pipeline with `rxresilience.testing`
#
# Our user's pipeline fetches a price with a retry and a per-attempt
# timeout. We check it with Hypothesis over generated flaky services, in
# virtual time, using the library's strategies and laws, then find (on
# purpose) a counterexample that Hypothesis shrinks to its simplest form.

# %%
import matplotlib.pyplot as plt
from hypothesis import given, settings
from hypothesis import strategies as st

import rxresilience as rxr
from rxresilience.testing import draw_timeline, flaky, laws, run
from rxresilience.testing import strategies as rst


def fetch_price(source):
    """The user's pipeline under test."""
    return source.pipe(
        rxr.timeout(3.0),
        rxr.retry(max_attempts=4, backoff=rxr.ConstantBackoff(1.0)),
    )


# %% [markdown]
# ## A property that holds
#
# For any service that fails at most 3 times (quickly or by hanging), the
# pipeline gets the price, after exactly failures + 1 calls.


# %%
@settings(max_examples=200, deadline=None)
@given(
    failures=st.lists(st.sampled_from(["fail", "hang"]), max_size=3),
    latency=st.sampled_from([0.0, 1.0, 2.0]),
)
def pipeline_gets_the_price(failures, latency):
    source = flaky([42], failures=[*failures, "ok"], latency=latency)
    trace = run(lambda: fetch_price(source), until=60)
    trace.assert_values(42).assert_completed()
    assert source.calls == len(failures) + 1


pipeline_gets_the_price()
print("held for 200 generated services")

# %% [markdown]
# The library's own laws work on user pipelines too:


# %%
@settings(max_examples=100, deadline=None)
@given(policy=rst.retry_policies(), failures=st.integers(0, 5))
def retry_law(policy, failures):
    laws.retry_succeeds_after_fewer_failures_than_attempts(policy, failures)


retry_law()
print("the retry law held")

# %% [markdown]
# ## A counterexample, found on purpose
#
# Claim: "the price always arrives within 10 s". It is false: with slow
# enough answers the attempts and backoffs add up. Hypothesis finds a
# failing service and **shrinks** it to the smallest one.

# %%
found = {}


@settings(max_examples=300, deadline=None, database=None)
@given(
    failures=st.lists(st.sampled_from(["fail", "hang"]), max_size=3),
    latency=st.sampled_from([0.0, 1.0, 2.0]),
)
def price_within_ten_seconds(failures, latency):
    source = flaky([42], failures=[*failures, "ok"], latency=latency)
    trace = run(lambda: fetch_price(source), until=60)
    found.update(failures=failures, latency=latency, trace=trace, source=source)
    assert trace.ended_at is not None and trace.ended_at <= 10.0, trace.marbles()


try:
    price_within_ten_seconds()
except AssertionError as error:
    print("counterexample:", found["failures"], "latency", found["latency"])
    print(str(error).splitlines()[0])

# %%
ax = draw_timeline(
    {"service calls": [], "fetch_price": found["trace"]},
    spans={"service calls": found["source"].subscriptions},
    title=f"The shrunk counterexample: {found['failures']} at latency {found['latency']} s",
    until=16,
)
ax.axvline(10.0, color="tab:red", linestyle="--", label="the claimed 10 s")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=5, frameon=False)
ax.figure.tight_layout()
plt.show()
