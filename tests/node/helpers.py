"""Fill a node's outbox the way the till will: ``outbox_append`` with valid sale events, in a
transaction of their own (as a completed sale is). Also used from a node process:
``manage.py shell -c "from tests.node.helpers import append_sales; append_sales(5)"``."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from stores.local import OutboxEvent
from stores.outbox import outbox_append
from tests.sync.builders import Till

DAY = dt.date(2026, 11, 23)
# When the sales happened: 10:00 in the seed's store (Europe/Berlin), so business_date agrees
# with occurred_at and head office raises no exception about it.
OPENING = dt.datetime.combine(DAY, dt.time(10, 0), ZoneInfo("Europe/Berlin"))


def sale_data(lines: list[tuple[str, str, str]] | None = None) -> dict[str, Any]:
    """The ``data`` of a valid sale (totals and tax computed as head office checks them);
    the outbox gives the receipt number."""
    data = Till(day=DAY).sale(lines or [("SKU-A", "2", "1.99")])["data"]
    del data["receipt_no"]
    return data


def append_sale(
    lines: list[tuple[str, str, str]] | None = None, *, occurred_at: dt.datetime | None = None
) -> OutboxEvent:
    with transaction.atomic():
        return outbox_append(
            type="sale",
            payload=sale_data(lines),
            occurred_at=occurred_at or OPENING,
            business_date=DAY,
        )


def append_sales(n: int, lines: list[tuple[str, str, str]] | None = None) -> list[str]:
    """Append ``n`` sales, one transaction each; returns their event ids (and prints them, for
    a caller in another process)."""
    ids = [str(append_sale(lines).event_id) for _ in range(n)]
    print("EVENT_IDS=" + ",".join(ids))  # noqa: T201 - read by the test in another process
    return ids
