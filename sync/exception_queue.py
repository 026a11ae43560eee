"""Raising and auto-resolving reconciliation exceptions.

Raising is idempotent: each exception has a ``dedup_key`` (type plus what it is about), and
``INSERT … ON CONFLICT (dedup_key)`` makes a second raise of an open exception — a replayed
event, two batches racing — a no-op instead of an error that would abort the batch, while a
problem that comes back after it was resolved (a clock drifting off again) reopens it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q

from erp.bulk import insert_rows
from sync.models import ReconciliationException

Type = ReconciliationException.Type
Severity = ReconciliationException.Severity

SEVERITY = {
    Type.TOTALS_MISMATCH: Severity.BLOCKING,
    Type.PRICE_DIFFERS: Severity.WARNING,
    Type.NEGATIVE_STOCK: Severity.WARNING,
    Type.BUSINESS_DATE_MISMATCH: Severity.WARNING,
    Type.CLOCK_SKEW: Severity.WARNING,
    Type.SEQ_GAP: Severity.BLOCKING,
    Type.CURRENCY_MISMATCH: Severity.BLOCKING,
    Type.LATE_FOR_CLOSED_PERIOD: Severity.INFO,
    Type.EVENT_CONFLICT: Severity.BLOCKING,
    Type.REJECTED_EVENT: Severity.BLOCKING,
}


@dataclass(frozen=True)
class Problem:
    type: str
    store_id: int
    dedup_key: str
    message: str
    register_id: int | None = None
    business_date: dt.date | None = None
    event_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)


_COLUMNS = (
    ("type", "text"), ("severity", "text"), ("store_id", "bigint"), ("register_id", "bigint"),
    ("business_date", "date"), ("event_id", "uuid"), ("dedup_key", "text"), ("message", "text"),
    ("details", "jsonb"), ("status", "text"), ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"), ("resolution_note", "text"),
)  # fmt: skip
_encoder = DjangoJSONEncoder()


def exceptions_raise(*, problems: Sequence[Problem], now: dt.datetime) -> int:
    """Open an exception for each problem not already open. Returns how many were opened
    (new or reopened)."""
    if not problems:
        return 0
    unique = {p.dedup_key: p for p in problems}
    returned = insert_rows(
        "sync_reconciliationexception",
        _COLUMNS,
        [
            (
                p.type, SEVERITY[p.type], p.store_id, p.register_id, p.business_date,
                p.event_id, p.dedup_key[:200], p.message, _encoder.encode(p.details), "open",
                now, now, "",
            )
            for p in unique.values()
        ],
        # Known and open: nothing to do. Known but resolved: the problem is back, so reopen it.
        on_conflict=(
            "ON CONFLICT (dedup_key) DO UPDATE SET status = 'open', resolved_at = NULL, "
            "resolved_by_id = NULL, message = excluded.message, details = excluded.details, "
            "updated_at = excluded.updated_at "
            "WHERE sync_reconciliationexception.status = 'resolved'"
        ),
        returning="id",
    )  # fmt: skip
    if returned:
        created = list(ReconciliationException.objects.filter(pk__in=[r[0] for r in returned]))
        ReconciliationException.history.bulk_history_create(
            created, default_change_reason="raised at ingestion", default_date=now
        )
    return len(returned)


def exceptions_resolve_automatically(
    *,
    dedup_keys: Sequence[str] = (),
    prefix: str | None = None,
    keep: Sequence[str] = (),
    note: str,
    now: dt.datetime,
) -> int:
    """Resolve open exceptions whose cause is gone: those named in ``dedup_keys``, or every
    one whose key starts with ``prefix`` except those in ``keep``."""
    query = Q(dedup_key__in=list(dedup_keys)) if dedup_keys else Q()
    if prefix is not None:
        query &= Q(dedup_key__startswith=prefix)
    if not dedup_keys and prefix is None:
        return 0
    rows = list(
        ReconciliationException.objects.filter(query)
        .exclude(dedup_key__in=list(keep))
        .exclude(status=ReconciliationException.Status.RESOLVED)
        .select_for_update()
    )
    for row in rows:
        row.status = ReconciliationException.Status.RESOLVED
        row.resolved_at = now
        row.updated_at = now
        row.resolution_note = note
        row._change_reason = "resolved automatically"  # type: ignore[attr-defined]
        row.save(update_fields=["status", "resolved_at", "updated_at", "resolution_note"])
    return len(rows)
