"""Idempotency as an operator: a keyed operation runs once, its outcome replayed.

The policy (:class:`IdempotencyPolicy`), the operators (:func:`idempotent`,
:func:`idempotent_map`) and one keyed execution (its claim, lease, record and
subscribers) live here; the stores they record in live in ``stores/``. The
public names are re-exported from ``rxresilience``.
"""

from ._map import idempotent_map
from ._operator import idempotent
from ._policy import IdempotencyPolicy

__all__ = ["IdempotencyPolicy", "idempotent", "idempotent_map"]
