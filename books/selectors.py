"""Reads of the books: trial balance, ledgers, drill-down to sources, reports."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum

from books.models import (
    Account,
    FiscalPeriod,
    Job,
    JournalEntry,
    JournalLine,
    PostedSource,
    StoreDayPosting,
)
from erp.errors import NotFound
from stores.models import Sale, SaleLine, Store, Tender

ZERO = Decimal("0")
CENT = Decimal("0.01")


def period_get(*, code: str) -> FiscalPeriod:
    period = FiscalPeriod.objects.filter(code=code).first()
    if period is None:
        raise NotFound(f"There is no period {code}.")
    return period


def period_list() -> QuerySet[FiscalPeriod]:
    return FiscalPeriod.objects.select_related("closed_by").order_by("-start")


def job_list() -> QuerySet[Job]:
    return Job.objects.select_related("period", "created_by")


@dataclass(frozen=True)
class BalanceRow:
    account_id: int
    code: str
    name: str
    kind: str
    currency: str
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


def _lines_in(period: FiscalPeriod | None, through: dt.date | None = None) -> QuerySet:
    lines = JournalLine.objects.filter(entry__status=JournalEntry.Status.POSTED)
    if period is not None:
        lines = lines.filter(date__gte=period.start, date__lte=period.end)
    if through is not None:
        lines = lines.filter(date__lte=through)
    return lines


def trial_balance(
    *, period_code: str | None = None, store_id: int | None = None
) -> list[BalanceRow]:
    """Debits and credits per account and currency in a period (all periods when None)."""
    period = period_get(code=period_code) if period_code else None
    lines = _lines_in(period)
    if store_id is not None:
        lines = lines.filter(store_id=store_id)
    rows = (
        lines.values("account_id", "account__code", "account__name", "account__kind", "currency")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
        .order_by("account__code", "currency")
    )
    return [
        BalanceRow(
            account_id=r["account_id"],
            code=r["account__code"],
            name=r["account__name"],
            kind=r["account__kind"],
            currency=r["currency"],
            debit=_money(r["debit"]),
            credit=_money(r["credit"]),
        )
        for r in rows
    ]


def _money(value: Any) -> Decimal:
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def general_ledger(*, account: Account, period_code: str | None = None) -> QuerySet[JournalLine]:
    period = period_get(code=period_code) if period_code else None
    return (
        _lines_in(period)
        .filter(account=account)
        .select_related("entry", "store")
        .order_by("date", "entry_id", "id")
    )


def entry_get(*, pk: int) -> JournalEntry:
    entry = (
        JournalEntry.objects.select_related("period", "store", "reverses", "created_by")
        .filter(pk=pk)
        .first()
    )
    if entry is None:
        raise NotFound(f"There is no journal entry #{pk}.")
    return entry


def entry_for_sale(*, event_id: uuid.UUID | str) -> JournalEntry | None:
    """The entry a sale or return went into: the posting whose line (or tender) range holds
    its rows. None while it is not posted."""
    sale = Sale.objects.filter(pk=event_id).first()
    if sale is None:
        return None
    # Lines and tenders are indexed by (store, business date, sale): name all three.
    own = {"store_id": sale.store_id, "business_date": sale.business_date, "sale_id": sale.pk}
    line = SaleLine.objects.filter(**own).order_by("id").values_list("id", flat=True)
    tender = Tender.objects.filter(**own).order_by("id").values_list("id", flat=True)
    postings = StoreDayPosting.objects.filter(
        store_id=sale.store_id, business_date=sale.business_date
    )
    first_line, first_tender = line.first(), tender.first()
    if first_line is not None:
        postings = postings.filter(line_low__lte=first_line, line_high__gte=first_line)
    elif first_tender is not None:
        postings = postings.filter(tender_low__lte=first_tender, tender_high__gte=first_tender)
    else:
        return None
    posting = postings.select_related("entry").first()
    return posting.entry if posting else None


def entry_for_stock_move(*, move_id: int) -> JournalEntry | None:
    """The entry a stock move of a store's location was valued in (None while unposted or
    for a warehouse move, which store posting does not book)."""
    from inventory.models import StockMove

    move = StockMove.objects.filter(pk=move_id).first()
    store = Store.objects.filter(stock_location_id=move.location_id).first() if move else None
    if move is None or store is None:
        return None
    posting = (
        StoreDayPosting.objects.filter(
            store=store, business_date=move.business_date, move_low__lte=move.pk,
            move_high__gte=move.pk,
        )
        .select_related("entry")
        .first()
    )  # fmt: skip
    return posting.entry if posting else None


def entry_sources(*, entry: JournalEntry, limit: int = 200) -> dict[str, Any]:
    """What an entry carries: its store-day ranges, the sales in them (first ``limit``),
    and the sessions and cash movements listed by key."""
    postings = list(StoreDayPosting.objects.filter(entry=entry).order_by("id"))
    query = Q(pk__in=[])
    for p in postings:
        # The lines' store and date too: lines are indexed by (store, business date, sale).
        query |= Q(
            store_id=p.store_id,
            business_date=p.business_date,
            lines__store_id=p.store_id,
            lines__business_date=p.business_date,
            lines__id__gte=p.line_low,
            lines__id__lte=p.line_high,
        )
    sales = list(Sale.objects.filter(query).distinct().order_by("register_id", "seq")[:limit])
    return {
        "postings": postings,
        "sales": sales,
        "sources": list(PostedSource.objects.filter(entry=entry)),
    }


# --- reports ------------------------------------------------------------------------------------


def daily_sales(*, store: Store, day: dt.date) -> dict[str, Any]:
    """Sales of a store-day as ingested: counts, gross, tax per code, tenders per method."""
    sales = Sale.objects.filter(store=store, business_date=day)
    by_type = {
        r["type"]: r
        for r in sales.values("type").annotate(
            n=Count("pk"), gross=Sum("gross"), tax=Sum("tax"), net=Sum("net")
        )
    }
    lines = (
        SaleLine.objects.filter(store=store, business_date=day)
        .values("tax_code", "sale__type")
        .annotate(total=Sum("line_total"), n=Count("id"))
        .order_by("tax_code")
    )
    tenders = (
        Tender.objects.filter(store=store, business_date=day)
        .values("method", "sale__type")
        .annotate(amount=Sum("amount"), change=Sum("change"))
        .order_by("method")
    )
    entries = JournalEntry.objects.filter(store=store, business_date=day).order_by("id")
    return {
        "store": store.code,
        "date": day,
        "currency": store.currency_id,
        "sales": by_type.get("sale", {}).get("n", 0),
        "returns": by_type.get("return", {}).get("n", 0),
        "gross": _money(by_type.get("sale", {}).get("gross")),
        "returns_gross": _money(by_type.get("return", {}).get("gross")),
        "tax": _money(by_type.get("sale", {}).get("tax")),
        "by_tax_code": [
            {
                "tax_code": r["tax_code"],
                "type": r["sale__type"],
                "lines": r["n"],
                "total": _money(r["total"]),
            }
            for r in lines
        ],
        "tenders": [
            {
                "method": r["method"],
                "type": r["sale__type"],
                "amount": _money(r["amount"]) - _money(r["change"]),
            }
            for r in tenders
        ],
        "entries": [e.pk for e in entries],
    }


def sales_and_tax_by_store(*, period: FiscalPeriod) -> list[dict[str, Any]]:
    """Posted revenue and output tax per store and tax code of the entries in a period."""
    rows = (
        _lines_in(period)
        .filter(
            account__role__in=[Account.Role.REVENUE, Account.Role.RETURNS, Account.Role.OUTPUT_TAX]
        )
        .values("store__code", "tax_code", "account__role", "currency")
        .annotate(debit=Sum("debit"), credit=Sum("credit"))
        .order_by("store__code", "tax_code", "account__role")
    )
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["store__code"] or "", r["tax_code"], r["currency"])
        item = out.setdefault(
            key,
            {"store": key[0], "tax_code": key[1], "currency": key[2], "revenue": ZERO,
             "returns": ZERO, "tax": ZERO},
        )  # fmt: skip
        amount = _money(r["credit"]) - _money(r["debit"])
        name = {"revenue": "revenue", "returns": "returns", "output_tax": "tax"}[r["account__role"]]
        item[name] += -amount if name == "returns" else amount
    return list(out.values())


def stock_valuation(*, day: dt.date) -> list[dict[str, Any]]:
    """Quantity on hand per location at the end of ``day`` (sum of moves), valued at the
    current weighted average cost (the catalogue cost where posting has none yet)."""
    sql = (
        "SELECT l.code, count(*), sum(x.q), sum(x.q * coalesce(ic.avg_cost, p.cost, 0)) FROM ("
        " SELECT location_id, product_id, sum(qty_delta) AS q FROM inventory_stockmove"
        " WHERE business_date <= %s GROUP BY location_id, product_id) x"
        " JOIN inventory_stocklocation l ON l.id = x.location_id"
        " JOIN inventory_product p ON p.id = x.product_id"
        " LEFT JOIN books_itemcost ic ON ic.location_id = x.location_id"
        " AND ic.product_id = x.product_id"
        " GROUP BY l.code ORDER BY l.code"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [day])
        rows = cursor.fetchall()
    return [
        {"location": code, "products": n, "qty": Decimal(str(q)).quantize(Decimal("0.001")),
         "value": Decimal(str(v)).quantize(CENT, rounding=ROUND_HALF_UP)}
        for code, n, q, v in rows
    ]  # fmt: skip


def late_entries(*, period: FiscalPeriod) -> QuerySet[JournalEntry]:
    return JournalEntry.objects.filter(period=period, late=True).select_related("store")


def period_exceptions(*, period: FiscalPeriod) -> QuerySet:
    from sync.models import ReconciliationException

    return (
        ReconciliationException.objects.filter(
            Q(business_date__gte=period.start, business_date__lte=period.end)
            | Q(business_date__isnull=True, created_at__date__lte=period.end)
        )
        .select_related("store")
        .order_by("store_id", "business_date", "id")
    )


def blocking_exceptions(*, period: FiscalPeriod) -> QuerySet:
    from sync.models import ReconciliationException

    return (
        period_exceptions(period=period)
        .filter(severity=ReconciliationException.Severity.BLOCKING)
        .exclude(status=ReconciliationException.Status.RESOLVED)
    )


def unposted_store_days(*, period: FiscalPeriod) -> list[tuple[str, dt.date]]:
    """Store-days of the period with sale lines that no posting covers (should be none
    after the close posted everything)."""
    covered = (
        StoreDayPosting.objects.filter(
            business_date__gte=period.start, business_date__lte=period.end
        )
        .values("store_id", "business_date")
        .annotate(high=Sum("sale_lines"))
    )
    posted = {(r["store_id"], r["business_date"]): r["high"] for r in covered}
    counts = (
        SaleLine.objects.filter(business_date__gte=period.start, business_date__lte=period.end)
        .values("store_id", "store__code", "business_date")
        .annotate(n=Count("id"))
    )
    return [
        (r["store__code"], r["business_date"])
        for r in counts
        if posted.get((r["store_id"], r["business_date"]), 0) != r["n"]
    ]
