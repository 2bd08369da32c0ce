"""The Redis connection each Redis-backed part of the library talks through.

Every part makes its own connection pool from the user's ``redis.Redis``
client (same address, credentials, TLS and pool size; for the parts that
accept a ``redis.cluster.RedisCluster``, its own cluster client on the same
nodes with the same settings), so that the replies
it parses never depend on the client's ``decode_responses``, and so that a
lost or hung server costs an operation at most one bounded socket timeout:
no retries with backoff inside redis-py (a retried write whose reply was
lost could be applied twice), no wait without end.
"""

from __future__ import annotations

from typing import Any

from ._arguments import require_duration, require_instance

__all__ = [
    "DEFAULT_STORE_TIMEOUT",
    "glob_escape",
    "import_redis",
    "is_cluster_client",
    "own_client",
    "own_cluster_client",
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


def is_cluster_client(client: Any) -> bool:
    """True for a ``redis.cluster.RedisCluster`` client.

    Told by its shape (its nodes manager), not by ``isinstance``, so that
    checking a client never imports redis-py.
    """
    return hasattr(client, "nodes_manager") and hasattr(client, "get_nodes")


def require_client(client: Any, *, cluster: bool = False) -> None:
    """Refuse what is not a ``redis.Redis`` client (or, with ``cluster``, a
    ``redis.cluster.RedisCluster`` client), naming the argument."""
    if cluster and is_cluster_client(client):
        return
    if type(client).__module__.startswith("redis.asyncio"):
        raise TypeError(
            "client must be a redis.Redis client, got a redis.asyncio one (the "
            "library's calls are synchronous; under asyncio they run off the loop)"
        )
    if not hasattr(client, "connection_pool") or not hasattr(client, "register_script"):
        kinds = (
            "redis.Redis or redis.cluster.RedisCluster" if cluster else "redis.Redis"
        )
        raise TypeError(f"client must be a {kinds} client, got {type(client).__name__}")


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
    from redis.sentinel import SentinelConnectionPool

    first: tuple[Any, ...] = ()
    if isinstance(pool, SentinelConnectionPool):
        # A master (or replica) found through Sentinel: found the same way.
        settings.pop("connection_pool", None)  # the user's pool's own proxy
        settings.update(
            is_master=pool.is_master, check_connection=pool.check_connection
        )
        first = (pool.service_name, pool.sentinel_manager)
    own = type(pool)(
        *first,
        connection_class=pool.connection_class,
        max_connections=pool.max_connections,
        **settings,
    )
    return redis.Redis(connection_pool=own)


#: Settings of a user's cluster client that the library's own copy does not take:
#: set per node or by the copy itself, or retries the copy must not make.
_NOT_COPIED = frozenset(
    {
        "cache",
        "cache_config",
        "connection_pool",
        "db",
        "host",
        "nodes_flag",
        "port",
        "redis_connect_func",
        "retry",
        "retry_on_timeout",
    }
)


def own_cluster_client(
    client: Any, *, socket_timeout: float | None, decode_responses: bool
) -> Any:
    """A cluster client on ``client``'s nodes with a bounded timeout and no retries.

    As :func:`own_client` for a ``redis.cluster.RedisCluster``: the same
    nodes and connection settings (credentials, TLS), no retry by the
    cluster client or its connections (a retried write whose reply was lost
    could be applied twice; following a MOVED or ASK redirection is not a
    retry: the command did not run). redis-py discovers the cluster when a
    cluster client is made, so this connects, where :func:`own_client` does
    not.
    """
    cluster = import_redis().cluster  # untyped, as the client given is
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    manager = client.nodes_manager
    settings = {
        name: value
        for name, value in manager.connection_kwargs.items()
        if name in cluster.REDIS_ALLOWED_KEYS and name not in _NOT_COPIED
    }
    timeout = socket_timeout
    if timeout is None:
        timeout = settings.get("socket_timeout") or DEFAULT_STORE_TIMEOUT
    settings.update(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=decode_responses,
        encoding="utf-8",
    )
    nodes = [cluster.ClusterNode(node.host, node.port) for node in client.get_nodes()]
    return cluster.RedisCluster(
        startup_nodes=nodes,
        retry=Retry(NoBackoff(), 0),
        address_remap=manager.address_remap,
        **settings,
    )


def store_client(
    client: Any, *, prefix: object, socket_timeout: object, cluster: bool = False
) -> Any:
    """Check a store's or journal's arguments; the binary client it talks through.

    ``socket_timeout`` is None (the client's own) or a duration: above 0 (a
    zero timeout makes redis-py's sockets non-blocking), finite, at most
    ``LONGEST_WAIT``. With ``cluster``, a ``redis.cluster.RedisCluster`` is
    accepted too, and answered with :func:`own_cluster_client`.
    """
    require_client(client, cluster=cluster)
    require_instance("prefix", prefix, str, "a string")
    timeout = None
    if socket_timeout is not None:
        timeout = require_duration("socket_timeout", socket_timeout, positive=True)
    if cluster and is_cluster_client(client):
        return own_cluster_client(
            client, socket_timeout=timeout, decode_responses=False
        )
    return own_client(client, socket_timeout=timeout, decode_responses=False)
