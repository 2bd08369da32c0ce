"""``rxr.telemetry``: every policy's events as one stream, and adapters.

:func:`events` is a hot stream of :class:`TelemetryEvent` values from every
retry, breaker, timeout, fallback, idempotent call, saga, rate limiter,
bulkhead and hedge in the process, each tagged with its policy's ``name``.
The adapters are submodules imported on demand (importing ``rxresilience``
never imports them, nor the libraries they need):

- :mod:`rxresilience.telemetry.logging`: ``enable(logger=None)``;
- :mod:`rxresilience.telemetry.opentelemetry`: ``instrument(...)``, with
  ``opentelemetry-api`` (the ``otel`` extra);
- :mod:`rxresilience.telemetry.prometheus`: ``register(registry=None)``, with
  ``prometheus_client`` (the ``prometheus`` extra).
"""

from ._event import KINDS, TelemetryEvent
from ._stream import events

__all__ = ["KINDS", "TelemetryEvent", "events"]
