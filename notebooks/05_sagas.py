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
# # The order saga
#
# Three steps: reserve inventory, charge the payment, create the shipping
# label. When a step fails, the succeeded steps are compensated in reverse,
# as a stream of events; a journal lets a crashed saga be recovered.

# %%
import os
import tempfile
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr
from rxresilience.testing import run


@dataclass(frozen=True)
class Order:
    id: str
    reserved: bool = False
    payment: str | None = None
    label: str | None = None


def later(scheduler, seconds, value):
    return rx.timer(seconds, scheduler=scheduler).pipe(ops.map(lambda _: value))


def build(scheduler, failing=None):
    def step(name, seconds, make):
        def execute(ctx):
            if name == failing:
                return later(scheduler, seconds, None).pipe(
                    ops.flat_map(lambda _: rx.throw(RuntimeError(f"{name} failed")))
                )
            return later(scheduler, seconds, make(ctx))

        return execute

    return (
        rxr.Saga[Order]("order")
        .step(
            "reserve",
            step("reserve", 1.0, lambda c: replace(c, reserved=True)),
            compensate=lambda c: later(scheduler, 0.5, "released").pipe(
                ops.ignore_elements()
            ),
        )
        .step(
            "charge",
            step("charge", 2.0, lambda c: replace(c, payment="ch_1")),
            compensate=lambda c: later(scheduler, 1.0, "refunded").pipe(
                ops.ignore_elements()
            ),
        )
        .step("ship", step("ship", 1.5, lambda c: replace(c, label="lbl_1")))
    )


# %% [markdown]
# ## Success, and a failure at each step

# %%
fig, ax = plt.subplots(figsize=(11, 4.5))
colours = {
    "StepStarted": "tab:blue",
    "StepSucceeded": "tab:green",
    "StepFailed": "tab:red",
    "CompensationStarted": "tab:orange",
    "StepCompensated": "tab:olive",
    "SagaCompleted": "black",
}
scenarios = [None, "reserve", "charge", "ship"]
for row, failing in enumerate(scenarios):
    scheduler = TestScheduler()
    trace = run(
        lambda: build(scheduler, failing).execute(Order("o-1")), scheduler=scheduler
    )
    y = len(scenarios) - row
    for time, kind, event in trace.events:
        if kind != "next":
            continue
        name = type(event).__name__
        ax.plot(time, y, "o", color=colours[name], markersize=9)
        ax.annotate(
            f"{name}\n{getattr(event, 'step', '')}",
            (time, y),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=6,
        )
    print(
        f"fails at {failing or 'nothing':<8}", [type(e).__name__ for e in trace.values]
    )
ax.set_yticks(
    range(1, len(scenarios) + 1),
    [f"fails at {f}" if f else "succeeds" for f in reversed(scenarios)],
)
ax.set_xlabel("virtual time (s)")
ax.set_title(
    "The event stream of the order saga: forward, then compensations in reverse"
)
for name, colour in colours.items():
    ax.plot([], [], "o", color=colour, label=name)
ax.legend(loc="lower right", fontsize=7, ncol=3)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A crash, and recovery from the journal
#
# The process stops while shipping runs (we simply never advance its clock
# again). A new process finds the saga in the SQLite journal, sees it has
# been silent for longer than `stale_after`, and compensates it.

# %%
path = os.path.join(tempfile.mkdtemp(), "sagas.db")
crashed = TestScheduler()
journal = rxr.SQLiteSagaJournal(path)
build(crashed).execute(Order("o-7"), journal=journal, saga_id="order-o-7").subscribe(
    scheduler=crashed
)
crashed.advance_to(3.5)  # reserve and charge done, ship running ...
print(journal.state("order-o-7"))
journal.close()  # ... and the process dies here

restarted = TestScheduler(initial_clock=120.0)
journal = rxr.SQLiteSagaJournal(path)
trace = run(
    lambda: rxr.recover(journal, {"order": build(restarted)}, stale_after=60.0),
    subscribe_at=120.0,
    scheduler=restarted,
)
for event in trace.values:
    print(type(event).__name__, event.step)
print(journal.state("order-o-7"))
journal.close()
