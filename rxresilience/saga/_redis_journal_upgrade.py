"""Moving a Redis saga journal from 0.1's keys to one hash tag per journal.

0.1 wrote, per saga, a hash ``prefix + saga_id + ":meta"`` and a list
``prefix + saga_id + ":entries"``, and one sorted set ``prefix + "running"``:
keys in different hash slots, so its scripts are refused (CROSSSLOT) on
Redis Cluster. Since 0.2 every key is ``tag_of(prefix) + rest``, with
``tag_of(prefix) == "{" + prefix + "}"``, and the key ``tag + "version"``
holds :data:`LAYOUT` once a journal on that prefix has been opened.

:func:`upgrade` runs before a journal's first operation. Without the marker
it finds 0.1's hashes with a literal ``SCAN MATCH`` of the prefix and moves
each saga with one script (:data:`_MOVE`): its hash and its list renamed,
its id moved from the old running set to the new one. The script answers 0
for a saga already moved, so two processes opening at once both succeed and
each saga is moved exactly once; then the marker is set.

What the migration never moves (a key it cannot prove to be a 0.1 saga of
this journal stays where it is): a key that is a hash of this journal's
new layout (with a prefix of only ``{`` characters, those also begin with the
prefix), or of another journal's (it has a marker); a hash whose fields are
not a saga's, or whose entries are not a list (another application's keys);
a running saga missing from this journal's running set (with nested prefixes,
``"p"`` and ``"pab"``, 0.1's ``"p"`` saw ``"pab"``'s saga ``x`` as ``abx``: a
running saga belongs to the journal that lists it; a finished one cannot be
told apart, so open the journal with the longer prefix first); and an id the
new layout already has (a 0.1 process that wrote after the upgrade).
"""

from __future__ import annotations

import logging
from typing import Any

from .._redis_client import glob_escape
from ..errors import SagaError

__all__ = ["LAYOUT", "tag_of", "upgrade"]

_log = logging.getLogger("rxresilience")

#: The key layout this release writes (0.1's, without a marker, was 1).
LAYOUT = "2"

#: The COUNT hint of each SCAN call (keys looked at per round trip, about).
_SCAN_BATCH = 1000

# KEYS: 0.1's hash, list and running set of one saga; the new hash, list and
# running set. ARGV[1]: the saga id. Answers 1 when it moved the saga; else it
# writes nothing and answers 0 (the old hash is gone, moved by another opener,
# or the keys are not a saga of this journal) or -1 (the new layout already
# has the id).
_MOVE = """
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local needed = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if field == 'name' or field == 'status' or field == 'touched' then
    needed = needed + 1
  elseif field ~= 'owner' and field ~= 'lease_until' then
    return 0
  end
end
if needed ~= 3 then return 0 end
local entries = redis.call('TYPE', KEYS[2]).ok
if entries ~= 'list' and entries ~= 'none' then return 0 end
local score = false
if redis.call('TYPE', KEYS[3]).ok == 'zset' then
  score = redis.call('ZSCORE', KEYS[3], ARGV[1])
end
if redis.call('HGET', KEYS[1], 'status') == 'running' and not score then return 0 end
if redis.call('EXISTS', KEYS[4], KEYS[5]) > 0 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[4])
if entries == 'list' then redis.call('RENAME', KEYS[2], KEYS[5]) end
if score then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[6], score, ARGV[1])
end
return 1
"""


def tag_of(prefix: str) -> str:
    """What every key of the journal on ``prefix`` begins with.

    Redis Cluster hashes the text between a key's first ``{`` and the first
    ``}`` after it. A prefix without braces is wrapped in them: its keys
    begin ``"{" + prefix + "}"``. A prefix that holds a hash tag of its own
    (``"{orders}:"``, the usual Cluster idiom) is used as it is: it pins one
    slot already, and 0.1 wrote its keys the same way. ``"x"`` and ``"{x}"``
    therefore name the same journal.

    Raises:
        ValueError: an empty prefix, or one whose braces make no hash tag
            (``"a}b"``, ``"{}x"``, ``"x{"``): its keys could share a slot only
            by accident, or another journal's keys.
    """
    if prefix and "{" not in prefix and "}" not in prefix:
        return "{" + prefix + "}"
    opening = prefix.find("{")
    closing = prefix.find("}", opening + 1) if opening >= 0 else -1
    if opening >= 0 and closing > opening + 1 and "}" not in prefix[:opening]:
        return prefix
    raise ValueError(
        f"prefix {prefix!r} cannot name a saga journal in Redis: use a prefix "
        f"without braces (the journal wraps it in a hash tag, '{{' + prefix + "
        f"'}}'), or one holding a non-empty hash tag of its own, such as "
        f"'{{orders}}:'"
    )


def upgrade(client: Any, prefix: str, *, cluster: bool) -> int:
    """Bring the journal on ``prefix`` to :data:`LAYOUT`; the sagas it moved.

    Idempotent and safe to run in many processes at once (see the module).
    On Redis Cluster (``cluster``) there is nothing to move (0.1's layout
    cannot exist there): only the marker is written.

    Raises:
        SagaError: the marker names a layout this release does not know (a
            newer release wrote it).
        redis.RedisError: Redis could not be reached; nothing was lost, and
            the next opening carries on.
    """
    tag = tag_of(prefix)
    marker = tag + "version"
    found = client.get(marker)
    if found is not None:
        if found == LAYOUT.encode():
            return 0
        raise SagaError(
            f"the saga journal on prefix {prefix!r} has key layout "
            f"{found.decode(errors='replace')!r}, which this release does not know "
            f"(it reads layout {LAYOUT}): was it written by a newer rxresilience?"
        )
    # Nothing to move on a cluster (0.1's scripts ran there only with a
    # prefix holding its own tag), nor for such a prefix (its keys are the same).
    moved = 0 if cluster or tag == prefix else _move_sagas(client, prefix)
    client.set(marker, LAYOUT, nx=True)
    return moved


def _move_sagas(client: Any, prefix: str) -> int:
    old, new = prefix.encode(), tag_of(prefix).encode()
    move = client.register_script(_MOVE)
    moved = 0
    pattern = glob_escape(prefix) + "*:meta"
    for key in client.scan_iter(match=pattern, count=_SCAN_BATCH):
        if not key.startswith(old) or key.startswith(new) or _journal_of(client, key):
            continue
        saga_id = key[len(old) : -len(b":meta")]
        answer = move(
            keys=[
                key,
                old + saga_id + b":entries",
                old + b"running",
                new + saga_id + b":meta",
                new + saga_id + b":entries",
                new + b"running",
            ],
            args=[saga_id],
        )
        if answer == 1:
            moved += 1
        elif answer == -1:
            _log.warning(
                "saga %r of the journal on prefix %r is in both key layouts; the "
                "one in 0.1's layout (written after the upgrade?) is left as it is",
                saga_id.decode(errors="replace"),
                prefix,
            )
    return moved


def _journal_of(client: Any, key: bytes) -> bool:
    """Whether ``key`` is a key of some journal's new layout: it begins with
    that journal's base (``"{" + p + "}"``, or a prefix with a tag of its
    own, which may end anywhere after its tag), and that journal has its
    marker (written before its first key)."""
    start = key.find(b"}")
    if start < 0:
        return False
    markers = [key[:end] + b"version" for end in range(start + 1, len(key))]
    return bool(markers) and any(
        value is not None and value.isdigit() for value in client.mget(markers)
    )
