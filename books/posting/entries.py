"""Step 3 of a posting run: entries, lines, ranges and late-arrival exceptions."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal

from books.models import (
    FiscalPeriod,
    JournalEntry,
    PostedSource,
    StoreDayPosting,
)
from books.posting.common import ZERO, Highs, PostingResult
from books.services import accounts_resolve, period_for_posting
from erp.bulk import insert_rows


def entries_write(*, days, highs: Highs, prev, stores, now: dt.datetime, actor) -> PostingResult:
    if not days:
        return PostingResult(entries=0, store_days=0, sale_lines=0, late_entries=0)
    by_id = {s.pk: s for s in stores}
    resolve = accounts_resolve()
    entries, postings, lines_by_key, late = [], [], {}, []
    periods: dict[dt.date, FiscalPeriod] = {}
    for key in sorted(days):
        sd = days[key]
        store = by_id[sd.store_id]
        if sd.business_date not in periods:
            periods[sd.business_date] = period_for_posting(sd.business_date)
        period = periods[sd.business_date]
        date = sd.business_date if period.start <= sd.business_date <= period.end else period.start
        is_late = date != sd.business_date
        lines = []
        for (role, tax_code), amount in sorted(sd.amounts.items()):
            if not amount:
                continue
            account = resolve(role, store_id=store.pk, tax_code=tax_code)
            lines.append(
                (account, amount if amount > 0 else ZERO, -amount if amount < 0 else ZERO,
                 store.currency_id, store.pk, tax_code, sd.sources.get((role, tax_code), ""))
            )  # fmt: skip
        supplementary = key in prev
        posting = StoreDayPosting(
            store_id=store.pk,
            business_date=sd.business_date,
            line_low=prev.get(key, (0, 0, 0))[0] + 1,
            line_high=highs.line,
            tender_low=prev.get(key, (0, 0, 0))[1] + 1,
            tender_high=highs.tender,
            move_low=prev.get(key, (0, 0, 0))[2] + 1,
            move_high=highs.move,
            sale_lines=sd.sale_lines,
            created_at=now,
        )
        postings.append(posting)
        if not lines:
            continue
        kind = JournalEntry.Kind.SUPPLEMENTARY if supplementary else JournalEntry.Kind.DAILY_SALES
        what = "late arrivals" if is_late else ("supplementary" if supplementary else "sales")
        entries.append(
            (key, JournalEntry(
                uuid=uuid.uuid4(), kind=kind, status=JournalEntry.Status.POSTED, date=date,
                period=period, store_id=store.pk, business_date=sd.business_date, late=is_late,
                description=f"{store.code} {sd.business_date} {what}", created_at=now,
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            ))
        )  # fmt: skip
        lines_by_key[key] = lines
        if is_late:
            late.append((store, sd.business_date))
    created = _entries_insert([e for _, e in entries])
    entry_of = {key: entry for (key, _), entry in zip(entries, created, strict=True)}
    line_rows = []
    for key, lines in lines_by_key.items():
        entry = entry_of[key]
        for account, debit, credit, currency, store_id, tax_code, source in lines:
            line_rows.append(
                (entry.pk, account.pk, entry.date, debit, credit, currency, store_id, tax_code,
                 "", f"store-day {by_id[store_id].code} {key[1]} {source}"[:200])
            )  # fmt: skip
    _check_balanced(line_rows)
    insert_rows("books_journalline", _LINE_COLUMNS, line_rows)
    for posting in postings:
        found = entry_of.get((posting.store_id, posting.business_date))
        posting.entry_id = found.pk if found else None
    StoreDayPosting.objects.bulk_create(postings, batch_size=2000)
    sources = []
    for key, sd in days.items():
        found = entry_of.get(key)
        if found is None:
            continue
        sources += [
            PostedSource(kind=PostedSource.Kind.SESSION_CLOSE, key=k, entry=found)
            for k in sd.sessions
        ]
        sources += [
            PostedSource(kind=PostedSource.Kind.CASH_MOVEMENT, key=k, entry=found)
            for k in sd.cash_movements
        ]
    PostedSource.objects.bulk_create(sources)
    if late:
        _raise_late(late=late, entry_of=entry_of, now=now)
    return PostingResult(
        entries=len(created),
        store_days=len(days),
        sale_lines=sum(sd.sale_lines for sd in days.values()),
        late_entries=len(late),
        entry_ids=tuple(e.pk for e in created),
    )


_LINE_COLUMNS = (
    ("entry_id", "bigint"), ("account_id", "bigint"), ("date", "date"), ("debit", "numeric"),
    ("credit", "numeric"), ("currency", "text"), ("store_id", "bigint"), ("tax_code", "text"),
    ("description", "text"), ("source", "text"),
)  # fmt: skip
_ENTRY_COLUMNS = (
    ("uuid", "uuid"), ("kind", "text"), ("status", "text"), ("date", "date"),
    ("period_id", "bigint"), ("store_id", "bigint"), ("business_date", "date"),
    ("late", "boolean"), ("description", "text"), ("created_at", "timestamptz"),
    ("created_by_id", "integer"),
)  # fmt: skip


def _entries_insert(entries: list[JournalEntry]) -> list[JournalEntry]:
    if not entries:
        return []
    rows = [
        (e.uuid, e.kind, e.status, e.date, e.period_id, e.store_id, e.business_date, e.late,
         e.description, e.created_at, e.created_by_id)
        for e in entries
    ]  # fmt: skip
    returned = insert_rows("books_journalentry", _ENTRY_COLUMNS, rows, returning="id, uuid")
    ids = {uuid.UUID(str(u)) if not isinstance(u, uuid.UUID) else u: pk for pk, u in returned}
    for e in entries:
        e.pk = ids[e.uuid]
    return entries


def _check_balanced(line_rows: list[tuple]) -> None:
    """The service-layer half of the balance rule (all the rule there is on SQLite)."""
    from books.errors import UnbalancedEntry

    sums: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for row in line_rows:
        sums[(row[0], row[5])] += row[3] - row[4]
    bad = {k: v for k, v in sums.items() if v}
    if bad:
        raise UnbalancedEntry(details={"entries": sorted({k[0] for k in bad})})


def _raise_late(*, late, entry_of, now: dt.datetime) -> None:
    from sync.exception_queue import Problem, Type, exceptions_raise

    problems = []
    for store, day in late:
        entry = entry_of[(store.pk, day)]
        problems.append(
            Problem(
                type=Type.LATE_FOR_CLOSED_PERIOD,
                store_id=store.pk,
                dedup_key=f"late_for_closed_period:{store.pk}:{day}:{entry.pk}",
                message=f"Events of {store.code} for {day} arrived after period "
                f"{FiscalPeriod.code_for(day)} closed; posted on {entry.date} in entry "
                f"#{entry.pk}.",
                business_date=day,
                details={"entry": entry.pk, "posted_on": str(entry.date)},
            )
        )
    exceptions_raise(problems=problems, now=now)
