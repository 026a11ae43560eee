"""Month-end close (tasks run eagerly here; see test_close_worker for a real worker)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from books import export
from books.close import period_close_run, period_close_start
from books.models import CloseReport, FiscalPeriod, Job, JournalEntry
from books.posting import store_days_post
from books.selectors import trial_balance
from books.services import period_ensure
from sync.models import ReconciliationException
from tests.books.conftest import LATER, push
from tests.sync.builders import Till

pytestmark = pytest.mark.django_db


def _close(code: str = "2026-11", *, override: str = "") -> Job:
    period = period_ensure(day=dt.date.fromisoformat(f"{code}-01"))
    job = period_close_start(period=period, actor=None, override_reason=override, now=LATER)
    # the task is sent on commit; run it the way the worker does
    return period_close_run(job_id=str(job.pk), now=LATER)


def test_close_posts_every_store_day_reports_and_locks(shop) -> None:
    # given: sales on two days of November, nothing posted yet
    _store, key = shop()
    till = Till()
    push(key, [till.sale([("A", "2", "1.99")])])
    till.day = dt.date(2026, 11, 30)
    push(key, [till.sale([("B", "1", "3.50")])])

    # when
    job = _close()

    # then: both days posted, report stored, period locked
    assert job.state == Job.State.SUCCEEDED, job.message
    assert job.progress == 100
    assert JournalEntry.objects.filter(kind="daily_sales").count() == 2
    period = FiscalPeriod.objects.get(code="2026-11")
    assert period.status == FiscalPeriod.Status.CLOSED
    report = CloseReport.objects.get(period=period).content
    assert {r["code"] for r in report["trial_balance"]} >= {"1000", "2300", "4000", "5000"}
    by_store = report["sales_and_tax_by_store"]
    assert by_store == [
        {"store": "S01", "tax_code": "STD", "currency": "EUR", "revenue": "6.2800",
         "returns": "0", "tax": "1.2000"}
    ]  # fmt: skip
    assert report["stock_valuation"][0]["location"] == "S01"


def test_running_the_close_again_posts_nothing_twice(shop) -> None:
    _store, key = shop()
    push(key, [Till().sale([("A", "2", "1.99")])])
    period = period_ensure(day=dt.date(2026, 11, 1))
    job = period_close_start(period=period, actor=None, now=LATER)
    store_days_post(through=period.end, now=LATER)  # as if a first attempt died after posting
    done = period_close_run(job_id=str(job.pk), now=LATER)
    assert done.state == Job.State.SUCCEEDED
    assert JournalEntry.objects.count() == 1
    again = period_close_run(job_id=str(job.pk), now=LATER)
    assert again.state == Job.State.SUCCEEDED
    assert JournalEntry.objects.count() == 1


def test_blocking_exceptions_refuse_the_lock_unless_overridden(shop) -> None:
    _store, key = shop()
    till = Till()
    bad = till.sale([("A", "1", "1.99")])
    bad["data"]["totals"]["gross"] = "2.99"  # totals_mismatch: blocking
    push(key, [bad])
    assert ReconciliationException.objects.filter(severity="blocking", status="open").exists()

    refused = _close()
    assert refused.state == Job.State.FAILED
    assert refused.result["code"] == "blocking_exceptions"
    assert FiscalPeriod.objects.get(code="2026-11").status == FiscalPeriod.Status.OPEN

    done = _close(override="Till S01/R1 mis-keyed; corrected in December")
    assert done.state == Job.State.SUCCEEDED
    period = FiscalPeriod.objects.get(code="2026-11")
    assert period.status == "closed"
    assert period.override_reason.startswith("Till S01/R1")
    assert CloseReport.objects.get(period=period).content["override_reason"]


def test_a_sale_arriving_after_close_is_posted_late_in_the_first_open_period(shop) -> None:
    # given: November is closed
    _store, key = shop()
    till = Till()
    push(key, [till.sale([("A", "1", "1.99")])])
    assert _close().state == Job.State.SUCCEEDED

    # when: a November sale arrives in December
    late = till.sale([("B", "1", "3.50")])
    push(key, [late])
    store_days_post(now=LATER)

    # then: posted on 1 December, flagged, raised, listed on December's report; November is
    # untouched and still closed
    entry = JournalEntry.objects.get(late=True)
    assert entry.date == dt.date(2026, 12, 1)
    assert entry.business_date == dt.date(2026, 11, 23)
    assert entry.period.code == "2026-12"
    assert ReconciliationException.objects.filter(type="late_for_closed_period").count() == 1
    assert FiscalPeriod.objects.get(code="2026-11").status == "closed"
    nov = trial_balance(period_code="2026-11")
    assert sum(r.debit for r in nov) == Decimal("1.99") + Decimal("0.50")
    assert _close("2026-12").state == Job.State.SUCCEEDED
    report = CloseReport.objects.get(period__code="2026-12").content
    assert report["late_arrivals"] == [
        {"entry": entry.pk, "store": "S01", "business_date": "2026-11-23", "date": "2026-12-01"}
    ]


def test_a_closed_period_refuses_a_line_even_from_the_orm(shop) -> None:
    _store, key = shop()
    push(key, [Till().sale([("A", "1", "1.99")])])
    assert _close().state == Job.State.SUCCEEDED
    entry = JournalEntry.objects.get()
    line = entry.lines.first()
    # A draft entry in the closed period, so that what refuses is the period's lock and not
    # the posted entry's immutability: PostgreSQL refuses the entry, SQLite its line.
    entry.pk = None
    entry.uuid = uuid.uuid4()
    entry.status = JournalEntry.Status.DRAFT
    line.pk = None

    def draft_with_a_line() -> None:
        entry.save()
        line.entry = entry
        line.save()

    with pytest.raises(DatabaseError, match="closed"), transaction.atomic():
        draft_with_a_line()


def test_periods_close_in_order(shop) -> None:
    period_ensure(day=dt.date(2026, 10, 5))
    with pytest.raises(Exception, match="periods close in order"):
        period_close_start(period=period_ensure(day=dt.date(2026, 11, 5)), actor=None)


def test_journal_export_has_every_entry(shop) -> None:
    _store, key = shop()
    push(key, [Till().sale([("A", "1", "1.99")])])
    store_days_post(now=LATER)
    period = FiscalPeriod.objects.get(code="2026-11")
    text = export.journal_text(period=period)
    assert "store:S01" in text
    csv_text = export.journal_csv(period=period)
    assert csv_text.splitlines()[0].startswith("entry,date,kind,store")
    assert len(csv_text.splitlines()) == 1 + JournalEntry.objects.get().lines.count()


def test_a_period_is_not_closed_before_its_last_day_ends_in_every_store(shop) -> None:
    shop(timezone="Pacific/Kiritimati")  # UTC+14: its day ends first …
    shop(code="S02", timezone="Pacific/Pago_Pago")  # … UTC−11: its day ends last
    period = period_ensure(day=dt.date(2026, 11, 1))
    # 1 December 10:00 UTC: already December in Kiritimati, still 30 November in Pago Pago
    with pytest.raises(Exception, match="not over yet in S02"):
        period_close_start(
            period=period, actor=None, now=dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
        )
    job = period_close_start(
        period=period, actor=None, now=dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    )
    assert job.state == Job.State.QUEUED


def test_a_fault_in_the_close_fails_the_job_visibly(shop, monkeypatch) -> None:
    import books.close as close_module

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(close_module.selectors, "stock_valuation", broken)
    with pytest.raises(RuntimeError):
        _close()
    job = Job.objects.get()
    assert job.state == Job.State.FAILED
    assert "disk on fire" in job.message
    assert FiscalPeriod.objects.get(code="2026-11").status == FiscalPeriod.Status.OPEN
