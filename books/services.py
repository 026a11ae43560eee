"""Writes of the books: periods, journal entries and their reversals, account choice.

Every posted entry balances per currency and is never changed. The database enforces both
on PostgreSQL (``books/migrations/0002_journal_triggers.py``); these services check them too,
for a clear message, and are the whole of the balance and delete rules on SQLite.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from books.errors import EntryImmutable, PeriodClosed, UnbalancedEntry
from books.models import Account, FiscalPeriod, JournalEntry, JournalLine
from erp.errors import ValidationFailed

ZERO = Decimal("0")


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


# --- periods -------------------------------------------------------------------------------------


def period_bounds(code: str) -> tuple[dt.date, dt.date]:
    try:
        year, month = (int(part) for part in code.split("-"))
        start = dt.date(year, month, 1)
    except ValueError as exc:
        raise ValidationFailed(f"{code!r} is not a period (YYYY-MM).") from exc
    if len(code) != 7:
        raise ValidationFailed(f"{code!r} is not a period (YYYY-MM).")
    return start, dt.date(year, month, calendar.monthrange(year, month)[1])


def period_ensure(*, day: dt.date) -> FiscalPeriod:
    """The period holding ``day``, created (open) when it does not exist yet."""
    code = FiscalPeriod.code_for(day)
    found = FiscalPeriod.objects.filter(code=code).first()
    if found is not None:
        return found
    start, end = period_bounds(code)
    with transaction.atomic():
        period, _ = FiscalPeriod.objects.get_or_create(
            code=code, defaults={"start": start, "end": end}
        )
    return period


def period_for_posting(day: dt.date) -> FiscalPeriod:
    """Where an amount of business date ``day`` is booked: its own period while that can
    post, else the first later period that can (created if needed) — a late arrival."""
    period = period_ensure(day=day)
    while not period.can_post():
        period = period_ensure(day=period.end + dt.timedelta(days=1))
    return period


# --- accounts ------------------------------------------------------------------------------------


def accounts_resolve() -> Callable[..., Account]:
    """A chooser of the most specific active account for a posting role: one of the store
    and the tax code, then of the store, then of the tax code, then the role's general
    account; the suspense account when the chart has none (finance may have removed it)."""
    by_role: dict[str, list[Account]] = defaultdict(list)
    for account in Account.objects.filter(active=True).order_by("code"):
        by_role[account.role].append(account)

    def choose(role: str, *, store_id: int | None = None, tax_code: str = "") -> Account:
        candidates = by_role.get(role, [])
        for want_store, want_tax in ((True, True), (True, False), (False, True), (False, False)):
            for account in candidates:
                store_ok = account.store_id == store_id if want_store else account.store_id is None
                tax_ok = (
                    bool(tax_code) and account.tax_code == tax_code
                    if want_tax
                    else (account.tax_code == "")
                )
                if store_ok and tax_ok:
                    return account
        if role != Account.Role.SUSPENSE:
            return choose(Account.Role.SUSPENSE, store_id=store_id, tax_code="")
        raise ValidationFailed("The chart of accounts has no active suspense account.")

    return choose


# --- journal entries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    account: Account
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    currency: str = "EUR"
    store_id: int | None = None
    tax_code: str = ""
    description: str = ""
    source: str = ""


def _validate_lines(lines: Sequence[LineInput]) -> None:
    if len(lines) < 2:
        raise UnbalancedEntry("An entry needs at least two lines.")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for n, line in enumerate(lines):
        if line.debit < 0 or line.credit < 0 or (line.debit > 0) == (line.credit > 0):
            raise ValidationFailed(
                f"Line {n + 1}: a line is a debit or a credit, with a positive amount.",
                details={"line": n},
            )
        totals[line.currency] += line.debit - line.credit
    bad = {currency: str(diff) for currency, diff in totals.items() if diff}
    if bad:
        raise UnbalancedEntry(
            "Debits and credits differ in " + ", ".join(sorted(bad)) + ".", details=bad
        )


def translate_db_error(exc: DatabaseError) -> Exception:
    """A trigger's refusal as an application error (SQLSTATE TB00x; SQLite's messages)."""
    text = str(exc)
    code = getattr(getattr(exc, "__cause__", None), "sqlstate", None)
    if code == "TB002" or "does not balance" in text or "has no lines" in text:
        return UnbalancedEntry(text.splitlines()[0])
    if code == "TB003" or "(TB003)" in text:
        return PeriodClosed(text.splitlines()[0])
    if code in ("TB001", "TB004") or "(TB001)" in text or "(TB004)" in text:
        return EntryImmutable(text.splitlines()[0])
    return exc


@transaction.atomic
def journal_entry_post(
    *,
    date: dt.date,
    description: str,
    lines: Sequence[LineInput],
    actor: Any = None,
    kind: str = JournalEntry.Kind.MANUAL,
    store_id: int | None = None,
    reverses: JournalEntry | None = None,
) -> JournalEntry:
    """Post a balanced entry dated ``date`` (refused in a closed period)."""
    _validate_lines(lines)
    period = period_ensure(day=date)
    if not period.can_post():
        raise PeriodClosed(f"Period {period.code} is closed; nothing can be dated into it.")
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(
                kind=kind,
                status=JournalEntry.Status.POSTED,
                date=date,
                period=period,
                store_id=store_id,
                description=description[:300],
                reverses=reverses,
                created_at=timezone.now(),
                created_by=_user(actor),
            )
            JournalLine.objects.bulk_create(
                [
                    JournalLine(
                        entry=entry, account=line.account, date=date, debit=line.debit,
                        credit=line.credit, currency=line.currency, store_id=line.store_id,
                        tax_code=line.tax_code, description=line.description[:200],
                        source=line.source[:200],
                    )
                    for line in lines
                ]
            )  # fmt: skip
    except IntegrityError as exc:
        if reverses is not None and "reverses" in str(exc):
            raise EntryImmutable(f"Entry #{reverses.pk} is already reversed.") from exc
        raise translate_db_error(exc) from exc
    except DatabaseError as exc:
        raise translate_db_error(exc) from exc
    return entry


def journal_entry_reverse(
    *, entry: JournalEntry, actor: Any = None, date: dt.date | None = None, reason: str = ""
) -> JournalEntry:
    """Correct a posted entry the only way the books allow: a linked entry with every line's
    sides swapped, dated ``date`` (default: the entry's date, or the first open period's
    first day when that period is closed)."""
    if entry.kind == JournalEntry.Kind.REVERSAL:
        raise EntryImmutable("A reversal is not reversed; post a new entry instead.")
    if JournalEntry.objects.filter(reverses=entry).exists():
        raise EntryImmutable(f"Entry #{entry.pk} is already reversed.")
    when = date or entry.date
    when_period = period_for_posting(when)
    if not when_period.start <= when <= when_period.end:
        when = when_period.start
    lines = [
        LineInput(
            account=line.account, debit=line.credit, credit=line.debit, currency=line.currency,
            store_id=line.store_id, tax_code=line.tax_code,
            description=f"reversal of line {line.pk}", source=f"reverses entry {entry.pk}",
        )
        for line in entry.lines.select_related("account").order_by("id")
    ]  # fmt: skip
    text = f"Reversal of #{entry.pk}: {entry.description}"
    if reason:
        text += f" ({reason})"
    return journal_entry_post(
        date=when, description=text, lines=lines, actor=actor,
        kind=JournalEntry.Kind.REVERSAL, store_id=entry.store_id, reverses=entry,
    )  # fmt: skip


def journal_guard_delete(instances: Sequence[JournalEntry | JournalLine]) -> None:
    """The service-layer refusal to delete posted rows (SQLite has no trigger for it)."""
    for obj in instances:
        entry = obj if isinstance(obj, JournalEntry) else obj.entry
        if entry.status == JournalEntry.Status.POSTED:
            raise EntryImmutable()
