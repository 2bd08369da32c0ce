"""The rxresilience demo: 1,000 orders through a saga against unreliable services.

Every call to inventory, payment and shipping goes through ``rxr.resilient``
(per-attempt timeout, retry with jittered backoff, a circuit breaker per
service). Payments are idempotent on the payment service's side (a SQLite
store), so a retry after a lost response never charges twice. Shipping goes
down for a while; the breaker opens and those orders are compensated
(refund, release). Mid-run the order process "crashes": whatever it had in
flight is recovered from the SQLite saga journal by the next process.

Everything runs in virtual time on a ``TestScheduler``: minutes of simulated
traffic take seconds, and a seed gives the same run every time.

    python examples/orders_demo.py [--orders 1000] [--seed 7] [--out demo-output]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import reactivex as rx
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import rxresilience as rxr

ARRIVAL_GAP = 0.25  # virtual seconds between orders
SHIPPING_DOWN = (0.30, 0.42)  # fraction of the run during which shipping is down
CRASH_AT = 0.60  # fraction of the orders after which the order process crashes
RESTART_TAKES = 45.0  # virtual seconds before the new process recovers


class ServiceDown(Exception):
    """A service answered 503."""


# --- the outside world: simulated services -------------------------------------------


@dataclass
class Service:
    """A remote service: latency, random failures, rare hangs, and down windows."""

    name: str
    scheduler: TestScheduler
    rng: random.Random
    latency: float
    failure_rate: float
    slow_rate: float = 0.0
    down: tuple[float, float] | None = None
    calls: list[tuple[float, bool]] = field(default_factory=list)  # (time, failed)

    def call(self, work: Callable[[], Any]) -> rx.Observable[Any]:
        """One request: after its latency, ``work()`` answers, or the call fails."""

        def start(_: Any) -> rx.Observable[Any]:
            now = self.scheduler.clock
            is_down = self.down is not None and self.down[0] <= now < self.down[1]
            fails = is_down or self.rng.random() < self.failure_rate
            slow = self.rng.random() < self.slow_rate
            latency = self.latency * (0.5 + self.rng.random()) + (3.0 if slow else 0.0)
            self.calls.append((now, fails))
            answer = (
                rx.throw(ServiceDown(f"{self.name}: 503"))
                if fails
                else rx.defer(lambda _: rx.of(work()))
            )
            return rx.timer(latency, scheduler=self.scheduler).pipe(
                ops.flat_map(lambda _: answer)
            )

        return rx.defer(start)


@dataclass
class Ledger:
    """The payment provider's books: every charge and refund, by order."""

    charges: collections.Counter[str] = field(default_factory=collections.Counter)
    refunds: collections.Counter[str] = field(default_factory=collections.Counter)
    requests_by_key: collections.Counter[str] = field(
        default_factory=collections.Counter
    )
    attempts_by_key: collections.Counter[str] = field(
        default_factory=collections.Counter
    )


class PaymentService:
    """Charges are idempotent on the provider's side, keyed by the saga step's key."""

    def __init__(self, service: Service, store: rxr.IdempotencyStore) -> None:
        self.service = service
        self.store = store
        self.ledger = Ledger()

    def charge(self, order_id: str, amount: int, key: str) -> rx.Observable[str]:
        def book() -> str:
            self.ledger.charges[order_id] += 1
            return f"pay-{order_id}"

        # The provider finishes a charge even when the client has given up on it
        # (finish_on_dispose): a retry with the same key gets the recorded answer.
        def attempt(_: Any) -> rx.Observable[str]:
            self.ledger.attempts_by_key[key] += 1  # the provider really tries to charge
            return self.service.call(book)

        charge = rx.defer(attempt).pipe(
            rxr.idempotent(
                self.store,
                key=key,
                payload={"order": order_id, "amount": amount},
                finish_on_dispose=True,
                scheduler=self.service.scheduler,
            )
        )

        def request(_: Any) -> rx.Observable[str]:
            self.ledger.requests_by_key[key] += 1  # every attempt is a request
            return charge

        return rx.defer(request)

    def refund(self, order_id: str, key: str) -> rx.Observable[str]:
        def book() -> str:
            self.ledger.refunds[order_id] += 1
            return "refunded"

        return self.service.call(book).pipe(
            rxr.idempotent(
                self.store,
                key=key,
                finish_on_dispose=True,
                scheduler=self.service.scheduler,
            )
        )


