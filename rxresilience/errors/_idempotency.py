"""The errors of ``rxr.idempotent`` and its stores."""

from __future__ import annotations

from ._base import ResilienceError


class IdempotencyError(ResilienceError):
    """Base class of the errors of ``rxr.idempotent`` and its stores."""


class IdempotencyInProgressError(IdempotencyError):
    """Another execution holds the key (``on_in_progress="error"``).

    Attributes:
        key: the idempotency key.
    """

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} is already in progress")
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key,))


class IdempotencyKeyReuseError(IdempotencyError):
    """The key was used before with a different payload; nothing ran.

    Attributes:
        key: the idempotency key.
    """

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was used with a different payload")
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key,))


class IdempotencyClaimLostError(IdempotencyError):
    """This execution's claim expired and another owner took the key over.

    The execution's outcome was not recorded (the new owner's stands).
    """

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the claim on idempotency key {key!r} expired before the outcome "
            "was recorded; another execution owns the key now"
        )
        self.key = key

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key,))


class IdempotencyCodecError(IdempotencyError):
    """A value could not be encoded (or a record decoded) by the store's codec.

    When ``ran`` is true the operation *did* run (its side effect happened)
    but its outcome could not be recorded: a marker was recorded instead, so
    duplicates get this error too, until the ``ttl`` ends, and never run the
    operation again.

    Attributes:
        key: the idempotency key, when known.
        value_type: the qualified name of the type that could not be encoded,
            when known.
        ran: True when the operation ran and only its recording failed.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        value_type: str | None = None,
        ran: bool = False,
    ) -> None:
        super().__init__(message)
        self.key = key
        self.value_type = value_type
        self.ran = ran

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_codec_error, (str(self), self.key, self.value_type, self.ran))


def _rebuild_codec_error(
    message: str, key: str | None, value_type: str | None, ran: bool
) -> IdempotencyCodecError:
    return IdempotencyCodecError(message, key=key, value_type=value_type, ran=ran)


class RecordedError(IdempotencyError):
    """A recorded error, replayed: its type's name and message, never the object.

    Errors are recorded only when ``record_errors`` matches them; a replay
    cannot rebuild the original exception (nothing is unpickled), so it
    delivers this instead.

    Attributes:
        type_name: the qualified name of the original exception's type.
        message: ``str()`` of the original exception.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.type_name, self.message))
