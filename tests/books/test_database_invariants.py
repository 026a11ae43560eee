"""The journal's rules hold against raw SQL, not only through the services."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from books.errors import EntryImmutable, PeriodClosed, UnbalancedEntry
from books.models import Account, FiscalPeriod, JournalEntry, JournalLine
from books.services import LineInput, journal_entry_post, journal_entry_reverse, period_ensure

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 11, 10)


def _entry() -> JournalEntry:
    cash = Account.objects.get(code="1000")
    revenue = Account.objects.get(code="4000")
    return journal_entry_post(
        date=DAY,
        description="test",
        lines=[
            LineInput(account=cash, debit=Decimal("10.00")),
            LineInput(account=revenue, credit=Decimal("10.00")),
        ],
    )


def _raw_entry(cursor, status: str = "posted") -> int:
    period = period_ensure(day=DAY)
    cursor.execute(
        "INSERT INTO books_journalentry (uuid, kind, status, date, period_id, late, description,"
        " created_at) VALUES (%s, 'manual', %s, %s, %s, false, 'raw', %s) RETURNING id",
        [uuid.uuid4().hex, status, DAY, period.pk, timezone.now()],
    )
    return cursor.fetchone()[0]


def _raw_line(cursor, entry_id: int, account: str, debit: str, credit: str) -> None:
    cursor.execute(
        "INSERT INTO books_journalline (entry_id, account_id, date, debit, credit, currency,"
        " tax_code, description, source) SELECT %s, id, %s, %s, %s, 'EUR', '', '', ''"
        " FROM books_account WHERE code = %s",
        [entry_id, DAY, Decimal(debit), Decimal(credit), account],
    )


def _write(lines: list[tuple[str, str, str]], *, check_now: bool = True) -> int:
    """Insert an entry and ``lines`` with raw SQL. The balance check is deferred to commit;
    a test's transaction never commits, so ``check_now`` asks for it now, as COMMIT would."""
    with transaction.atomic(), connection.cursor() as cursor:
        entry_id = _raw_entry(cursor)
        for account, debit, credit in lines:
            _raw_line(cursor, entry_id, account, debit, credit)
        if check_now:
            cursor.execute("SET CONSTRAINTS books_entry_balanced IMMEDIATE")
    return entry_id


def _execute(sql: str, params: list) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.postgres
def test_an_unbalanced_entry_is_refused_by_the_database_at_commit() -> None:
    with pytest.raises(DatabaseError, match="does not balance"):
        _write([("1000", "10.00", "0"), ("4000", "0", "9.99")])


@pytest.mark.postgres
def test_a_posted_entry_without_lines_is_refused() -> None:
    with pytest.raises(DatabaseError, match="no lines"):
        _write([])


