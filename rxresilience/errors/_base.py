"""The roots of the hierarchy: every library error, and a refused call."""

from __future__ import annotations


class ResilienceError(Exception):
    """Base class of every error raised by rxresilience itself."""


class CallRefusedError(ResilienceError):
    """A local policy refused the call before it was made: nothing was called.

    A refusal is not a failure of the protected work, so ``rxr.retry`` does
    not count it as an attempt: it waits ``retry_after`` seconds (its backoff
    does not advance) and tries again, within ``max_refusal_wait`` and
    ``max_elapsed``; with ``retry_after=None`` the retry ends at once.
    :class:`CircuitOpenError` is one; a policy of your own may raise one too.

    Examples:
        >>> error = CallRefusedError("quota of 'search' used up", retry_after=2.5)
        >>> error.retry_after
        2.5

    Attributes:
        retry_after: seconds until a call may be admitted, or ``None`` when
            that is unknown (then waiting would not help).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        require_wait(retry_after)
        super().__init__(message, retry_after)

    # Subclasses keep ``retry_after`` as the last of ``args``: reading it costs
    # nothing when the error is built, and pickling keeps working.
    @property
    def retry_after(self) -> float | None:
        value: float | None = self.args[-1]
        return value

    @retry_after.setter
    def retry_after(self, value: float | None) -> None:
        require_wait(value)
        self.args = (*self.args[:-1], value)

    def __str__(self) -> str:
        return f"{self.args[0]}{wait_text(self.retry_after)}"


def require_wait(value: object) -> None:
    """``retry_after`` is seconds (any real number; ``rxr.retry`` judges it) or None."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise TypeError(
            f"retry_after must be a number of seconds or None, got "
            f"{type(value).__name__}"
        )


def wait_text(value: object) -> str:
    if value is None:
        return ""
    try:
        return f"; retry after {value:.3f}s"
    except (OverflowError, TypeError, ValueError):  # 10**400, or not a number
        return f"; retry after {value!r}s"
