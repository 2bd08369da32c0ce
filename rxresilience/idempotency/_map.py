"""``rxr.idempotent_map``: a stream of requests, each run once per idempotency key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import reactivex as rx
from reactivex import Observable, abc
from reactivex import operators as ops
from typing_extensions import Unpack

from .._arguments import require_callable, require_count, require_instance
from .._codec import fingerprint as fingerprint_of
from ..stores._base import IdempotencyStore
from ._operator import idempotent_by_fingerprint
from ._policy import (
    IdempotencyOptions,
    IdempotencyPolicy,
    policy_from,
    require_key,
)

__all__ = ["idempotent_map"]

_R = TypeVar("_R")
_T = TypeVar("_T")


def idempotent_map(
    function: Callable[[_R], Observable[_T]],
    *,
    store: IdempotencyStore | None = None,
    key: Callable[[_R], str],
    payload: Callable[[_R], Any] | None = None,
    policy: IdempotencyPolicy | None = None,
    max_concurrency: int | None = None,
    **options: Unpack[IdempotencyOptions],
) -> Callable[[Observable[_R]], Observable[_T]]:
    """Map each request to ``function(request)``, run once per idempotency key.

    ::

        requests:  --r1------r2(dup of r1)--r3--|
        result:    --v1------v1-------------v3--|   function(r2) never runs

    Each request is handled as ``rx.defer(lambda _: function(request))``
    piped through :func:`rxresilience.idempotent` with ``key(request)`` and
    the fingerprint of ``payload(request)``: ``function`` is called only by
    the request that claims its key. Results come in request order, one
    request after another (like ``concat_map``); ``max_concurrency=N`` runs
    up to N requests at once and emits results as they come (like ``merge``).

    A key that is not a non-empty string, a payload that cannot be
    fingerprinted, or a ``key``/``payload`` function that raises fails the
    stream with that error, for that element.

    Examples:
        >>> import reactivex as rx
        >>> store = InMemoryIdempotencyStore()
        >>> runs = []
        >>> def process(request):
        ...     runs.append(request["id"])
        ...     return rx.of(f"done {request['id']}")
        >>> requests = rx.of({"id": "a"}, {"id": "b"}, {"id": "a"})
        >>> requests.pipe(
        ...     idempotent_map(process, store=store, key=lambda r: r["id"]),
        ...     ops.to_list(),
        ... ).run(), runs
        (['done a', 'done b', 'done a'], ['a', 'b'])

    Args:
        function: ``request -> Observable`` of the operation's values.
        store: where claims and outcomes live (or give ``policy``).
        key: ``request -> idempotency key``.
        payload: ``request -> payload`` to fingerprint; default none.
        policy: an :class:`IdempotencyPolicy` holding every option, instead
            of ``store`` and the options below.
        ttl: seconds an outcome lives.
        max_concurrency: run up to this many requests at once, unordered.
        in_progress_timeout: as for ``idempotent``.
        max_run: as for ``idempotent``.
        on_in_progress: as for ``idempotent``.
        poll_interval: as for ``idempotent``.
        record_errors: as for ``idempotent``.
        codec: as for ``idempotent``.
        finish_on_dispose: as for ``idempotent``.
        scheduler: as for ``idempotent``.

    Returns:
        An operator function for ``Observable.pipe``.

    Raises:
        ValueError: a ``max_concurrency`` below 1;
            otherwise as for ``idempotent`` (``ttl``, ``in_progress_timeout``
            and ``poll_interval`` above 0, finite, at most ``LONGEST_WAIT``).
        TypeError: ``function``, ``key`` or ``payload`` not callable; a
            ``max_concurrency`` that is not an int (a ``bool`` included) or None;
            otherwise as for ``idempotent``.
    """
    require_callable("function", function)
    require_callable("key", key)
    if payload is not None:
        require_callable("payload", payload)
    if max_concurrency is not None:
        require_count("max_concurrency", max_concurrency, or_none=True)
    if policy is not None and store is None:
        require_instance("policy", policy, IdempotencyPolicy)
        decided = policy_from("idempotent_map", policy, options)
    elif store is not None and policy is None:
        decided = policy_from("idempotent_map", store, options)
    else:
        raise TypeError("idempotent_map() takes a store= or a policy=, exactly one")

    def one(request: _R) -> Observable[_T]:
        try:
            request_key = require_key(key(request))
            fingerprint = None if payload is None else fingerprint_of(payload(request))
        except Exception as error:
            return rx.throw(error)

        def run(_: abc.SchedulerBase | None) -> Observable[_T]:
            result = function(request)
            if not isinstance(result, Observable):
                raise TypeError(
                    f"function must return an Observable, got {type(result).__name__}"
                )
            return result

        return rx.defer(run).pipe(
            idempotent_by_fingerprint(decided, request_key, fingerprint)
        )

    def apply(requests: Observable[_R]) -> Observable[_T]:
        if max_concurrency is None:
            return requests.pipe(ops.concat_map(one))
        return requests.pipe(ops.map(one), ops.merge(max_concurrent=max_concurrency))

    return apply
