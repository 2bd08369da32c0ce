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
        width = max(time - start, 0.05)
        ax.broken_barh(
            [(start, width)], (y - 0.3, 0.6), color=colour, edgecolor="white"
        )
        if width >= 0.4:  # a name only where it fits inside its bar
            ax.text(start + 0.06, y, event.step, va="center", fontsize=9, color="white")
    print(
        f"{label:<17}",
        journal.state("o-1").status,
        [type(e).__name__ for _, e in published],
    )
ax.set_yticks(range(1, len(scenarios) + 1), [s[0] for s in reversed(scenarios)])
ax.set_xlabel("virtual time (s)")
ax.set_title("A failure compensates the steps that succeeded, newest first")
ax.legend(
    handles=[
        Patch(color=colours["forward"], label="step (forward)"),
        Patch(color=colours["failed"], label="failed or cancelled step"),
        Patch(color=colours["undo"], label="compensation (backward)"),
    ],
    loc="upper center",
    bbox_to_anchor=(0.5, -0.15),
    ncol=3,
    frameon=False,
)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## One owner at a time: leases and fencing
#
# A run owns its saga in the journal: it writes an owner token and
# `lease_until = now + lease` (`rxr.Saga(lease=30.0)`) and renews the lease
# every third of it while a step runs. `rxr.recover` takes a saga only once
# its lease has run out. Here a recoverer looks every 5 seconds.
#
# - **Top:** the `charge` step lasts 95 s, more than three leases. The owner
#   renews every 10 s, so the recoverer never takes the saga, and it
#   completes.
# - **Bottom:** the same run loses the journal from t = 5 (a network
#   partition): its renewals fail, its lease ends at t = 30, and the
#   recoverer takes the saga at t = 35 and compensates `charge` (it may have
#   happened). When `charge` ends at t = 95 the first owner's write is
#   refused: it starts no further step, writes nothing more, and its
#   subscriber gets `SagaOwnershipLostError`.


# %%
class Partitioned(rxr.InMemorySagaJournal):
    """A journal the first owner cannot reach between two instants."""

    def __init__(self, scheduler, down_from=None):
        super().__init__()
        self.scheduler, self.down_from, self.renewals = scheduler, down_from, []

    def renew(self, saga_id, now, *, owner, lease_until):
        unreachable = self.down_from is not None and now >= self.down_from
        self.renewals.append((now, not unreachable))
        if unreachable:
            raise ConnectionError("journal unreachable")
        return super().renew(saga_id, now, owner=owner, lease_until=lease_until)


def long_charge(scheduler, charged):
    return (
        rxr.Saga[Order]("order", lease=30.0, scheduler=scheduler)
        .step(
            "charge",
            lambda c: later(scheduler, 95.0, replace(c, payment="ch_1")),
            compensate=lambda c: later(scheduler, 3.0, None).pipe(
                ops.do_action(on_completed=lambda: charged.append("refunded")),
                ops.ignore_elements(),
            ),
            compensate_on_failure=True,
        )
        .step("ship", lambda c: later(scheduler, 1.0, replace(c, label="lbl_1")))
    )


fig, axes = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
for ax, down_from in zip(axes, [None, 5.0], strict=True):
    scheduler = TestScheduler()
    journal = Partitioned(scheduler, down_from)
    charged = []
    saga = long_charge(scheduler, charged)
    outcome = []
    saga.execute(Order("o-3"), journal=journal, saga_id="o-3").subscribe(
        on_error=lambda e, at=scheduler: outcome.append((at.clock, type(e).__name__)),
        on_completed=lambda at=scheduler: outcome.append((at.clock, "completed")),
        scheduler=scheduler,
    )
    looks, taken = [], []
    for at in range(5, 120, 5):
        scheduler.advance_to(float(at))
        events = rxr.recover(journal, {"order": saga}, scheduler=scheduler)
        events.subscribe(lambda e, at=at: taken.append((at, type(e).__name__)))
        looks.append(at)
    scheduler.advance_to(130.0)
    end = outcome[0][0]
    ax.broken_barh([(0, end)], (1.7, 0.6), color=colours["forward"])
    ax.text(1, 2, f"owner: charge … {outcome[0][1]}", va="center", color="white")
    for now, ok in journal.renewals:
        ax.plot(now, 2.45, "o" if ok else "x", color="green" if ok else "red")
    ax.plot(looks, [1] * len(looks), "|", color="grey")
    starts = [at for at, kind in taken if kind == "CompensationStarted"]
    for at in starts:
        ax.broken_barh([(at, 3.0)], (0.7, 0.6), color=colours["undo"])
        ax.annotate(  # above the looks' tick marks, not across them
            "recoverer takes it: refund",
            (at + 1.5, 1.3),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_yticks([1, 2], ["recoverer", "owner"])
    ax.set_ylim(0.3, 2.8)
    title = "no partition" if down_from is None else f"partitioned from t = {down_from}"
    ax.set_title(
        f"{title}: owner's renewals (o ok, x failed); recoverer looks every 5 s",
        fontsize=10,
    )
    print(f"{title:<24}", outcome, journal.state("o-3").status, charged)
axes[-1].set_xlabel("virtual time (s)")
fig.suptitle("Cut off from its journal, the owner loses its lease; a recoverer refunds")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A crash, and recovery from the journal
#
# The process stops while shipping runs (we simply never advance its clock
# again). A new process finds the saga in the SQLite journal and takes it
# once its lease (30 s from its last renewal) has run out: at t = 20 it is
# left alone, at t = 40 it is compensated. On Linux a recoverer on the same
# machine does not even wait: the owner token names the owner's process
# (boot id, PID namespace, pid and start time), and a saga whose process is
# gone is taken at once. Another machine, or another container, waits for
# the lease.

# %%
path = os.path.join(tempfile.mkdtemp(), "sagas.db")
crashed = TestScheduler()
journal = rxr.SQLiteSagaJournal(path)
build(crashed).execute(Order("o-7"), journal=journal, saga_id="order-o-7").subscribe(
    scheduler=crashed
)
crashed.advance_to(3.5)  # reserve and charge done, ship running ...
print(journal.state("order-o-7"))
print("lease until", journal.load("order-o-7").lease_until)
journal.close()  # ... and the process "dies" here (this one lives: it waits)

for at in (20.0, 40.0):
    restarted = TestScheduler(initial_clock=at)
    journal = rxr.SQLiteSagaJournal(path)
    trace = run(
        lambda: rxr.recover(journal, {"order": build(restarted)}),
        subscribe_at=at,
        scheduler=restarted,
    )
    print(f"at {at}:", [(type(e).__name__, e.step) for e in trace.values])
    print(journal.state("order-o-7"))
    journal.close()
