"""Values the store tests share: claim statuses, a record, names full of glob characters."""

from __future__ import annotations

import pathlib
import uuid

import rxresilience as rxr

CLAIMED = rxr.ClaimStatus.CLAIMED
COMPLETED = rxr.ClaimStatus.COMPLETED
IN_PROGRESS = rxr.ClaimStatus.IN_PROGRESS
RECORD = b'{"values":[1],"error":null}'
FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures"

#: Every literal a name reaching Redis may hold: glob and quoting characters.
ODD_PREFIX = "a*[x]\\?{t}%_' "


def odd_prefix() -> str:
    return f"{ODD_PREFIX}{uuid.uuid4().hex}:"
