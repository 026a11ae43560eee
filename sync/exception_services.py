"""What people do with reconciliation exceptions: acknowledge them, resolve them with a note.

Raising and resolving automatically (when a cause disappears) is ``sync.exception_queue``;
these are the writes staff make from the admin and the HQ API. Each locks the row, checks
its status, saves it with a history row naming the actor, in one transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from erp.errors import Conflict, ValidationFailed
from sync.models import ReconciliationException

Status = ReconciliationException.Status


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _locked(exception: ReconciliationException) -> ReconciliationException:
    return ReconciliationException.objects.select_for_update().get(pk=exception.pk)


@transaction.atomic
def exception_acknowledge(
    *, exception: ReconciliationException, actor: Any
) -> ReconciliationException:
    """Say that someone is on it. Acknowledging twice is a no-op; a resolved one is refused."""
    exception = _locked(exception)
    if exception.status == Status.RESOLVED:
        raise Conflict("This exception is already resolved.")
    if exception.status == Status.ACKNOWLEDGED:
        return exception
    exception.status = Status.ACKNOWLEDGED
    exception.updated_at = timezone.now()
    exception._history_user = _user(actor)  # type: ignore[attr-defined]
    exception._change_reason = "acknowledged"  # type: ignore[attr-defined]
    exception.save(update_fields=["status", "updated_at"])
    return exception


@transaction.atomic
def exception_resolve(
    *, exception: ReconciliationException, actor: Any, note: str
) -> ReconciliationException:
    """Close an open or acknowledged exception; the note (what was done) is required."""
    note = (note or "").strip()
    if not note:
        raise ValidationFailed(
            "Say how the exception was resolved.", details={"note": ["Required."]}
        )
    exception = _locked(exception)
    if exception.status == Status.RESOLVED:
        raise Conflict("This exception is already resolved.")
    now = timezone.now()
    exception.status = Status.RESOLVED
    exception.resolved_at = now
    exception.updated_at = now
    exception.resolved_by = _user(actor)
    exception.resolution_note = note
    exception._history_user = exception.resolved_by  # type: ignore[attr-defined]
    exception._change_reason = "resolved"  # type: ignore[attr-defined]
    exception.save(
        update_fields=["status", "resolved_at", "updated_at", "resolved_by", "resolution_note"]
    )
    return exception
