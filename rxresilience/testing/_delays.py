"""``no_delays``: make every retry immediate in an application's test suite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .._delay_mode import NO_DELAYS, set_process_no_delays

__all__ = ["no_delays", "set_no_delays"]


@contextlib.contextmanager
def no_delays() -> Iterator[None]:
    """Within the block, every ``rxr.retry`` backoff is zero (retries are immediate).

    A refusal (``rxr.CallRefusedError``, such as an open breaker's) is not
    waited out in the block: it ends the retry at once, as waiting zero
    seconds for a permit would only be refused again.

    For application tests that cannot inject a scheduler. It is a context
    variable: it holds for the current thread or asyncio task and for the
    subscriptions made there (a subscription reads it when it starts). A
    retry subscribed later on a timer's thread (inside ``rx.timer(...)
    .pipe(ops.flat_map(...))``, say) runs outside it, threads not inheriting
    context variables: for those, ``set_no_delays(True)``, process-wide.

    Examples:
        >>> import reactivex as rx, rxresilience as rxr
        >>> from rxresilience.testing import flaky
        >>> with no_delays():
        ...     flaky(["ok"], failures=2).pipe(rxr.retry(3)).run()
        'ok'
    """
    token = NO_DELAYS.set(True)
    try:
        yield
    finally:
        NO_DELAYS.reset(token)


def set_no_delays(enabled: bool) -> None:
    """The process-wide switch, for whole test suites (e.g. in ``conftest.py``).

    Raises:
        TypeError: ``enabled`` is not a bool (``"no"`` turned delays off).
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    set_process_no_delays(enabled)
