"""The books in the HQ API: periods and close, jobs, reports (decimal strings)."""

from __future__ import annotations

import datetime as dt

import pytest

from books.models import FiscalPeriod, Job
from books.posting import store_days_post
from books.services import period_ensure
from tests.books.conftest import LATER, push
from tests.sync.builders import Till

pytestmark = pytest.mark.django_db


@pytest.fixture
def month(shop):
    _store, key = shop()
    till = Till()
    push(key, [till.sale([("A", "2", "1.99")]), till.sale([("B", "1", "3.50")])])
    store_days_post(now=LATER)


def test_periods_are_listed_and_read_by_code(month, auditor_client) -> None:
    listed = auditor_client.get("/api/v1/periods/")
    assert listed.status_code == 200
    assert [p["code"] for p in listed.json()["results"]] == ["2026-11"]
    one = auditor_client.get("/api/v1/periods/2026-11/")
    assert one.json()["status"] == "open"
    assert auditor_client.get("/api/v1/periods/2026-10/").status_code == 404


def test_finance_closes_a_period_and_follows_the_job(month, finance_client) -> None:
    # when: the close is started (tasks run eagerly in these tests, on commit)
    started = finance_client.post("/api/v1/periods/2026-11/close", {}, format="json")

    # then
    assert started.status_code == 202, started.content
    job = started.json()
    assert job["period"] == "2026-11"
    assert job["state"] in ("queued", "running", "succeeded")
    # the test transaction never commits, so run what the worker would
    from books.close import period_close_run

    period_close_run(job_id=job["id"], now=LATER)
    read = finance_client.get(f"/api/v1/jobs/{job['id']}")
    assert read.status_code == 200
    assert read.json()["state"] == "succeeded"
    assert read.json()["progress"] == 100
    assert FiscalPeriod.objects.get(code="2026-11").status == "closed"
    again = finance_client.post("/api/v1/periods/2026-11/close", {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "period_closed"


def test_auditors_and_staff_cannot_close(month, auditor_client, staff_client) -> None:
    assert auditor_client.post("/api/v1/periods/2026-11/close", {}).status_code == 403
    assert staff_client.post("/api/v1/periods/2026-11/close", {}).status_code == 403
    assert not Job.objects.exists()


def test_close_refuses_unknown_fields(month, finance_client) -> None:
    answer = finance_client.post("/api/v1/periods/2026-11/close", {"force": True}, format="json")
    assert answer.status_code == 400
    assert not Job.objects.exists()


def test_trial_balance_report_has_decimal_strings(month, auditor_client) -> None:
    answer = auditor_client.get("/api/v1/reports/trial-balance?period=2026-11")
    assert answer.status_code == 200
    body = answer.json()
    assert body["debit"] == body["credit"]
    assert isinstance(body["debit"], str)
    cash = next(r for r in body["rows"] if r["code"] == "1000")
    assert cash["debit"] == "7.4800"
    assert cash["balance"] == "7.4800"


def test_daily_sales_report(month, auditor_client) -> None:
    answer = auditor_client.get("/api/v1/reports/daily-sales?store=S01&date=2026-11-23")
    assert answer.status_code == 200
    body = answer.json()
    assert body["sales"] == 2
    assert body["gross"] == "7.4800"
    assert body["tenders"] == [{"method": "cash", "type": "sale", "amount": "7.4800"}]
    assert len(body["entries"]) == 1
    bad = auditor_client.get("/api/v1/reports/daily-sales?store=S01&date=yesterday")
    assert bad.status_code == 400
    assert (
        auditor_client.get("/api/v1/reports/daily-sales?store=NOPE&date=2026-11-23").status_code
        == 404
    )


def test_stock_valuation_report(month, auditor_client) -> None:
    answer = auditor_client.get("/api/v1/reports/stock-valuation?date=2026-11-30")
    assert answer.status_code == 200
    (row,) = answer.json()["locations"]
    assert row["location"] == "S01"
    assert row["qty"] == "-3.000"  # sold from no recorded stock
    assert row["value"] == "-2.0000"


def test_reports_need_a_role(month, make_client) -> None:
    nobody = make_client()
    assert nobody.get("/api/v1/reports/trial-balance?period=2026-11").status_code == 403


def test_jobs_are_listed(month, finance_client) -> None:
    period_ensure(day=dt.date(2026, 11, 1))
    finance_client.post("/api/v1/periods/2026-11/close", {}, format="json")
    listed = finance_client.get("/api/v1/jobs/")
    assert listed.status_code == 200
    assert listed.json()["count"] == 1
