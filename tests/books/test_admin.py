"""Finance and auditor views of the books in the admin."""

from __future__ import annotations

import pytest
from django.test import Client

from books.models import Account, JournalEntry
from books.posting import store_days_post
from tests.books.conftest import LATER, push
from tests.factories import UserFactory
from tests.sync.builders import Till

pytestmark = pytest.mark.django_db


@pytest.fixture
def posted(shop) -> JournalEntry:
    _store, key = shop()
    push(key, [Till().sale([("A", "2", "1.99")])])
    store_days_post(now=LATER)
    return JournalEntry.objects.get()


def _client(role: str) -> Client:
    client = Client()
    client.force_login(UserFactory(roles=[role]))
    return client


@pytest.mark.parametrize("role", ["finance", "auditor"])
def test_finance_and_auditors_read_the_books(posted, role) -> None:
    client = _client(role)
    cash = Account.objects.get(code="1000")
    pages = {
        "/admin/books/fiscalperiod/": "2026-11",
        "/admin/books/fiscalperiod/2026-11/trial-balance/": "Cash in stores",
        "/admin/books/fiscalperiod/2026-11/report/": "Trial balance",
        f"/admin/books/account/{cash.pk}/ledger/?period=2026-11": f"#{posted.pk}",
        f"/admin/books/journalentry/{posted.pk}/change/": "sale lines",
        "/admin/books/job/": "job",
    }
    for url, text in pages.items():
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert text in answer.content.decode(), url


def test_exports_download(posted) -> None:
    client = _client("auditor")
    text = client.get("/admin/books/fiscalperiod/2026-11/journal-text/")
    assert text.status_code == 200
    assert b"store:S01" in text.content
    csv = client.get("/admin/books/fiscalperiod/2026-11/journal-csv/")
    assert csv.content.startswith(b"entry,date,kind")
    report = client.get("/admin/books/fiscalperiod/2026-11/report-csv/")
    assert b"trial_balance" in report.content


def test_finance_edits_the_chart_and_auditors_cannot(posted) -> None:
    account = Account.objects.get(code="5300")
    data = {"code": "5300", "name": "Cash rounding", "kind": "expense", "role": "rounding",
            "store": "", "tax_code": "", "active": "on"}  # fmt: skip
    denied = _client("auditor").post(f"/admin/books/account/{account.pk}/change/", data)
    assert denied.status_code == 403
    done = _client("finance").post(f"/admin/books/account/{account.pk}/change/", data)
    assert done.status_code == 302
    account.refresh_from_db()
    assert account.name == "Cash rounding"
    assert account.history.count() >= 1


def test_entries_cannot_be_changed_or_deleted_in_the_admin(posted) -> None:
    client = _client("finance")
    assert client.get(f"/admin/books/journalentry/{posted.pk}/delete/").status_code == 403
    assert client.get("/admin/books/journalentry/add/").status_code == 403


def test_reverse_action_posts_a_linked_reversal(posted) -> None:
    client = _client("finance")
    answer = client.post(
        "/admin/books/journalentry/",
        {"action": "reverse", "_selected_action": [str(posted.pk)]},
    )
    assert answer.status_code == 302
    reversal = JournalEntry.objects.get(reverses=posted)
    assert reversal.kind == "reversal"
