"""``insert_rows(typed=True)`` takes uuid, date, timestamptz and numeric columns as objects or as
their text, and both store the same values (PostgreSQL COPY; SQLite in Django's storage
formats)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from erp.bulk import insert_rows
from inventory.ledger import stock_levels_apply
from inventory.models import StockLevel, StockMove
from stores.models import Sale
from stores.records import sale_rows_record
from tests.factories import ProductFactory, RegisterFactory, StockLocationFactory

pytestmark = pytest.mark.django_db

COLUMNS = (
    ("location_id", "bigint"), ("product_id", "bigint"), ("qty_delta", "numeric"),
    ("kind", "text"), ("reason", "text"), ("reference", "text"), ("business_date", "date"),
    ("source_event", "uuid"), ("line_no", "integer"), ("created_at", "timestamptz"),
)  # fmt: skip


def test_text_and_objects_store_the_same_uuid_date_and_instant() -> None:
    location, product = StockLocationFactory(), ProductFactory()
    event = uuid.uuid4()
    day = dt.date(2026, 3, 29)  # the day Berlin moves to summer time
    # An instant with a non-UTC offset: stored as the same moment either way.
    at = dt.datetime(2026, 3, 29, 3, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    as_objects = (location.pk, product.pk, Decimal("-1.500"), "sale", "", "A", day, event, 1, at)
    as_text = (location.pk, product.pk, Decimal("-1.500"), "sale", "", "B", day.isoformat(),
               str(event), 2, at.isoformat())  # fmt: skip

    insert_rows("inventory_stockmove", COLUMNS, [as_objects], typed=True)
    insert_rows("inventory_stockmove", COLUMNS, [as_text], typed=True)

    stored = {
        m.reference: (m.source_event, m.business_date, m.created_at, m.qty_delta)
        for m in StockMove.objects.filter(location=location)
    }
    assert stored["A"] == stored["B"] == (event, day, at, Decimal("-1.500"))
    # The ORM finds both rows by each value, so the stored formats agree.
    assert (
        StockMove.objects.filter(source_event=event, business_date=day, created_at=at).count() == 2
    )


def test_a_nullable_uuid_column_given_as_text_after_a_null() -> None:
    """The type a column is copied as is taken from its first value that is not None: a sale
    without an original, then a return with one, as ingestion builds them."""
    register = RegisterFactory()
    store = register.store
    sale_id, return_id = uuid.uuid4(), uuid.uuid4()

    def row(event_id: uuid.UUID, kind: str, seq: int, original: uuid.UUID | None) -> tuple:
        return (
            str(event_id), kind, store.pk, register.pk, seq, f"R-{seq}", "", "", "", "EUR",
            "0.84", "0.16", "1.00", f"2026-01-05T09:0{seq}:00+00:00", "2026-01-05",
            None if original is None else str(original), "2026-01-05T10:00:00+00:00",
        )  # fmt: skip

    sale_rows_record(
        sales=[row(sale_id, "sale", 1, None), row(return_id, "return", 2, sale_id)],
        lines=[],
        tenders=[],
    )
    stored = dict(Sale.objects.filter(store=store).values_list("event_id", "original_event"))
    assert stored == {sale_id: None, return_id: sale_id}


def test_amounts_given_as_decimal_text_store_the_same_as_decimals() -> None:
    """Ingestion copies amounts as the decimal strings they arrived as."""
    location, product = StockLocationFactory(), ProductFactory()
    at = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    for reference, qty in (("A", Decimal("-2.125")), ("B", "-2.125"), ("C", "-0"), ("D", "007")):
        insert_rows(
            "inventory_stockmove",
            COLUMNS,
            [(location.pk, product.pk, qty, "sale", "", reference, dt.date(2026, 1, 5),
              uuid.uuid4(), 1, at)],
            typed=True,
        )  # fmt: skip
    stored = dict(StockMove.objects.filter(location=location).values_list("reference", "qty_delta"))
    assert stored == {"A": Decimal("-2.125"), "B": Decimal("-2.125"), "C": 0, "D": 7}


def test_levels_add_up_across_locations_and_report_only_the_negative_ones() -> None:
    here, there = StockLocationFactory(), StockLocationFactory()
    a, b = ProductFactory(), ProductFactory()
    now = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    stock_levels_apply(deltas={(here.pk, a.pk): Decimal("2"), (there.pk, b.pk): Decimal("5")},
                       now=now)  # fmt: skip
    negative = stock_levels_apply(
        deltas={(here.pk, a.pk): Decimal("-3.250"), (there.pk, b.pk): Decimal("-1"),
                (there.pk, a.pk): Decimal("0.5")},
        now=now,
        negative_only=True,
    )  # fmt: skip
    assert negative == {(here.pk, a.pk): Decimal("-1.250")}
    levels = {(lv.location_id, lv.product_id): lv.qty for lv in StockLevel.objects.all()}
    assert levels == {
        (here.pk, a.pk): Decimal("-1.250"),
        (there.pk, b.pk): Decimal("4"),
        (there.pk, a.pk): Decimal("0.5"),
    }
