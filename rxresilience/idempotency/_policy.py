"""``rxr.IdempotencyPolicy``: the options of ``rxr.idempotent`` as one frozen value."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

from reactivex import abc
from typing_extensions import TypedDict

from .._arguments import (
    ErrorPredicate,
    error_predicate,
    options_given,
    require_bool,
    require_choice,
    require_duration,
    require_instance,
    require_scheduler,
    require_text,
)
from .._codec import Codec, codec_or_json
from ..stores._base import IdempotencyStore
from ..telemetry._registry import require_policy_name

__all__ = [
    "DEFAULT_TTL",
    "IdempotencyOptions",
    "IdempotencyPolicy",
    "policy_from",
    "require_key",
    "store_renews",
    "warn_without_renewal",
]

DEFAULT_TTL = 24 * 3600.0
# Leases and polls shorter than this are below what a clock can tell apart
# from "now" in practice: a claim would be born expired, a poll would spin.
_SHORTEST = 0.001


@dataclass(frozen=True, slots=True)
class IdempotencyPolicy:
    """How ``rxr.idempotent`` runs an operation once per key: frozen and reusable.

    Holds no key: give it per call, ``rxr.idempotent(policy, key=...,
    payload=...)``, or as a function to ``rxr.idempotent_map(..., key=...)``
    and ``rxr.resilient(idempotency=policy, idempotency_key=...)``.

    Examples:
        >>> policy = IdempotencyPolicy(InMemoryIdempotencyStore(), ttl=3600)
        >>> policy.in_progress_timeout, policy.max_run
        (60.0, None)

    Args:
        store: where claims and outcomes live.
        ttl: seconds a recorded outcome lives, on the scheduler's clock.
        in_progress_timeout: the lease of a claim, in seconds. The owner
            renews it every third of it while the operation runs, so it
            measures how fast a *dead* owner is detected, not how long the
            operation may take.
        max_run: the longest the operation may run, in seconds (default
            unbounded). At ``max_run`` the source is disposed, renewal stops,
            the claim is kept until its lease lapses (the outcome is
            unknown) and subscribers get ``rxr.TimeoutError`` (budget
            ``"max_run"``); a duplicate waiting in another process waits at
            most this long, then fails with ``IdempotencyInProgressError``.
        on_in_progress: ``"wait"`` or ``"error"``, for a duplicate that
            finds the key held by another process or store.
        poll_interval: seconds between looks at the store while waiting.
        record_errors: errors to record and replay too (a predicate, an
            exception type or a tuple of them); default none.
        codec: how outcomes are encoded; default the store's own.
        finish_on_dispose: keep the source running after the last subscriber
            disposes, to record its outcome; ``None`` for the operator's
            default (False for ``idempotent``, True inside ``resilient``).
        scheduler: the clock of ``ttl`` and leases and where polls and
            renewals run; else the subscribe-time scheduler, else the real
            clock.
        name: the policy's name on its telemetry events
            (``idempotency.claimed``, ``.replayed``, ``.joined``,
            ``.claim_lost``, ``.codec_error``).

    Raises:
        ValueError: a duration not above 0, not finite or above
            ``LONGEST_WAIT``; an unknown ``on_in_progress``.
        TypeError: an option of the wrong type.
    """

    store: IdempotencyStore
    _: KW_ONLY
    ttl: float = DEFAULT_TTL
    in_progress_timeout: float = 60.0
    max_run: float | None = None
    on_in_progress: Literal["wait", "error"] = "wait"
    poll_interval: float = 0.1
    record_errors: Any = None
    codec: Codec | None = None
    finish_on_dispose: bool | None = None
    scheduler: abc.SchedulerBase | None = None
    name: str = "idempotency"

    _record_errors: ErrorPredicate | None = field(init=False, repr=False, compare=False)
    _codec: Codec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        store = self.store
        require_instance("store", store, IdempotencyStore)
        for name in ("ttl", "in_progress_timeout", "poll_interval"):
            seconds = require_duration(name, getattr(self, name), positive=True)
            object.__setattr__(self, name, seconds)
        for name in ("in_progress_timeout", "poll_interval"):
            if getattr(self, name) < _SHORTEST:  # a lease born expired, or a spin
                raise ValueError(
                    f"{name} must be at least {_SHORTEST:g} seconds, got "
                    f"{getattr(self, name)!r}"
                )
        if self.max_run is not None:
            object.__setattr__(
                self,
                "max_run",
                require_duration("max_run", self.max_run, positive=True),
            )
        require_choice("on_in_progress", self.on_in_progress, ("wait", "error"))
        require_bool("finish_on_dispose", self.finish_on_dispose, or_none=True)
        require_scheduler("scheduler", self.scheduler)
        require_policy_name("name", self.name)
        object.__setattr__(
            self,
            "_record_errors",
            None
            if self.record_errors is None
            else error_predicate("record_errors", self.record_errors),
        )
        object.__setattr__(
            self,
            "_codec",
            store.codec if self.codec is None else codec_or_json(self.codec),
        )

    @property
    def outcome_codec(self) -> Codec:
        """The codec outcomes are recorded with: ``codec``, else the store's."""
        return self._codec

    @property
    def error_filter(self) -> ErrorPredicate | None:
        """``record_errors`` as a predicate (None records no error)."""
        return self._record_errors

    def with_finish_on_dispose(self, default: bool) -> IdempotencyPolicy:
        """This policy with ``finish_on_dispose`` decided (``default`` if None)."""
        if self.finish_on_dispose is not None:
            return self
        return dataclasses.replace(self, finish_on_dispose=default)


