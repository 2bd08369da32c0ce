"""Sagas as observable pipelines, journaled and recoverable.

The public names are re-exported from ``rxresilience``.
"""

from ._events import (
    CompensationFailed,
    CompensationStarted,
    RecoveryFailed,
    SagaCompleted,
    SagaEvent,
    StepCompensated,
    StepFailed,
    StepStarted,
    StepSucceeded,
)
from ._journal import (
    JournalEntry,
    JournalWrite,
    SagaJournal,
    SagaRecord,
    SagaState,
    SagaStatus,
)
from ._memory_journal import InMemorySagaJournal
from ._plan import SagaPlan
from ._postgres_journal import PostgresSagaJournal
from ._recover import recover
from ._redis_journal import RedisSagaJournal
from ._saga import Saga
from ._sqlite_journal import SQLiteSagaJournal
from ._step import SagaStep

__all__ = [
    "CompensationFailed",
    "CompensationStarted",
    "InMemorySagaJournal",
    "JournalEntry",
    "JournalWrite",
    "PostgresSagaJournal",
    "RecoveryFailed",
    "RedisSagaJournal",
    "SQLiteSagaJournal",
    "Saga",
    "SagaCompleted",
    "SagaEvent",
    "SagaJournal",
    "SagaPlan",
    "SagaRecord",
    "SagaState",
    "SagaStatus",
    "SagaStep",
    "StepCompensated",
    "StepFailed",
    "StepStarted",
    "StepSucceeded",
    "recover",
]