# --- the order process ------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    id: str
    amount: int
    items: int


@dataclass(frozen=True)
class OrderContext:
    order: Order
    reserved: bool = False
    payment_id: str | None = None
    label: str | None = None


class OrderProcess:
    """One process of the order service: its breakers, its saga, its journal.

    ``crash()`` kills it: from then on it neither calls services nor writes to
    its journal, and whatever it had in flight just stops, as in a real crash.
    """

    def __init__(
        self,
        world: World,
        journal_path: str,
        seed: int,
    ) -> None:
        self.world = world
        self.alive = True
        self.journal = _CrashableJournal(rxr.SQLiteSagaJournal(journal_path), self)
        self.retries = 0
        scheduler = world.scheduler
        self.breakers = {
            name: rxr.CircuitBreaker(
                failure_threshold=5,
                reset_timeout=10.0,
                half_open_max_calls=2,
                scheduler=scheduler,
                # the crashed process's breakers are still alive in this one
                # Python process: each process names its own telemetry series
                name=f"{name}-{seed}",
            )
            for name in ("inventory", "payment", "shipping")
        }
        for name, breaker in self.breakers.items():
            breaker.state_changes.subscribe(
                lambda change, name=name: world.breaker_log.append(
                    (change.at, name, change.current.value)
                )
            )
        rng = random.Random(seed)
        self.protect = {
            name: rxr.resilient(
                timeout=2.0,
                retry=rxr.RetryPolicy(
                    max_attempts=4,
                    backoff=rxr.ExponentialBackoff(base=0.5, max_delay=8.0, jitter=0.3),
                    rng=rng,
                    on_retry=self._count_retry,
                ),
                breaker=breaker,
            )
            for name, breaker in self.breakers.items()
        }
        self.saga = self._build_saga()

    def _count_retry(self, _: rxr.RetryEvent) -> None:
        self.retries += 1

    def _call(self, service: str, request: rx.Observable[Any]) -> rx.Observable[Any]:
        """A protected call, unless this process has crashed (then nothing happens)."""

        def start(_: Any) -> rx.Observable[Any]:
            return request.pipe(self.protect[service]) if self.alive else rx.never()

        return rx.defer(start)

    def _build_saga(self) -> rxr.Saga[OrderContext]:
        world = self.world
        inventory, shipping, payments = world.inventory, world.shipping, world.payments
        return (
            rxr.Saga[OrderContext]("order")
            .step(
                "reserve_inventory",
                execute=lambda ctx: self._call(
                    "inventory", inventory.call(lambda: True)
                ).pipe(ops.map(lambda _: replace(ctx, reserved=True))),
                compensate=lambda ctx: self._call(
                    "inventory", inventory.call(lambda: True)
                ),
                compensation_retry=rxr.RetryPolicy(max_attempts=None, backoff=5.0),
            )
            .step(
                "process_payment",
                execute=lambda ctx, key: self._call(
                    "payment", payments.charge(ctx.order.id, ctx.order.amount, key)
                ).pipe(ops.map(lambda pid: replace(ctx, payment_id=pid))),
                compensate=lambda ctx, key: self._call(
                    "payment", payments.refund(ctx.order.id, key)
                ),
                compensation_retry=rxr.RetryPolicy(max_attempts=None, backoff=5.0),
            )
            .step(
                "create_shipping",
                execute=lambda ctx: self._call(
                    "shipping", shipping.call(lambda: f"label-{ctx.order.id}")
                ).pipe(ops.map(lambda label: replace(ctx, label=label))),
            )
        )

    def place(self, order: Order) -> None:
        world = self.world
        saga_id = f"order-{order.id}"
        world.outcomes[order.id] = "in flight"

        def done(_: Any) -> None:
            world.outcomes[order.id] = "completed"

        def failed(_: Exception) -> None:
            world.outcomes[order.id] = "compensated"

        self.saga.run(
            OrderContext(order), journal=self.journal, saga_id=saga_id
        ).subscribe(done, failed, scheduler=world.scheduler)

    def crash(self) -> None:
        self.alive = False

    def recover(self) -> None:
        """Compensate what a crashed process left in the journal."""
        rxr.recover(self.journal, {"order": self.saga}).subscribe(
            lambda event: self.world.recovered.add(event.saga_id),
            scheduler=self.world.scheduler,
        )