def store_renews(store: IdempotencyStore) -> bool:
    """True when the store implements ``renew`` (stores written for 0.1 do not)."""
    base = getattr(IdempotencyStore, "renew", None)
    own = getattr(type(store), "renew", None)
    return own is not None and own is not base


def warn_without_renewal(store: IdempotencyStore) -> None:
    """A store written for 0.1 keeps 0.1's leases: say what that means."""
    if not store_renews(store):
        warnings.warn(
            f"{type(store).__name__} does not implement IdempotencyStore.renew: "
            f"claims are not renewed while the operation runs, so "
            f"in_progress_timeout must exceed the longest run or a live owner is "
            f"taken over (0.1's behaviour); implement renew() to lift this",
            RuntimeWarning,
            stacklevel=3,
        )


def require_key(key: object) -> str:
    """An idempotency key must be a non-empty string every store can write:
    UTF-8 encodable (a lone surrogate, as ``os.fsdecode`` makes of undecodable
    bytes, is not). NUL is fine: the stores keep it, or a digest of the key."""
    text = require_text("key", key)
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise ValueError(
            f"key must be text encodable as UTF-8, got {text!r}: {error}"
        ) from None
    return text


class IdempotencyOptions(TypedDict, total=False):
    """The keyword options of ``rxr.idempotent`` and ``rxr.idempotent_map``:
    :class:`IdempotencyPolicy`'s fields but ``store``, whose defaults and
    checks they take (tests/idempotency keep the types in step). Only
    ``finish_on_dispose`` differs: an operator decides it (False) where the
    policy may leave it to the operator (None)."""

    ttl: float
    in_progress_timeout: float
    max_run: float | None
    on_in_progress: Literal["wait", "error"]
    poll_interval: float
    record_errors: Any
    codec: Codec | None
    finish_on_dispose: bool
    scheduler: abc.SchedulerBase | None
    name: str


def policy_from(
    operator: str,
    store: IdempotencyStore | IdempotencyPolicy,
    options: IdempotencyOptions,
) -> IdempotencyPolicy:
    """The policy ``operator`` runs: from a store and keyword options, or the
    given policy alone (an option given beside it at other than its default is
    an error), decided for an operator (``finish_on_dispose`` as given, else
    False), warned about a store that cannot renew its claims."""
    unknown = options.keys() - _OPTION_DEFAULTS.keys()
    if unknown:
        raise TypeError(
            f"{operator}() got an unexpected keyword argument {min(unknown)!r}"
        )
    if isinstance(store, IdempotencyPolicy):
        given = options_given(options, _OPTION_DEFAULTS)
        if given:
            raise TypeError(
                f"{operator}() takes either an IdempotencyPolicy or a store with "
                f"keyword options, not both (got {', '.join(given)})"
            )
        policy = store.with_finish_on_dispose(False)
    else:
        options.setdefault("finish_on_dispose", False)
        policy = IdempotencyPolicy(store, **options)
    warn_without_renewal(policy.store)
    return policy


#: Every keyword option's default as an operator takes it, from the policy's
#: own fields (``finish_on_dispose`` decided: False).
_OPTION_DEFAULTS: dict[str, object] = {
    **{
        option.name: option.default
        for option in dataclasses.fields(IdempotencyPolicy)
        if option.init and option.name != "store"
    },
    "finish_on_dispose": False,
}
