"""``RedisSagaJournal``: sagas any process of a fleet can recover.

Per saga, a hash (name, status, touched, and since 0.2 owner and
lease_until) and a list of entries (JSON; a context is base64 of the codec's
bytes, never a pickle), plus one sorted set of running sagas by last touch;
every key begins with the journal's hash tag, ``"{" + prefix + "}"``, so a
journal lives in one slot of a Redis Cluster. Every write is one Lua script;
the fenced writes compare the owner token in the script, and taking a saga
whose owner is gone is an atomic compare-and-set of the token, so two
processes recovering at once never both compensate it, and the former owner
writes nothing more. A saga written by 0.1 has no ``lease_until`` field: its
``touched`` decides. 0.1's keys are moved to this layout before a journal's
first operation (:mod:`._redis_journal_upgrade`).

``redis`` (redis-py) is an optional dependency: ``pip install
rxresilience[redis]``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from .._redis_client import is_cluster_client, store_client
from ..errors import SagaError
from . import _redis_journal_scripts as scripts
from ._journal import JournalEntry, JournalWrite, SagaJournal, SagaRecord
from ._redis_journal_rows import entry_json, saga_ids, saga_record, write_row
from ._redis_journal_upgrade import tag_of, upgrade

__all__ = ["RedisSagaJournal"]


class RedisSagaJournal(SagaJournal):
    """Saga journals in Redis, shared by processes on many machines.

    Keys: every key begins with the hash tag ``"{" + prefix + "}"``: per
    saga ``{prefix}<saga_id>:meta`` (a hash) and ``{prefix}<saga_id>:entries``
    (a list), then ``{prefix}running`` (the running sagas by last touch) and
    ``{prefix}version`` (the layout's marker). Redis Cluster hashes a key by
    the text between its first ``{`` and the next ``}``: here the prefix, so
    all the keys of a journal share one slot and its scripts run on a
    cluster. A prefix that holds a hash tag of its own (``"{orders}:"``) is
    used as it is, unwrapped (so ``"x"`` and ``"{x}"`` name one journal). The
    prefix is otherwise literal (``*``, ``?``, ``[``, ``\\`` mean
    themselves); an empty one, or one whose braces make no hash tag
    (``"a}b"``, ``"x{"``), is refused.

    Upgrading from 0.1: stop every 0.1 process first. 0.1 wrote
    ``prefix + saga_id + ":meta"``, ``...":entries"`` and
    ``prefix + "running"``; before its first operation a journal moves those
    keys to the layout above, one saga per atomic script (a saga in flight
    keeps its entries and its place among the running sagas; a 0.1 saga has
    no lease: ``recover`` takes it once untouched for ``stale_after``), then
    writes the marker, so later openings skip the search. Processes opening
    at once move each saga once. A 0.1 process still running after that
    writes keys in the old layout, which no 0.2 journal reads. If one
    journal's prefix begins with another's (``"p"`` and ``"pab"``), open the
    one with the longer prefix first: 0.1's keys do not tell whose a
    finished saga is (a running one goes to the journal that lists it).

    Args:
        client: a ``redis.Redis`` client, or a ``redis.cluster.RedisCluster``.
            The journal talks through a client of its own with the same
            address, credentials and TLS, a bounded timeout and no retries
            (a retried write whose reply was lost could be applied twice);
            replies are read as bytes whatever its ``decode_responses``. For
            a ``redis.Redis``, a connection pool of its own, made without
            connecting; for a ``RedisCluster``, a cluster client of its own
            on the same nodes, which redis-py connects as it is made.
        prefix: the journal's name in Redis: its keys' hash tag, literal.
        socket_timeout: seconds to wait for a connection or a reply, above 0
            and at most ``LONGEST_WAIT`` (about 292 years); default the
            client's own, or 5 when it sets none, so an operation never
            hangs.

    Raises:
        SagaError: when Redis cannot be reached (the operation fails; nothing
            Redis acknowledged is lost), a saga id is used twice, or the
            journal's keys were written in a layout newer than this release's.
        ValueError: a prefix that is empty or whose braces make no hash tag; a
            ``socket_timeout`` not above 0, not finite, or above
            ``LONGEST_WAIT``; both checked before connecting.
        TypeError: ``client`` is not a ``redis.Redis`` or ``RedisCluster``
            client, ``prefix`` not a string, or ``socket_timeout`` not a number
            (a ``bool`` included).
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "saga:",
        socket_timeout: float | None = None,
    ) -> None:
        if isinstance(prefix, str):
            tag_of(prefix)  # refuses a prefix that cannot name a journal
        self._cluster = is_cluster_client(client)
        try:
            client = store_client(
                client, prefix=prefix, socket_timeout=socket_timeout, cluster=True
            )
        except (TypeError, ValueError, ImportError):
            raise
        except Exception as error:  # the cluster client could not discover the nodes
            raise SagaError(f"Redis saga journal failed: {error}") from error
        self.prefix = prefix
        self._client = client
        self._tag = tag_of(prefix)
        self._running = f"{self._tag}running"
        self._opening = threading.Lock()
        self._current = False  # keys in this release's layout (see _open)
        self._begin = client.register_script(scripts.BEGIN)
        self._append = client.register_script(scripts.APPEND)
        self._finish = client.register_script(scripts.FINISH)
        self._claim = client.register_script(scripts.CLAIM_STALE)
        self._begin_owned = client.register_script(scripts.BEGIN_OWNED)
        self._append_owned = client.register_script(scripts.APPEND_OWNED)
        self._finish_owned = client.register_script(scripts.FINISH_OWNED)
        self._take = client.register_script(scripts.TAKE)
        self._renew = client.register_script(scripts.RENEW)
        self._write = client.register_script(scripts.WRITE)

    def _keys(self, saga_id: str) -> list[str]:
        return [
            f"{self._tag}{saga_id}:meta",
            self._running,
            f"{self._tag}{saga_id}:entries",
        ]

    def _open(self) -> None:
        """Move 0.1's keys to this layout, once per journal object.

        Done before the first operation rather than in the constructor, so
        that making a journal never connects to a ``redis.Redis`` (nor waits
        for one that is down): the first operation does, and when Redis
        cannot be reached it fails as any operation does, and the next one
        tries again.
        """
        with self._opening:
            if not self._current:
                upgrade(self._client, self.prefix, cluster=self._cluster)
                self._current = True

    def _call(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            if not self._current:
                self._open()
            return operation(*args, **kwargs)
        except SagaError:
            raise
        except Exception as error:
            raise SagaError(f"Redis saga journal failed: {error}") from error

    def begin(self, saga_id: str, saga_name: str, now: float) -> None:
        created = self._call(
            self._begin,
            keys=self._keys(saga_id)[:2],
            args=[saga_id, saga_name, repr(now)],
        )
        if not created:
            raise SagaError(f"saga id {saga_id!r} is already in the journal")

    def begin_owned(
        self,
        saga_id: str,
        saga_name: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
    ) -> None:
        created = self._call(
            self._begin_owned,
            keys=self._keys(saga_id)[:2],
            args=[saga_id, saga_name, repr(now), owner, repr(lease_until)],
        )
        if not created:
            raise SagaError(f"saga id {saga_id!r} is already in the journal")

    def append(self, saga_id: str, entry: JournalEntry, now: float) -> None:
        self._call(
            self._append,
            keys=self._keys(saga_id),
            args=[saga_id, entry_json(entry), repr(now)],
        )

    def append_owned(
        self, saga_id: str, entry: JournalEntry, now: float, *, owner: str
    ) -> bool:
        written = self._call(
            self._append_owned,
            keys=self._keys(saga_id),
            args=[saga_id, entry_json(entry), repr(now), owner],
        )
        return bool(written)

    def finish(self, saga_id: str, status: str, now: float) -> None:
        self._call(
            self._finish,
            keys=self._keys(saga_id)[:2],
            args=[saga_id, status, repr(now)],
        )

    def finish_owned(
        self, saga_id: str, status: str, now: float, *, owner: str
    ) -> bool:
        written = self._call(
            self._finish_owned,
            keys=self._keys(saga_id)[:2],
            args=[saga_id, status, repr(now), owner],
        )
        return bool(written)

    def write_owned(self, writes: Sequence[JournalWrite]) -> list[bool]:
        """All the writes in one script (one round trip, atomic), each fenced
        on its own saga."""
        if not writes:
            return []
        keys = [self._running]
        for write in writes:
            meta, _, entries = self._keys(write.saga_id)
            keys += [meta, entries]
        batch = [write_row(write) for write in writes]
        done = self._call(self._write, keys=keys, args=[json.dumps(batch)])
        return [bool(flag) for flag in done]

    def load(self, saga_id: str) -> SagaRecord | None:
        meta_key, _, entries_key = self._keys(saga_id)
        meta = self._call(self._client.hgetall, meta_key)
        if not meta:
            return None
        entries = self._call(self._client.lrange, entries_key, 0, -1)
        return saga_record(saga_id, meta, entries)

    def unfinished(self) -> list[str]:
        ids = self._call(self._client.zrange, self._running, 0, -1)
        return saga_ids(ids)

    def claim_stale(self, saga_id: str, now: float, stale_before: float) -> bool:
        taken = self._call(
            self._claim,
            keys=self._keys(saga_id)[:2],
            args=[saga_id, repr(now), repr(stale_before)],
        )
        return bool(taken)

    def take(
        self,
        saga_id: str,
        now: float,
        *,
        owner: str,
        lease_until: float,
        stale_before: float,
        gone_owner: str | None = None,
    ) -> bool:
        """Take a running saga whose owner is gone: True if ``owner`` now holds it.

        Gone: its lease ended before ``stale_before`` (without a lease, written
        by 0.1: its last touch), or it is still held by ``gone_owner``, an
        owner ``recover`` knows to be dead (None or ``""``: nobody). One
        script, an atomic compare-and-set of the owner token.
        """
        taken = self._call(
            self._take,
            keys=self._keys(saga_id)[:2],
            args=[
                saga_id,
                repr(now),
                repr(stale_before),
                owner,
                repr(lease_until),
                gone_owner or "",
            ],
        )
        return bool(taken)

    def renew(
        self, saga_id: str, now: float, *, owner: str, lease_until: float
    ) -> bool:
        held = self._call(
            self._renew,
            keys=self._keys(saga_id)[:2],
            args=[saga_id, repr(now), owner, repr(lease_until)],
        )
        return bool(held)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisSagaJournal(prefix={self.prefix!r})"