class _CrashableJournal(rxr.SagaJournal):
    """The process's view of its journal: a crashed process writes nothing more."""

    def __init__(self, journal: rxr.SagaJournal, process: OrderProcess) -> None:
        self._journal = journal
        self._process = process

    def _check(self) -> None:
        if not self._process.alive:
            raise RuntimeError("the process has crashed")

    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        self._check()
        self._journal.begin(saga_id, saga_name, now)

    def append(self, saga_id: str, entry: rxr.JournalEntry, now: float) -> None:
        self._check()
        self._journal.append(saga_id, entry, now)

    def finish(self, saga_id: str, status: str, now: float) -> None:
        self._check()
        self._journal.finish(saga_id, status, now)

    def load(self, saga_id: str) -> rxr.SagaRecord | None:
        return self._journal.load(saga_id)

    def unfinished(self) -> list[str]:
        return self._journal.unfinished()

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        self._check()
        return self._journal.claim_stale(saga_id, now, stale_before)

    # Ownership: one owner at a time, every write fenced on its token.
    def begin_owned(
        self,
        saga_id: str,
        saga_name: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
    ) -> None:
        self._check()
        self._journal.begin_owned(
            saga_id, saga_name, now, owner=owner, lease_until=lease_until
        )

    def append_owned(
        self, saga_id: str, entry: rxr.JournalEntry, now: float, *, owner: str
    ) -> bool:
        self._check()
        return self._journal.append_owned(saga_id, entry, now, owner=owner)

    def finish_owned(
        self, saga_id: str, status: str, now: float, *, owner: str
    ) -> bool:
        self._check()
        return self._journal.finish_owned(saga_id, status, now, owner=owner)

    def take(
        self,
        saga_id: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
        stale_before: float,
        gone_owner: str | None = None,
    ) -> bool:
        self._check()
        return self._journal.take(
            saga_id,
            now,
            owner=owner,
            lease_until=lease_until,
            stale_before=stale_before,
            gone_owner=gone_owner,
        )

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        self._check()
        return self._journal.renew(saga_id, now, owner=owner, lease_until=lease_until)

    def close(self) -> None:
        self._journal.close()


@dataclass
class World:
    scheduler: TestScheduler
    inventory: Service
    payments: PaymentService
    shipping: Service
    outcomes: dict[str, str] = field(default_factory=dict)
    breaker_log: list[tuple[float, str, str]] = field(default_factory=list)
    recovered: set[str] = field(default_factory=set)
    crashed_at: float | None = None


# --- running it ---------------------------------------------------------------------------


class EventCounts:
    """How many events of each kind ``rxr.telemetry.events()`` delivered.

    The stream delivers on whichever thread emits (a timer's, a store's), so
    the count is kept under a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def __call__(self, event: rxr.TelemetryEvent) -> None:
        with self._lock:
            self._counts[event.kind] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far, by kind in alphabetical order."""
        with self._lock:
            return dict(sorted(self._counts.items()))


