"""Refusals of the books, each with a stable code (see ``erp.errors``)."""

from __future__ import annotations

from erp.errors import ApplicationError, Conflict


class UnbalancedEntry(ApplicationError):
    status = 400
    code = "unbalanced_entry"
    default_message = "Debits and credits of the entry differ."


class EntryImmutable(Conflict):
    code = "entry_immutable"
    default_message = "A posted journal entry is never changed; post a reversal instead."


class PeriodClosed(Conflict):
    code = "period_closed"
    default_message = "The period is closed; nothing can be dated into it."


class BlockingExceptions(Conflict):
    code = "blocking_exceptions"
    default_message = (
        "Blocking reconciliation exceptions are open in this period; resolve them or close "
        "with an override reason."
    )


class CloseInProgress(Conflict):
    code = "close_in_progress"
    default_message = "A close of this period is already running."


class CloseInterrupted(Conflict):
    """Another run of the same close job refused it and reopened the period meanwhile."""

    code = "close_interrupted"
