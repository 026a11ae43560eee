"""The write path for what stores report: sales and returns, sessions, cash, device states.

Called by sync ingestion inside the batch's transaction, many rows at a time, with set-based
inserts. Each row's key is the event's UUID, so the same event cannot be recorded twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erp.bulk import insert_rows

# Sales, lines and tenders as rows, in the order :func:`sale_rows_record` takes them.
SALE_COLUMNS = (
    ("event_id", "uuid"), ("type", "text"), ("store_id", "bigint"), ("register_id", "bigint"),
    ("seq", "bigint"), ("receipt_no", "text"), ("basket_id", "text"), ("session_id", "text"),
    ("cashier", "text"), ("currency", "text"), ("net", "numeric"), ("tax", "numeric"),
    ("gross", "numeric"), ("occurred_at", "timestamptz"), ("business_date", "date"),
    ("original_event", "uuid"), ("received_at", "timestamptz"),
)  # fmt: skip
LINE_COLUMNS = (
    ("sale_id", "uuid"), ("line_no", "integer"), ("sku", "text"), ("qty", "numeric"),
    ("unit_price", "numeric"), ("discount", "numeric"), ("tax_code", "text"),
    ("line_total", "numeric"), ("price_override_reason", "text"),
    ("original_line_no", "integer"), ("store_id", "bigint"), ("business_date", "date"),
    ("tax", "numeric"), ("net", "numeric"),
)  # fmt: skip
TENDER_COLUMNS = (
    ("sale_id", "uuid"), ("position", "integer"), ("method", "text"), ("amount", "numeric"),
    ("change", "numeric"), ("reference", "text"), ("offline_authorized", "boolean"),
    ("store_id", "bigint"), ("business_date", "date"),
)  # fmt: skip


def sale_rows_record(
    *,
    sales: Sequence[tuple[Any, ...]],
    lines: Sequence[tuple[Any, ...]],
    tenders: Sequence[tuple[Any, ...]],
) -> None:
    """Record sales, lines and tenders given as rows (:data:`SALE_COLUMNS`,
    :data:`LINE_COLUMNS`, :data:`TENDER_COLUMNS` order), for ingestion, which builds them as
    it goes. Each column's values are of one type (see insert_rows' ``typed``): ids and days
    as text, amounts as Decimals or all as their decimal text."""
    insert_rows("stores_sale", SALE_COLUMNS, sales, typed=True)
    insert_rows("stores_saleline", LINE_COLUMNS, lines, typed=True)
    insert_rows("stores_tender", TENDER_COLUMNS, tenders, typed=True)


def till_session_open_record(
    *,
    session_id: str,
    store_id: int,
    register_id: int,
    cashier: str,
    opening_float: Decimal,
    opened_at: dt.datetime,
    business_date: dt.date,
    event_id: uuid.UUID,
) -> None:
    """Record a session's opening; its close may have arrived first (offline nodes reorder
    nothing, but a session can span batches and a close can be re-sent after a gap)."""
    from stores.models import TillSession

    session, _ = TillSession.objects.get_or_create(
        store_id=store_id,
        session_id=session_id,
        defaults={"register_id": register_id},
    )
    TillSession.objects.filter(pk=session.pk).update(
        cashier=cashier,
        opening_float=opening_float,
        opened_at=opened_at,
        business_date=business_date,
        open_event=event_id,
    )


def till_session_close_record(
    *,
    session_id: str,
    store_id: int,
    register_id: int,
    closed_at: dt.datetime,
    business_date: dt.date,
    event_id: uuid.UUID,
    first_seq: int,
    last_seq: int,
    sale_count: int,
    return_count: int,
    gross: Decimal,
    tax: Decimal,
    tenders: dict[str, str],
    counted_cash: Decimal,
) -> None:
    from stores.models import TillSession

    session, _ = TillSession.objects.get_or_create(
        store_id=store_id,
        session_id=session_id,
        defaults={"register_id": register_id, "business_date": business_date},
    )
    TillSession.objects.filter(pk=session.pk).update(
        closed_at=closed_at,
        close_event=event_id,
        first_seq=first_seq,
        last_seq=last_seq,
        sale_count=sale_count,
        return_count=return_count,
        gross=gross,
        tax=tax,
        tenders=tenders,
        counted_cash=counted_cash,
    )


@dataclass(frozen=True)
class CashMovementRow:
    event_id: uuid.UUID
    store_id: int
    register_id: int
    session_id: str
    kind: str
    amount: Decimal
    reason: str
    occurred_at: dt.datetime
    business_date: dt.date


def cash_movements_record(*, movements: Sequence[CashMovementRow]) -> None:
    insert_rows(
        "stores_cashmovement",
        (
            ("event_id", "uuid"), ("store_id", "bigint"), ("register_id", "bigint"),
            ("session_id", "text"), ("kind", "text"), ("amount", "numeric"), ("reason", "text"),
            ("occurred_at", "timestamptz"), ("business_date", "date"),
        ),
        [
            (
                m.event_id, m.store_id, m.register_id, m.session_id, m.kind, m.amount, m.reason,
                m.occurred_at, m.business_date,
            )
            for m in movements
        ],
    )  # fmt: skip


@dataclass(frozen=True)
class DeviceReportRow:
    event_id: uuid.UUID
    store_id: int
    register_id: int
    device: str
    kind: str
    state: str
    detail: str
    occurred_at: dt.datetime


def device_reports_record(*, reports: Sequence[DeviceReportRow]) -> None:
    insert_rows(
        "stores_devicereport",
        (
            ("event_id", "uuid"), ("store_id", "bigint"), ("register_id", "bigint"),
            ("device", "text"), ("kind", "text"), ("state", "text"), ("detail", "text"),
            ("occurred_at", "timestamptz"),
        ),
        [
            (r.event_id, r.store_id, r.register_id, r.device, r.kind, r.state, r.detail,
             r.occurred_at)
            for r in reports
        ],
    )  # fmt: skip