class ProgressDisplay:
    """How far the run is: a ``rich`` bar on a terminal, else a line per step.

    A log (CI, a pipe, a file) gets one plain line each time another 10 % of
    the orders is done, or 5 s of wall time went by, whichever comes first:
    no carriage returns, nothing to redraw.
    """

    def __init__(
        self, total: int, stream: Any = None, *, terminal: bool | None = None
    ) -> None:
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.started = time.perf_counter()
        self._next_share = 0.1
        self._next_time = self.started + 5.0
        self._bar: Any = None
        if self.terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("  orders"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream, force_terminal=True),
            )
            self._task = self._bar.add_task("orders", total=total)
            self._bar.start()

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            return
        now = time.perf_counter()
        if done / self.total + 1e-9 >= self._next_share or now >= self._next_time:
            self.stream.write(
                f"  {done:>5}/{self.total} orders ({100 * done // self.total:>3} %)"
                f"  {now - self.started:5.1f}s\n"
            )
            self.stream.flush()
            while self._next_share <= done / self.total + 1e-9:
                self._next_share += 0.1
            self._next_time = now + 5.0

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def simulate(orders: int, seed: int, folder: str) -> dict[str, Any]:
    scheduler = TestScheduler()
    rng = random.Random(seed)
    horizon = orders * ARRIVAL_GAP
    down = (SHIPPING_DOWN[0] * horizon, SHIPPING_DOWN[1] * horizon)
    payments_store = rxr.SQLiteIdempotencyStore(os.path.join(folder, "payments.db"))
    world = World(
        scheduler=scheduler,
        inventory=Service(
            "inventory", scheduler, random.Random(rng.random()), 0.2, 0.03
        ),
        payments=PaymentService(
            Service(
                "payment",
                scheduler,
                random.Random(rng.random()),
                0.4,
                0.05,
                slow_rate=0.04,
            ),
            payments_store,
        ),
        shipping=Service(
            "shipping", scheduler, random.Random(rng.random()), 0.3, 0.02, down=down
        ),
    )
    journal_path = os.path.join(folder, "sagas.db")
    process = OrderProcess(world, journal_path, seed)
    crash_after = int(orders * CRASH_AT)
    observed = EventCounts()
    listening = rxr.telemetry.events().subscribe(observed)
    shown = ProgressDisplay(orders)
    for index in range(orders):
        if index == crash_after:
            process.crash()  # in-flight sagas stop where they are
            world.crashed_at = scheduler.clock
            process.journal.close()
            scheduler.advance_by(RESTART_TAKES)  # the world goes on while we restart
            process = OrderProcess(world, journal_path, seed + 1)
            process.recover()
        order = Order(
            f"{index:05d}", amount=10 + rng.randrange(90), items=1 + rng.randrange(4)
        )
        process.place(order)
        scheduler.advance_by(ARRIVAL_GAP)
        shown.update(index + 1)
    scheduler.advance_by(600.0)  # let everything in flight finish
    shown.close()
    listening.dispose()
    journal = rxr.SQLiteSagaJournal(journal_path)
    final: collections.Counter[str] = collections.Counter()
    for index in range(orders):
        state = journal.state(f"order-{index:05d}")
        final[state.status if state is not None else "missing"] += 1
    journal.close()
    payments_store.close()
    ledger = world.payments.ledger
    double = sum(
        1
        for index in range(orders)
        if ledger.charges[f"{index:05d}"] - ledger.refunds[f"{index:05d}"] > 1
        or ledger.charges[f"{index:05d}"] > 1
    )
    completed_without_charge = sum(
        1
        for index in range(orders)
        if final
        and world.outcomes.get(f"{index:05d}") == "completed"
        and ledger.charges[f"{index:05d}"] - ledger.refunds[f"{index:05d}"] != 1
    )
    return {
        "orders": orders,
        "completed": final["completed"],
        "compensated": final["compensated"],
        "not finished": orders - final["completed"] - final["compensated"],
        "recovered after the crash": len(world.recovered),
        "retries": process.retries,
        "breaker openings": sum(
            1 for _, _, state in world.breaker_log if state == "open"
        ),
        "duplicate charges avoided": sum(
            n - 1 for n in ledger.requests_by_key.values() if n > 1
        ),
        "double charges": double + completed_without_charge,
        "virtual seconds": round(scheduler.clock, 1),
        "wall seconds": round(time.perf_counter() - shown.started, 2),
        "_world": world,
        "_events": observed.snapshot(),
    }


