"""``VirtualTimeMachine``: a Hypothesis state machine that owns a ``TestScheduler``."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from reactivex.testing import TestScheduler

from ._trace import assert_no_pending

__all__ = ["VirtualTimeMachine"]


class VirtualTimeMachine(RuleBasedStateMachine):
    """A ``RuleBasedStateMachine`` with a virtual clock.

    It brings an ``advance`` rule (round steps of virtual time, so schedules
    hit deadlines exactly) and a teardown that fails if anything is left
    pending on the scheduler: dispose your subscriptions in ``teardown``
    before calling ``super().teardown()``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scheduler = TestScheduler()

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0, 30.0]))
    def advance(self, seconds: float) -> None:
        self.scheduler.advance_by(seconds)

    def teardown(self) -> None:
        assert_no_pending(self.scheduler)
