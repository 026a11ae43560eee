"""Dead letters: events HQ could not understand, corrected and re-applied, or voided, by staff."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from erp.errors import Conflict, ValidationFailed
from stores.models import Register
from sync.exception_queue import exceptions_resolve_automatically
from sync.models import DeadLetter
from sync.push.parse import parse_event
from sync.push.service import batch_ingest, register_high_water_refresh

_NAMESPACE = uuid.UUID("6f1c2a52-5d0e-4b8e-9d8e-8a7f1f0d7c11")


def _require_open(dead_letter: DeadLetter) -> None:
    if dead_letter.status != DeadLetter.Status.OPEN:
        raise Conflict(f"This dead letter is already {dead_letter.get_status_display()}.")


def _close(
    *, dead_letter: DeadLetter, status: str, actor: Any, note: str, change_reason: str
) -> None:
    """Record the decision on the dead letter (with history) and resolve its exception."""
    now = timezone.now()
    dead_letter.status = status
    dead_letter.resolved_at = now
    dead_letter.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
    dead_letter.resolution_note = note
    dead_letter._history_user = dead_letter.resolved_by  # type: ignore[attr-defined]
    dead_letter._change_reason = change_reason  # type: ignore[attr-defined]
    dead_letter.save()
    exceptions_resolve_automatically(
        dedup_keys=[f"rejected_event:{dead_letter.batch_id}:{dead_letter.position}"],
        note=f"Dead letter {dead_letter.pk} {change_reason}: {note}",
        now=now,
    )


@transaction.atomic
def dead_letter_reapply(
    *, dead_letter: DeadLetter, actor: Any, raw: bytes | None = None, note: str = ""
) -> dict[str, Any]:
    """Re-apply a dead letter, as received or as corrected (``raw``), through the same
    ingestion as a push. Refuses, changing nothing, while the event is still not valid."""
    dead_letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
    _require_open(dead_letter)
    event_bytes = bytes(raw if raw is not None else dead_letter.raw)
    checked = parse_event(0, event_bytes)
    if not checked.valid:
        raise ValidationFailed(
            checked.error[1] if checked.error else "The event is not valid.",
            code="invalid_event",
            details={"raw": [checked.error[1] if checked.error else "invalid"]},
        )
    digest = hashlib.sha256(event_bytes).hexdigest()
    batch_id = uuid.uuid5(_NAMESPACE, f"{dead_letter.pk}:{digest}")
    body = b'{"batch_id":"' + str(batch_id).encode() + b'","events":[' + event_bytes + b"]}"
    result = batch_ingest(store_id=dead_letter.store_id, node_key=None, body=body)
    outcome = json.loads(result.body)["results"][0]
    _close(
        dead_letter=dead_letter,
        status=DeadLetter.Status.REAPPLIED,
        actor=actor,
        note=(f"{note}\n" if note else "")
        + f"Re-applied{' as corrected' if raw is not None else ''}: {outcome['status']}.",
        change_reason="re-applied",
    )
    return outcome


@transaction.atomic
def dead_letter_void(*, dead_letter: DeadLetter, actor: Any, reason: str) -> DeadLetter:
    """Close a dead letter without applying it; the reason is required and kept."""
    if not reason.strip():
        raise ValidationFailed("Say why the event is voided.", details={"reason": ["Required."]})
    dead_letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
    _require_open(dead_letter)
    _close(
        dead_letter=dead_letter,
        status=DeadLetter.Status.VOIDED,
        actor=actor,
        note=reason.strip(),
        change_reason="voided",
    )
    register = Register.objects.filter(
        store_id=dead_letter.store_id, code=dead_letter.register_code
    ).first()
    if register is not None and dead_letter.seq is not None:
        register_high_water_refresh(register_id=register.pk)
    return dead_letter
