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
# # Optimistic updates with rollback
#
# A counter shown in a UI. Each click adds to it at once and commits to a
# server, which answers after a while, sometimes with a refusal. Pending
# updates are layers over the confirmed value: a failed layer is removed
# and the newer ones are re-applied, so an older failure never clobbers a
# newer success.

# %%
import matplotlib.pyplot as plt
import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

scheduler = TestScheduler()
counter = rxr.OptimisticState(0)
shown = []
counter.subscribe(lambda value: shown.append((scheduler.clock, value)))
confirmed = [(0.0, 0)]


def server(seconds, accept):
    def commit(value):
        answer = rx.of(value) if accept else rx.throw(OSError("409 conflict"))
        return rx.timer(seconds, scheduler=scheduler).pipe(
            ops.flat_map(lambda _: answer)
        )

    return commit


clicks = [  # (time, amount, server latency, accepted)
    (1.0, +1, 6.0, False),  # A: fails late
    (2.0, +10, 1.5, True),  # B: succeeds early
    (4.0, +5, 2.0, True),
    (7.0, -3, 4.0, False),
    (8.0, +2, 1.0, True),
]
for at, amount, latency, accepted in clicks:
    scheduler.schedule_absolute(
        at,
        lambda *_, amount=amount, latency=latency, accepted=accepted: counter.update(
            lambda n: n + amount, server(latency, accepted)
        ).subscribe(lambda ok: confirmed.append((scheduler.clock, counter.confirmed))),
    )
scheduler.advance_to(15)
print("displayed:", shown)
print("confirmed:", confirmed)

# %%
fig, ax = plt.subplots(figsize=(10, 4))
times = [t for t, _ in shown] + [15]
values = [v for _, v in shown] + [shown[-1][1]]
ax.step(times, values, where="post", label="displayed value", linewidth=2)
ctimes = [t for t, _ in confirmed] + [15]
cvalues = [v for _, v in confirmed] + [confirmed[-1][1]]
ax.step(ctimes, cvalues, where="post", label="confirmed value", linestyle="--")
for at, amount, latency, accepted in clicks:
    colour = "tab:red" if not accepted else "0.4"
    ax.axvline(at, color=colour, linestyle=":", linewidth=1)
    ax.annotate(  # above the axes, one label per click: nothing overlaps
        f"{amount:+d}{'' if accepted else ' fails'}",
        (at, 1),
        xycoords=("data", "axes fraction"),
        textcoords="offset points",
        xytext=(0, 4),
        ha="center",
        fontsize=8,
        color=colour,
    )
ax.set_title(
    "Clicks (dotted) show at once; a failed +1 is rolled back alone, under +10",
    pad=18,
)
ax.set_xlabel("virtual time (s)")
ax.set_ylabel("counter value")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
