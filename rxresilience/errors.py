"""The exception hierarchy of rxresilience.

Every error the library raises on its own account derives from
:class:`ResilienceError`, so ``except rxr.ResilienceError`` catches exactly
what the library adds on top of the errors of the work it protects. Errors of
the protected work itself are never wrapped: ``rxr.retry`` delivers the last
attempt's own exception object, unchanged.

Bad configuration is not a ``ResilienceError``: it raises the built-in
``ValueError`` or ``TypeError`` at construction time, naming the argument.
"""

from __future__ import annotations

__all__ = ["ResilienceError"]


class ResilienceError(Exception):
    """Base class of every error raised by rxresilience itself."""
