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
from matplotlib.patches import Patch
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
# ## Success, a failure at each step, and a disposal
#
# Each bar is a step (forward) or a compensation (backward) over virtual
# time. The last row disposes the subscription while `charge` runs: the
# running step is cancelled, no further step starts, and `reserve` is still
# compensated to the end (its events go to `saga.events` and the journal).

# %%
colours = {"forward": "tab:blue", "failed": "tab:red", "undo": "tab:orange"}
scenarios = [
    ("succeeds", None, None),
    ("fails at reserve", "reserve", None),
    ("fails at charge", "charge", None),
    ("fails at ship", "ship", None),
    ("disposed at 2.0", None, 2.0),
]
fig, ax = plt.subplots(figsize=(11, 4.5))
for row, (label, failing, dispose_at) in enumerate(scenarios):
    scheduler = TestScheduler()
    saga = build(scheduler, failing)
    published = []
    saga.events.subscribe(
        lambda event, at=scheduler: published.append((at.clock, event))
    )
    journal = rxr.InMemorySagaJournal()
    run(
        lambda: saga.execute(Order("o-1"), journal=journal, saga_id="o-1"),
        dispose_at=dispose_at,
        until=20.0,
        scheduler=scheduler,
    )
    y = len(scenarios) - row
    opened = {}
    for time, event in published:
        kind = type(event).__name__
        if kind in ("StepStarted", "CompensationStarted"):
            opened[(kind == "StepStarted", event.step)] = time
            continue
        forward = kind in ("StepSucceeded", "StepFailed")
        start = opened.pop((forward, getattr(event, "step", "")), None)
        if start is None:
            continue
        colour = (
            colours["undo"]
            if not forward
            else colours["failed"]
            if kind == "StepFailed"
            else colours["forward"]
        )
        bar = [(start, max(time - start, 0.05))]
        ax.broken_barh(bar, (y - 0.3, 0.6), color=colour, edgecolor="white")
        ax.text(start + 0.05, y, event.step, va="center", fontsize=7, color="white")
    print(
        f"{label:<17}",
        journal.state("o-1").status,
        [type(e).__name__ for _, e in published],
    )
ax.set_yticks(range(1, len(scenarios) + 1), [s[0] for s in reversed(scenarios)])
ax.set_xlabel("virtual time (s)")
ax.set_title("The order saga: steps forward, then compensations backward")
ax.legend(
    handles=[
        Patch(color=colours["forward"], label="step"),
        Patch(color=colours["failed"], label="failed or cancelled step"),
        Patch(color=colours["undo"], label="compensation"),
    ],
    loc="lower right",
    fontsize=7,
)
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