@pytest.mark.postgres
def test_a_balanced_raw_entry_is_accepted() -> None:
    entry_id = _write([("1000", "10.00", "0"), ("4000", "0", "10.00")])
    assert JournalLine.objects.filter(entry_id=entry_id).count() == 2


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE books_journalline SET debit = debit + 1 WHERE entry_id = %s",
        "UPDATE books_journalline SET account_id = account_id WHERE entry_id = %s",
        "DELETE FROM books_journalline WHERE entry_id = %s",
        "UPDATE books_journalentry SET description = 'changed' WHERE id = %s",
        "UPDATE books_journalentry SET status = 'draft' WHERE id = %s",
        "DELETE FROM books_journalentry WHERE id = %s",
    ],
)
def test_posted_lines_and_entries_cannot_be_changed_with_raw_sql(sql: str) -> None:
    entry = _entry()
    with pytest.raises(DatabaseError, match="posted"):
        _execute(sql, [entry.pk])
    assert JournalLine.objects.filter(entry=entry).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_adding_a_line_to_a_committed_entry_is_refused() -> None:
    entry = _entry()  # committed (transactional test)
    with pytest.raises(DatabaseError, match="no line can be added"):
        _execute(
            "INSERT INTO books_journalline (entry_id, account_id, date, debit, credit, currency,"
            " tax_code, description, source) SELECT %s, id, %s, 1, 0, 'EUR', '', '', ''"
            " FROM books_account WHERE code = '1000'",
            [entry.pk, DAY],
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_unbalanced_entry_is_refused_on_commit() -> None:
    with pytest.raises(DatabaseError, match="does not balance"):
        _write([("1000", "10.00", "0")], check_now=False)  # COMMIT runs the check
    assert not JournalEntry.objects.exists()


def test_negative_amounts_and_two_sided_lines_are_refused() -> None:
    entry = _entry()
    cash = Account.objects.get(code="1000")
    for debit, credit in ((Decimal("-1"), Decimal("0")), (Decimal("1"), Decimal("1"))):
        with pytest.raises(IntegrityError), transaction.atomic():
            JournalLine.objects.bulk_create(
                [JournalLine(entry=entry, account=cash, date=DAY, debit=debit, credit=credit,
                             currency="EUR")]
            )  # fmt: skip


def test_posted_lines_cannot_be_updated_even_on_sqlite() -> None:
    entry = _entry()
    with pytest.raises(DatabaseError):
        _execute("UPDATE books_journalline SET debit = 99 WHERE entry_id = %s", [entry.pk])
    with pytest.raises(DatabaseError):
        _execute("UPDATE books_journalentry SET date = %s WHERE id = %s", [DAY, entry.pk])


def test_the_orm_refuses_to_delete_posted_rows() -> None:
    entry = _entry()
    with pytest.raises(EntryImmutable):
        entry.delete()
    with pytest.raises(EntryImmutable):
        JournalLine.objects.filter(entry=entry).delete()
    with pytest.raises(EntryImmutable):
        JournalEntry.objects.all().delete()
    assert JournalLine.objects.filter(entry=entry).count() == 2


def test_the_service_refuses_an_unbalanced_entry() -> None:
    cash = Account.objects.get(code="1000")
    with pytest.raises(UnbalancedEntry):
        journal_entry_post(
            date=DAY,
            description="bad",
            lines=[LineInput(account=cash, debit=Decimal("1")),
                   LineInput(account=cash, credit=Decimal("2"))],
        )  # fmt: skip
    assert not JournalEntry.objects.exists()


def test_a_closed_period_refuses_lines_in_the_database_and_never_reopens() -> None:
    entry = _entry()
    with connection.cursor() as cursor:
        draft = _raw_entry(cursor, status="draft")
    period = FiscalPeriod.objects.get(code="2026-11")
    FiscalPeriod.objects.filter(pk=period.pk).update(status="closed")
    with pytest.raises(DatabaseError):
        _execute(
            "INSERT INTO books_journalline (entry_id, account_id, date, debit, credit, currency,"
            " tax_code, description, source) SELECT %s, id, %s, 1, 0, 'EUR', '', '', ''"
            " FROM books_account WHERE code = '1000'",
            [draft, DAY],
        )
    with pytest.raises(DatabaseError), transaction.atomic():
        FiscalPeriod.objects.filter(pk=period.pk).update(status="open")
    with pytest.raises(PeriodClosed):
        _entry()
    # a correction is a reversal, booked in the first open period
    reversal = journal_entry_reverse(entry=entry, reason="wrong account")
    assert reversal.reverses == entry
    assert reversal.date == dt.date(2026, 12, 1)
    assert {(ln.account.code, ln.debit, ln.credit) for ln in reversal.lines.all()} == {
        ("1000", Decimal("0"), Decimal("10.0000")),
        ("4000", Decimal("10.0000"), Decimal("0")),
    }
    with pytest.raises(EntryImmutable):
        journal_entry_reverse(entry=entry)


@pytest.mark.postgres
def test_a_draft_entry_with_lines_keeps_its_date_and_an_entry_stays_in_its_period() -> None:
    # given: a draft entry with a line, on 10 November
    with transaction.atomic(), connection.cursor() as cursor:
        entry_id = _raw_entry(cursor, status="draft")
        _raw_line(cursor, entry_id, "1000", "10.00", "0")
    december = period_ensure(day=dt.date(2026, 12, 3))

    # then: moving it (its line would keep the old date), or dating it outside its period,
    # is refused by the database
    for sql, params in (
        (
            "UPDATE books_journalentry SET date = %s WHERE id = %s",
            [dt.date(2026, 11, 20), entry_id],
        ),
        ("UPDATE books_journalentry SET period_id = %s WHERE id = %s", [december.pk, entry_id]),
    ):
        with (
            pytest.raises(DatabaseError, match=r"cannot change|outside its period"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)
    november = FiscalPeriod.objects.get(code="2026-11").pk
    with (
        pytest.raises(DatabaseError, match="outside its period"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        _raw_entry_on(cursor, day=dt.date(2026, 12, 3), period_id=november)


def _raw_entry_on(cursor, *, day: dt.date, period_id: int) -> None:
    cursor.execute(
        "INSERT INTO books_journalentry (uuid, kind, status, date, period_id, late, description,"
        " created_at) VALUES (%s, 'manual', 'draft', %s, %s, false, 'raw', %s)",
        [uuid.uuid4().hex, day, period_id, timezone.now()],
    )
