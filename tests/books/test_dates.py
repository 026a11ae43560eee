"""Business dates and periods across DST changes and month ends, in any IANA zone.

A sale belongs to the business date the node sent (ingestion stores it, and raises
``business_date_mismatch`` when ``occurred_at`` disagrees in the store's zone); posting
groups by that date and books it in that date's period.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from books.models import JournalEntry
from books.posting import store_days_post
from sync.models import ReconciliationException
from tests.books.conftest import LATER, push
from tests.sync.builders import Till

pytestmark = pytest.mark.django_db


def _local(zone: str, *parts: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold)  # type: ignore[misc]


def _sale_at(till: Till, local: dt.datetime, business_date: dt.date | None = None) -> dict:
    till.day = business_date or local.date()
    event = till.sale([("A", "1", "1.99")])
    event["occurred_at"] = local.isoformat()
    return event


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        # Europe/Berlin, last Sunday of October: 03:00 CEST → 02:00 CET, the 02:xx hour twice
        (
            "Europe/Berlin",
            _local("Europe/Berlin", 2026, 10, 25, 2, 30, fold=0),
            dt.date(2026, 10, 25),
        ),
        (
            "Europe/Berlin",
            _local("Europe/Berlin", 2026, 10, 25, 2, 30, fold=1),
            dt.date(2026, 10, 25),
        ),
        ("Europe/Berlin", _local("Europe/Berlin", 2026, 10, 25, 23, 59, 59), dt.date(2026, 10, 25)),
        # America/New_York, first Sunday of November: 02:00 EDT → 01:00 EST
        (
            "America/New_York",
            _local("America/New_York", 2026, 11, 1, 1, 30, fold=1),
            dt.date(2026, 11, 1),
        ),
        ("America/New_York", _local("America/New_York", 2026, 11, 1, 23, 45), dt.date(2026, 11, 1)),
        # Australia/Lord_Howe: a half-hour change (02:00 → 02:30 on the first Sunday of October)
        (
            "Australia/Lord_Howe",
            _local("Australia/Lord_Howe", 2026, 10, 4, 2, 45),
            dt.date(2026, 10, 4),
        ),
        (
            "Australia/Lord_Howe",
            _local("Australia/Lord_Howe", 2026, 10, 31, 23, 59, 59),
            dt.date(2026, 10, 31),
        ),
        # 23:59:59 local on the last day of a month: that month, although UTC is the next one
        ("Europe/Berlin", _local("Europe/Berlin", 2026, 11, 30, 23, 59, 59), dt.date(2026, 11, 30)),
        ("Asia/Tokyo", _local("Asia/Tokyo", 2026, 12, 31, 23, 59, 59), dt.date(2026, 12, 31)),
    ],
)
def test_a_sale_lands_on_its_local_business_date_and_period(shop, zone, local, expected) -> None:
    # given
    _store, key = shop(timezone=zone)
    till = Till(timezone=zone)
    push(key, [_sale_at(till, local)])
    assert not ReconciliationException.objects.filter(type="business_date_mismatch").exists()

    # when
    store_days_post(now=LATER.replace(year=2027, month=2))

    # then
    entry = JournalEntry.objects.get()
    assert entry.business_date == expected
    assert entry.date == expected
    assert entry.period.code == f"{expected:%Y-%m}"


def test_the_utc_instant_of_a_month_end_sale_is_in_the_next_month(shop) -> None:
    # 23:59:59 in Berlin on 30 November is 22:59:59 UTC; in New York it is 04:59:59 UTC on
    # 1 December — still November's books.
    _store, key = shop(timezone="America/New_York")
    local = dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=ZoneInfo("America/New_York"))
    assert local.astimezone(dt.UTC).date() == dt.date(2026, 12, 1)
    push(key, [_sale_at(Till(timezone="America/New_York"), local)])
    store_days_post(now=LATER)
    assert JournalEntry.objects.get().period.code == "2026-11"


def test_a_node_whose_business_date_disagrees_with_occurred_at_is_posted_as_sent(shop) -> None:
    # given: the node says 30 November (its day was still open) but it is 1 December 00:20 local
    _store, key = shop()
    local = dt.datetime(2026, 12, 1, 0, 20, tzinfo=ZoneInfo("Europe/Berlin"))
    push(key, [_sale_at(Till(), local, business_date=dt.date(2026, 11, 30))])

    store_days_post(now=LATER)

    # then: kept on the business date as sent, and a person is told
    entry = JournalEntry.objects.get()
    assert entry.business_date == dt.date(2026, 11, 30)
    assert entry.period.code == "2026-11"
    assert ReconciliationException.objects.filter(type="business_date_mismatch").count() == 1


def test_the_day_is_finished_by_the_stores_own_clock(shop) -> None:
    # Sydney's 23 November ends at 13:00 UTC; Berlin's at 23:00 UTC.
    _store, key = shop(code="SYD", timezone="Australia/Sydney")
    till = Till(timezone="Australia/Sydney")
    till.day = dt.date(2026, 11, 23)
    push(key, [till.sale([("A", "1", "1.99")])])
    assert store_days_post(now=dt.datetime(2026, 11, 23, 12, 59, tzinfo=dt.UTC)).entries == 0
    assert store_days_post(now=dt.datetime(2026, 11, 23, 13, 1, tzinfo=dt.UTC)).entries == 1