def draw(summary: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    world: World = summary["_world"]
    services = (world.inventory, world.payments.service, world.shipping)
    end = max(at for service in services for at, _ in service.calls) + 10.0
    figure, (states, rates) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    levels = {"closed": 0, "half-open": 1, "open": 2}
    for offset, name in enumerate(("inventory", "payment", "shipping")):
        points = [(0.0, "closed")] + [
            (t, s) for t, n, s in world.breaker_log if n == name
        ]
        times = [t for t, _ in points] + [end]
        values = [levels.get(s, 0) + offset * 0.05 for _, s in points]
        values.append(values[-1])
        states.step(times, values, where="post", label=name)
    for axes in (states, rates):
        down = world.shipping.down
        if down is not None:
            axes.axvspan(*down, color="tab:red", alpha=0.12, label="shipping down")
        if world.crashed_at is not None:
            axes.axvline(world.crashed_at, color="black", linestyle="--", label="crash")
    states.set_xlim(0, end)
    states.set_yticks([0, 1, 2], ["closed", "half-open", "open"])
    states.set_title(
        "Circuit breaker state per service: shipping's opens while shipping is down"
    )
    states.set_ylabel("state")
    states.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    bucket = 10.0
    for service in services:
        counts: collections.Counter[int] = collections.Counter()
        failures: collections.Counter[int] = collections.Counter()
        for at, failed in service.calls:
            counts[int(at // bucket)] += 1
            failures[int(at // bucket)] += failed
        keys = sorted(counts)
        # each bucket's rate held across its 10 s (a bucket with no call is a gap)
        rates.step(
            [k * bucket for k in keys],
            [100 * failures[k] / counts[k] for k in keys],
            where="post",
            label=service.name,
        )
    rates.set_title(
        f"Failure rate of the calls that reached each service ({bucket:g} s buckets)"
    )
    rates.set_xlabel("virtual time (s)")
    rates.set_ylabel("failed calls (%)")
    rates.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--orders", type=int, default=1000, help="how many orders (default 1000)"
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="the random seed (default 7)"
    )
    parser.add_argument("--out", default="demo-output", help="where the PNG goes")
    args = parser.parse_args(argv)
    if args.orders < 10:
        parser.error("--orders must be at least 10")
    os.makedirs(args.out, exist_ok=True)
    print(f"rxresilience demo: {args.orders} orders, seed {args.seed}")
    with tempfile.TemporaryDirectory() as folder:
        summary = simulate(args.orders, args.seed, folder)
    png = os.path.join(args.out, "breaker-timeline.png")
    draw(summary, png)
    print()
    print(f"  {'what':<28} {'how many':>10}")
    print(f"  {'-' * 28} {'-' * 10}")
    for key, value in summary.items():
        if not key.startswith("_"):
            print(f"  {key:<28} {value:>10}")
    print("\n  telemetry events seen (rxr.telemetry.events())")
    for kind, count in summary["_events"].items():
        print(f"  {kind:<28} {count:>10}")
    print(f"\n  timeline: {png}")
    ok = summary["double charges"] == 0 and summary["not finished"] == 0
    print(
        "  every order completed or fully compensated, no double charge"
        if ok
        else "  PROBLEM"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
