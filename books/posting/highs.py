"""Step 1 of a posting run: the high waters, and the last business date per store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection, transaction
from django.db.models import Max

from books.posting.common import SOURCE_TABLES, Highs
from stores.models import Store

# --- 1. high waters -------------------------------------------------------------------------------


def source_highs() -> Highs:
    """The largest id of each source table, every row at or below which is committed."""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # New ingestion waits behind this lock request while it waits for batches in
            # flight: give up after a moment (OperationalError; the task retries, the beat and
            # the close post again) rather than hold ingestion up.
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            cursor.execute(f"LOCK TABLE {', '.join(SOURCE_TABLES)} IN SHARE MODE")
            cursor.execute(
                "SELECT (SELECT coalesce(max(id), 0) FROM stores_saleline),"
                " (SELECT coalesce(max(id), 0) FROM stores_tender),"
                " (SELECT coalesce(max(id), 0) FROM inventory_stockmove)"
            )
            line, tender, move = cursor.fetchone()
        return Highs(line=line, tender=tender, move=move)
    from inventory.models import StockMove
    from stores.models import SaleLine, Tender

    return Highs(
        line=SaleLine.objects.aggregate(m=Max("id"))["m"] or 0,
        tender=Tender.objects.aggregate(m=Max("id"))["m"] or 0,
        move=StockMove.objects.aggregate(m=Max("id"))["m"] or 0,
    )


def cutoffs(
    *, stores: Sequence[Store], through: dt.date | None, now: dt.datetime
) -> dict[int, dt.date]:
    """Last business date to post per store: the day before its local today, or ``through``."""
    out = {}
    for store in stores:
        yesterday = now.astimezone(store.tzinfo).date() - dt.timedelta(days=1)
        out[store.pk] = min(yesterday, through) if through else yesterday
    return out
