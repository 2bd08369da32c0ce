"""The errors of sagas."""

from __future__ import annotations

from ._base import ResilienceError


class SagaError(ResilienceError):
    """Base class of the errors of sagas."""


class SagaFailed(SagaError):  # noqa: N818 - the name the saga API promises
    """A saga step failed; the succeeded steps were compensated (as far as possible).

    Attributes:
        saga_id: the saga's id.
        step: the name of the step that failed.
        cause: that step's error (also ``__cause__``).
        compensation_errors: ``(step, error)`` for every compensation that
            failed, in the order they ran.
        not_compensated: steps whose compensation never ran (only with
            ``on_compensation_failure="stop"``), in the order they would have.
    """

    def __init__(
        self,
        saga_id: str,
        step: str,
        cause: BaseException,
        compensation_errors: tuple[tuple[str, BaseException], ...] = (),
        not_compensated: tuple[str, ...] = (),
    ) -> None:
        detail = ""
        if compensation_errors:
            failed = ", ".join(name for name, _ in compensation_errors)
            detail += f"; compensations failed: {failed}"
        if not_compensated:
            detail += f"; never compensated: {', '.join(not_compensated)}"
        super().__init__(f"saga {saga_id!r} failed at step {step!r}: {cause!r}{detail}")
        self.saga_id = saga_id
        self.step = step
        self.cause = cause
        self.compensation_errors = compensation_errors
        self.not_compensated = not_compensated
        self.__cause__ = cause


class SagaStepEmptyError(SagaError):
    """A step's observable completed without a value: it produced no context."""

    def __init__(self, step: str) -> None:
        super().__init__(f"saga step {step!r} completed without emitting a context")
        self.step = step


class SagaCancelledError(SagaError):
    """The saga's subscriber disposed while this step ran: the step was cancelled."""

    def __init__(self, step: str) -> None:
        super().__init__(f"saga step {step!r} was cancelled by disposal")
        self.step = step


class SagaOwnershipLostError(SagaError):
    """This run lost its saga: another owner (a recoverer) holds it in the journal.

    The run stopped at once: it started no further step, cancelled the running
    ones and wrote nothing more; the new owner compensates what the journal
    says happened. A run loses its saga only when the journal answers "not
    yours" (a renewal of its lease, or a write); a journal it cannot reach is
    tried again.

    Attributes:
        saga_id: the saga's id.
    """

    def __init__(self, saga_id: str) -> None:
        super().__init__(
            f"saga {saga_id!r} was taken over by another owner; this run stopped"
        )
        self.saga_id = saga_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.saga_id,))
