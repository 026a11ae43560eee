"""The journal of a period for auditors and accountants: CSV, and a plain-text double-entry
journal that hledger and ledger-cli read.

The text journal has one transaction per entry, dated on its booking date, with the entry id
as code, the store as a tag (``store:S01``), the business date and the late flag as tags,
and each posting's source reference as a posting comment. Every posting carries its amount
and currency (no elided amounts), so a reader checks the balance itself.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

from books.models import FiscalPeriod, JournalEntry, JournalLine


def _entries(period: FiscalPeriod):
    return (
        JournalEntry.objects.filter(period=period, status=JournalEntry.Status.POSTED)
        .select_related("store")
        .order_by("date", "id")
    )


def _lines(period: FiscalPeriod) -> Iterator[JournalLine]:
    return (
        JournalLine.objects.filter(entry__period=period, entry__status="posted")
        .select_related("account", "entry", "store")
        .order_by("entry__date", "entry_id", "id")
        .iterator(chunk_size=5000)
    )


CSV_HEADER = [
    "entry", "date", "kind", "store", "business_date", "late", "account", "account_name",
    "debit", "credit", "currency", "tax_code", "source", "description",
]  # fmt: skip


def journal_csv(*, period: FiscalPeriod) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for line in _lines(period):
        entry = line.entry
        writer.writerow(
            [
                entry.pk, entry.date.isoformat(), entry.kind,
                line.store.code if line.store else "",
                entry.business_date.isoformat() if entry.business_date else "",
                "yes" if entry.late else "", line.account.code, line.account.name,
                _plain(line.debit), _plain(line.credit), line.currency, line.tax_code,
                line.source, entry.description,
            ]
        )  # fmt: skip
    return out.getvalue()


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _amount(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.0001")), "f")


def _safe(text: str) -> str:
    return " ".join(text.replace(";", ",").split())


def journal_text(*, period: FiscalPeriod) -> str:
    """hledger/ledger journal text of the period's posted entries."""
    lines_by_entry: dict[int, list[JournalLine]] = {}
    for line in _lines(period):
        lines_by_entry.setdefault(line.entry_id, []).append(line)
    out = [f"; Tillbook journal, period {period.code} ({period.status})", ""]
    accounts = sorted(
        {line.account.ledger_name for lines in lines_by_entry.values() for line in lines}
    )
    out += [f"account {name}" for name in accounts]
    out.append("")
    for entry in _entries(period):
        lines = lines_by_entry.get(entry.pk, [])
        if not lines:
            continue
        tags = [f"entry:{entry.pk}", f"kind:{entry.kind}"]
        if entry.store is not None:
            tags.append(f"store:{entry.store.code}")
        if entry.business_date:
            tags.append(f"business_date:{entry.business_date.isoformat()}")
        if entry.late:
            tags.append("late:yes")
        out.append(f"{entry.date.isoformat()} ({entry.pk}) {_safe(entry.description)}")
        out.append(f"    ; {', '.join(tags)}")
        for line in lines:
            signed = line.debit - line.credit
            comment = [f"store:{line.store.code}"] if line.store else []
            if line.tax_code:
                comment.append(f"tax:{line.tax_code}")
            if line.source:
                comment.append(f"source:{_safe(line.source)}")
            out.append(
                f"    {line.account.ledger_name}  {_amount(signed)} {line.currency}"
                + (f"  ; {', '.join(comment)}" if comment else "")
            )
        out.append("")
    return "\n".join(out)
