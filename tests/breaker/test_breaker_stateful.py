"""Random calls, outcomes, disposals and clock moves against a reference model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import reactivex as rx
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from reactivex import abc
from reactivex.testing import TestScheduler

import rxresilience as rxr

THRESHOLD = 2
RESET = 10.0
TRIALS = 2


class Boom(Exception):
    pass


class Ignored(Exception):
    pass


@dataclass
class ModelCall:
    generation: int
    trial: bool
    emitted: bool = False
    settled: bool = False


@dataclass
class Model:
    """The classic breaker, written as plainly as possible."""

    state: str = "closed"
    generation: int = 0
    opened_at: float = 0.0
    consecutive: int = 0
    trials_taken: int = 0
    trial_successes: int = 0
    successes: int = 0
    failures: int = 0
    ignored: int = 0
    rejected: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)

    def move(self, target: str, now: float) -> None:
        self.log.append((self.state, target))
        self.state = target
        self.generation += 1
        if target == "open":
            self.opened_at = now
        if target == "half-open":
            self.trials_taken = self.trial_successes = 0
        if target == "closed":
            self.consecutive = 0

    def admit(self, now: float) -> ModelCall | float | None:
        if self.state in ("closed", "disabled"):
            return ModelCall(self.generation, trial=False)
        if self.state == "forced-open":
            self.rejected += 1
            return None
        if self.state == "open":
            if now < self.opened_at + RESET:
                self.rejected += 1
                return self.opened_at + RESET - now
            self.move("half-open", now)
        if self.trials_taken < TRIALS:
            self.trials_taken += 1
            return ModelCall(self.generation, trial=True)
        self.rejected += 1
        return RESET / 10  # come back in a tenth of the reset timeout

    def settle(self, call: ModelCall, outcome: str, now: float) -> None:
        if call.settled:
            return
        call.settled = True
        if outcome == "success":
            self.successes += 1
        elif outcome == "failure":
            self.failures += 1
        else:
            self.ignored += 1
        if call.generation != self.generation:
            return
        if call.trial:
            if outcome == "neither":
                self.trials_taken -= 1
            elif outcome == "failure":
                self.move("open", now)
            else:
                self.trial_successes += 1
                if self.trial_successes == TRIALS:
                    self.move("closed", now)
        elif self.state == "closed" and outcome != "neither":
            self.consecutive = self.consecutive + 1 if outcome == "failure" else 0
            if self.consecutive >= THRESHOLD:
                self.move("open", now)


@dataclass
class RealCall:
    model: ModelCall
    observer: abc.ObserverBase[int]
    subscription: abc.DisposableBase


class BreakerMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.scheduler = TestScheduler()
        self.breaker = self.make_breaker(
            failure_threshold=THRESHOLD,
            reset_timeout=RESET,
            half_open_max_calls=TRIALS,
            ignore=Ignored,
            scheduler=self.scheduler,
        )
        self.model = Model()
        self.open_calls: list[RealCall] = []
        self.seen: list[rxr.StateChange] = []
        self.breaker.state_changes.subscribe(self.seen.append)

    def make_breaker(self, **settings: Any) -> rxr.CircuitBreaker:
        """The breaker under test (a subclass may keep its state elsewhere)."""
        return rxr.CircuitBreaker(**settings)

    @property
    def now(self) -> float:
        return float(self.scheduler.clock)

    @rule()
    def start_call(self) -> None:
        expected = self.model.admit(self.now)
        holder: list[abc.ObserverBase[int]] = []
        errors: list[Exception] = []

        def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> None:
            holder.append(observer)

        subscription = (
            rx.create(subscribe)
            .pipe(rxr.circuit_breaker(self.breaker))
            .subscribe(on_error=errors.append)
        )
        if isinstance(expected, ModelCall):
            assert len(holder) == 1, "the model admits this call"
            assert errors == []
            self.open_calls.append(RealCall(expected, holder[0], subscription))
            return
        assert holder == [], "the model refuses this call: no subscription"
        [error] = errors
        assert isinstance(error, rxr.CircuitOpenError)
        if expected is None:
            assert error.retry_after is None
        else:
            assert error.retry_after is not None
            assert abs(error.retry_after - expected) < 1e-6

    @rule(outcome=st.sampled_from(["success", "failure"]))
    def quick_call(self, outcome: str) -> None:
        """A call that starts and ends at once: reaches deep states in few steps."""
        before = len(self.open_calls)
        self.start_call()
        if len(self.open_calls) > before:
            self.end_call(len(self.open_calls) - 1, outcome)

    @precondition(lambda self: bool(getattr(self, "open_calls", None)))
    @rule(
        index=st.integers(min_value=0, max_value=5),
        outcome=st.sampled_from(["success", "failure", "ignored", "dispose", "emit"]),
    )
    def end_call(self, index: int, outcome: str) -> None:
        call = self.open_calls[index % len(self.open_calls)]
        if outcome == "emit":
            call.model.emitted = True
            call.observer.on_next(1)
            return
        self.open_calls.remove(call)
        now = self.now
        if outcome == "success":
            self.model.settle(call.model, "success", now)
            call.observer.on_next(1)
            call.observer.on_completed()
        elif outcome == "failure":
            self.model.settle(call.model, "failure", now)
            call.observer.on_error(Boom())
        elif outcome == "ignored":
            self.model.settle(call.model, "neither", now)
            call.observer.on_error(Ignored())
        else:
            settled = "success" if call.model.emitted else "neither"
            self.model.settle(call.model, settled, now)
            call.subscription.dispose()

    @rule(seconds=st.sampled_from([RESET, 0.5, RESET - 0.5, RESET + 1]))
    def advance(self, seconds: float) -> None:
        self.scheduler.advance_by(seconds)

    @rule(
        action=st.sampled_from(
            ["force_open", "disable", "reset", "none", "none", "none", "none", "none"]
        )
    )
    def control(self, action: str) -> None:
        """Manual control, now and then (most draws do nothing, to reach depth)."""
        if action == "none":
            return
        target = {"force_open": "forced-open", "disable": "disabled", "reset": "closed"}
        if action == "reset":
            self.model.successes = self.model.failures = 0
            self.model.ignored = self.model.rejected = 0
            self.model.consecutive = 0
        if self.model.state != target[action]:
            self.model.move(target[action], self.now)
        elif action == "reset":  # no transition, but calls before it are fenced
            self.model.generation += 1
        getattr(self.breaker, action)()

    @invariant()
    def same_state_and_counts(self) -> None:
        if not hasattr(self, "breaker"):
            return
        metrics = self.breaker.metrics()
        model = self.model
        assert metrics.state.value == model.state
        assert (
            metrics.successes,
            metrics.failures,
            metrics.ignored,
            metrics.rejected,
        ) == (
            model.successes,
            model.failures,
            model.ignored,
            model.rejected,
        )
        assert [(c.previous.value, c.current.value) for c in self.seen] == model.log

    @invariant()
    def legal_transitions_only(self) -> None:
        legal = {
            ("closed", "open"),
            ("open", "half-open"),
            ("half-open", "open"),
            ("half-open", "closed"),
        }
        for change in getattr(self, "seen", []):
            manual = change.reason in ("forced open", "disabled", "reset")
            assert manual or (change.previous.value, change.current.value) in legal


BreakerMachine.TestCase.settings = settings(
    max_examples=500 if os.environ.get("CI") else 200,
    stateful_step_count=50,
    deadline=None,
)
TestBreakerAgainstModel = BreakerMachine.TestCase
