"""A random generator seeded when it is first drawn from."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["SeededOnFirstUse"]


class SeededOnFirstUse(random.Random):
    """A ``random.Random`` seeded from the OS when it is first drawn from.

    Seeding one reads the OS's randomness (about 11 us): most of what building
    an operator would cost, while most operators never draw (no jitter, or no
    failure). Thread-safe as ``random.Random`` is: two first draws at once
    seed it twice, each from the OS.
    """

    def __init__(self) -> None:
        self.gauss_next = None
        self._seeded = False

    def _seed_now(self) -> None:
        self.seed()

    def seed(self, *args: Any, **kwargs: Any) -> None:
        super().seed(*args, **kwargs)
        self._seeded = True

    def setstate(self, state: Any) -> None:  # a copy or an unpickled one
        super().setstate(state)
        self._seeded = True

    def random(self) -> float:
        if not self._seeded:
            self._seed_now()
        return super().random()

    def getrandbits(self, k: int, /) -> int:
        if not self._seeded:
            self._seed_now()
        return super().getrandbits(k)
