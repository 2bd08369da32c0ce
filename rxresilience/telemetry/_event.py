"""``rxr.TelemetryEvent`` and the closed list of event kinds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["KINDS", "NO_ATTRIBUTES", "TelemetryEvent"]

#: Every kind of event the library emits, a closed list: ``events(kinds=...)``
#: refuses any other. ``policy`` is the emitting object's ``name``.
#:
#: - ``retry.scheduled``: an attempt failed and another is scheduled
#:   (``attempt`` is the failed one; ``attributes["delay"]`` in seconds).
#: - ``retry.refusal_waited``: a refusal (``CallRefusedError``) is waited out
#:   (``attributes["delay"]``); no attempt is used.
#: - ``retry.exhausted``: the attempts, the time budget or the refusal budget
#:   ran out; the error is delivered.
#: - ``retry.gave_up``: ``should_retry`` said no (not retryable).
#: - ``breaker.succeeded`` / ``breaker.failed``: a call settled as a success or
#:   a recorded failure (``duration`` from admission; ``attributes["state"]``
#:   the state it settled in). Calls that count as neither emit nothing.
#: - ``breaker.refused``: a call was refused (``attributes["state"]``,
#:   ``attributes["retry_after"]``).
#: - ``breaker.state_changed``: a transition (``attributes``: ``previous``,
#:   ``state``, ``reason``), in transition order.
#: - ``timeout.expired``: a budget ran out (``attributes["budget"]``:
#:   ``"first"``, ``"each"`` or ``"total"``; ``duration`` its seconds).
#: - ``fallback.used``: an error was replaced.
#: - ``idempotency.claimed`` / ``.replayed`` / ``.joined`` / ``.claim_lost`` /
#:   ``.codec_error``: this process won a key's claim and runs the operation
#:   (unless the claim, answered too late, is found lost before it starts:
#:   then a replay or an error follows); a
#:   recorded outcome was replayed; a subscription joined an execution in
#:   flight; the claim was lost while running; an outcome could not be
#:   encoded or decoded. Keys are never attributes.
#: - ``saga.step_failed``, ``saga.compensated``, ``saga.compensation_failed``,
#:   ``saga.ownership_lost``, ``saga.recovery_failed`` (``attributes``:
#:   ``saga_id`` and ``step`` where there is one).
#: - ``rate_limit.waited`` (``attributes["delay"]``), ``rate_limit.refused``.
#: - ``bulkhead.queued``: a call waits for a slot (``attributes["depth"]``:
#:   the calls waiting then); ``bulkhead.rejected``: a call was refused
#:   (``error`` the ``BulkheadFullError``, ``attributes["reason"]``: ``"queue
#:   full"`` or ``"wait exceeded"``).
#: - ``hedge.started``: a hedge was subscribed (``attempt``: its attempt's
#:   number, 2 for the first hedge); ``hedge.won``: on a call where a hedge
#:   started, an attempt answered first (``attempt``: the winner's number,
#:   ``duration``: seconds from its start). A call answered before any hedge
#:   started reports neither.
KINDS: tuple[str, ...] = (
    "retry.scheduled",
    "retry.refusal_waited",
    "retry.exhausted",
    "retry.gave_up",
    "breaker.succeeded",
    "breaker.failed",
    "breaker.refused",
    "breaker.state_changed",
    "timeout.expired",
    "fallback.used",
    "idempotency.claimed",
    "idempotency.replayed",
    "idempotency.joined",
    "idempotency.claim_lost",
    "idempotency.codec_error",
    "saga.step_failed",
    "saga.compensated",
    "saga.compensation_failed",
    "saga.ownership_lost",
    "saga.recovery_failed",
    "rate_limit.waited",
    "rate_limit.refused",
    "bulkhead.queued",
    "bulkhead.rejected",
    "hedge.started",
    "hedge.won",
)

NO_ATTRIBUTES: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TelemetryEvent:
    """One thing a policy did, as :func:`rxresilience.telemetry.events` delivers it.

    Examples:
        >>> event = TelemetryEvent("retry.scheduled", "payments", 12.0, attempt=1)
        >>> event.kind, event.policy, event.attempt, dict(event.attributes)
        ('retry.scheduled', 'payments', 1, {})

    Attributes:
        kind: one of :data:`rxresilience.telemetry.KINDS`.
        policy: the emitting policy's ``name`` (default: its kind, such as
            ``"retry"``; breakers default to ``"circuit-breaker"``).
        at: when, in seconds on the emitting policy's scheduler (virtual
            ticks under a ``TestScheduler``, epoch seconds on the real clock).
        duration: seconds, where a call or an attempt ended; else None.
        attempt: the attempt's number (1 for the first), where there is one.
        error: the exception, where there is one (never copied or wrapped).
        attributes: a small, read-only mapping of extra facts of the kind
            (see :data:`~rxresilience.telemetry.KINDS`).
        context: the tracing context captured when the pipeline was
            subscribed, if an adapter asked for one (the OpenTelemetry
            adapter's current span); None otherwise. Opaque to the rest.
    """

    kind: str
    policy: str
    at: float
    duration: float | None = None
    attempt: int | None = None
    error: BaseException | None = None
    attributes: Mapping[str, object] = field(default_factory=lambda: NO_ATTRIBUTES)
    context: object = field(default=None, repr=False, compare=False)
