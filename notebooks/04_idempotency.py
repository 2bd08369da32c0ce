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
# # Idempotency: an operation keyed by an idempotency key runs once
#
# Duplicate requests, concurrent duplicates, key reuse with another payload,
# and a SQLite store surviving a restart.

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import draw_timeline, run

charges = []


def charge(order_id, amount, scheduler=None):
    """A payment call that takes 3 s and records every real charge."""

    def start(_):
        charges.append(order_id)
        return rx.timer(3.0, scheduler=scheduler).pipe(
            ops.map(lambda _: f"ch_{order_id}")
        )

    return rx.defer(start)


# %% [markdown]
# ## Sequential duplicates replay the record

# %%
store = rxr.InMemoryIdempotencyStore()
scheduler = TestScheduler()
payment = charge("o-1", 40, scheduler).pipe(
    rxr.idempotent(store, key="charge-o-1", payload=40, scheduler=scheduler)
)
first = run(lambda: payment, scheduler=scheduler)
second = run(lambda: payment, subscribe_at=10, scheduler=scheduler)
print(first.marbles(), "|", second.values, "| real charges:", charges)

# %% [markdown]
# ## Concurrent duplicates join the running execution

# %%
charges.clear()
scheduler = TestScheduler()
payment = charge("o-2", 15, scheduler).pipe(
    rxr.idempotent(
        rxr.InMemoryIdempotencyStore(), key="charge-o-2", scheduler=scheduler
    )
)
rows = {
    f"request at {at:g}s": run(
        lambda: payment, subscribe_at=at, until=at, scheduler=scheduler
    )
    for at in (0.0, 1.0, 2.5)
}
scheduler.advance_to(5)  # the charge ended at 3: its record is stored
rows["request at 6s (replay)"] = run(
    lambda: payment, subscribe_at=6, until=8, scheduler=scheduler
)
print("real charges:", charges)
ax = draw_timeline(
    rows, title="Four requests, one charge: joiners see the same answer", until=8
)
ax.figure.tight_layout()
plt.show()

# %% [markdown]
# ## The same key with another payload is refused

# %%
other = charge("o-2", 99).pipe(rxr.idempotent(store, key="charge-o-1", payload=99))
print(run(lambda: other).error)

# %% [markdown]
# ## A SQLite store survives a restart

# %%
folder = tempfile.mkdtemp()
path = os.path.join(folder, "idempotency.db")
charges.clear()
scheduler = TestScheduler()
before = rxr.SQLiteIdempotencyStore(path)
first = run(
    lambda: charge("o-3", 5, scheduler).pipe(
        rxr.idempotent(before, key="charge-o-3", scheduler=scheduler)
    ),
    scheduler=scheduler,
)
before.close()  # the process stops ...
after = rxr.SQLiteIdempotencyStore(path)  # ... and starts again
again = run(
    lambda: charge("o-3", 5, scheduler).pipe(
        rxr.idempotent(after, key="charge-o-3", scheduler=scheduler)
    ),
    subscribe_at=10,
    scheduler=scheduler,
)
print(first.values, again.values, "| real charges:", charges)
after.close()
