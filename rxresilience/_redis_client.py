"""The Redis connection each Redis-backed part of the library talks through.

Every part makes its own connection pool from the user's ``redis.Redis``
client (same address, credentials, TLS and pool size), so that the replies
it parses never depend on the client's ``decode_responses``, and so that a
lost or hung server costs an operation at most one bounded socket timeout:
no retries with backoff inside redis-py (a retried write whose reply was
lost could be applied twice), no wait without end.
"""

from __future__ import annotations

from typing import Any

from ._arguments import require_duration

__all__ = [
    "DEFAULT_STORE_TIMEOUT",
    "glob_escape",
    "import_redis",
    "own_client",
    "require_client",
    "store_client",
]

#: Seconds a store or journal waits for Redis when the client sets no timeout.
DEFAULT_STORE_TIMEOUT = 5.0


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob (``SCAN MATCH``, ``KEYS``).

    Redis globs give ``*``, ``?``, ``[``, ``]`` and ``\\`` a meaning; each is
    escaped with a backslash, so ``glob_escape(prefix) + "*"`` matches the
    keys that start with ``prefix`` and no others.

    Examples:
        >>> print(glob_escape("a*[x]?"))
        a\\*\\[x\\]\\?
    """
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def import_redis() -> Any:
    """redis-py, or an ImportError that says how to install it."""
    try:
        import redis
    except ImportError as error:
        raise ImportError(
            "the Redis-backed parts of rxresilience need redis-py: "
            "pip install 'rxresilience[redis]'"
        ) from error
    return redis


def require_client(client: Any) -> None:
    """Refuse what is not a ``redis.Redis`` client, naming the argument."""
    if not hasattr(client, "connection_pool") or not hasattr(client, "register_script"):
        raise TypeError(
            f"client must be a redis.Redis client, got {type(client).__name__}"
        )


def own_client(
    client: Any, *, socket_timeout: float | None, decode_responses: bool
) -> Any:
    """A client on ``client``'s server with a bounded timeout and no retries.

    ``socket_timeout`` None keeps the client's own, or
    :data:`DEFAULT_STORE_TIMEOUT` if it has none.
    """
    redis = import_redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = client.connection_pool
    settings = dict(pool.connection_kwargs)
    for transient in ("orig_socket_timeout", "orig_socket_connect_timeout"):
        settings.pop(transient, None)
    timeout = socket_timeout
    if timeout is None:
        timeout = settings.get("socket_timeout") or DEFAULT_STORE_TIMEOUT
    settings.update(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
        decode_responses=decode_responses,
        encoding="utf-8",
    )
    own = type(pool)(
        connection_class=pool.connection_class,
        max_connections=pool.max_connections,
        **settings,
    )
    return redis.Redis(connection_pool=own)


def store_client(client: Any, *, prefix: object, socket_timeout: object) -> Any:
    """Check a store's or journal's arguments; the binary client it talks through.

    ``socket_timeout`` is None (the client's own) or a duration: above 0 (a
    zero timeout makes redis-py's sockets non-blocking), finite, at most
    ``LONGEST_WAIT``.
    """
    require_client(client)
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    timeout = None
    if socket_timeout is not None:
        timeout = require_duration("socket_timeout", socket_timeout, positive=True)
    return own_client(client, socket_timeout=timeout, decode_responses=False)
