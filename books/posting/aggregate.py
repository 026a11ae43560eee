"""Step 2 of a posting run: the aggregates of the new rows, per store-day."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from books.models import (
    ItemCost,
)
from books.posting.common import ZERO, Highs
from erp.bulk import insert_rows, select_rows
from stores.models import Store

# --- 2. aggregates: PostgreSQL -----------------------------------------------------------------

_CUT = (
    "unnest(%b::bigint[], %b::date[], %b::int[], %b::bigint[], %b::bigint[], %b::bigint[], "
    "%b::date[]) AS c(store_id, cutoff, minor, lf, tf, mf, thr)"
)
_PREV = (
    "(SELECT store_id, business_date, max(line_high) AS lh, max(tender_high) AS th, "
    "max(move_high) AS mh FROM books_storedayposting GROUP BY store_id, business_date)"
)


def pg_aggregate(cut: dict[int, dt.date], minors: dict[int, int], highs: Highs, marks):
    ids = sorted(cut)
    params = [
        ids,
        [cut[i] for i in ids],
        [minors[i] for i in ids],
        *([marks[i][k] for i in ids] for k in range(4)),
    ]
    sales = select_rows(
        f"""
        SELECT x.store_id, x.business_date, x.tax_code, x.type, sum(x.line_total - x.tax_in),
               sum(x.tax), count(*)
        FROM (
          SELECT l.store_id, l.business_date, l.tax_code, s.type, l.line_total,
                 -- the tax and net ingestion checked; computed at today's rate only for
                 -- lines that carry none (a tax code head office did not know then)
                 COALESCE(l.tax, CASE WHEN t.id IS NULL THEN 0
                      WHEN t.inclusive THEN round(l.line_total * t.rate / (100 + t.rate), c.minor)
                      ELSE round(l.line_total * t.rate / 100, c.minor) END) AS tax,
                 COALESCE(l.line_total - l.net, CASE WHEN t.inclusive THEN
                      round(l.line_total * t.rate / (100 + t.rate), c.minor) ELSE 0 END) AS tax_in
          FROM stores_saleline l
          JOIN {_CUT} ON c.store_id = l.store_id AND l.business_date <= c.cutoff
          JOIN stores_sale s ON s.event_id = l.sale_id
          LEFT JOIN {_PREV} p ON p.store_id = l.store_id AND p.business_date = l.business_date
          LEFT JOIN inventory_taxrate t ON t.code = l.tax_code
          WHERE l.id > coalesce(p.lh, 0) AND l.id <= %b
            AND (l.id > c.lf OR l.business_date > c.thr)
        ) x GROUP BY 1, 2, 3, 4
        """,
        [*params, highs.line],
    )
    tenders = select_rows(
        f"""
        SELECT t.store_id, t.business_date, t.method, s.type, sum(t.amount - t.change)
        FROM stores_tender t
        JOIN {_CUT} ON c.store_id = t.store_id AND t.business_date <= c.cutoff
        JOIN stores_sale s ON s.event_id = t.sale_id
        LEFT JOIN {_PREV} p ON p.store_id = t.store_id AND p.business_date = t.business_date
        WHERE t.id > coalesce(p.th, 0) AND t.id <= %b
          AND (t.id > c.tf OR t.business_date > c.thr)
        GROUP BY 1, 2, 3, 4
        """,
        [*params, highs.tender],
    )

    def moves_from(join: str = "") -> str:
        return f"""
        FROM inventory_stockmove m
        JOIN stores_store st ON st.stock_location_id = m.location_id
        JOIN {_CUT} ON c.store_id = st.id AND m.business_date <= c.cutoff
        LEFT JOIN {_PREV} p ON p.store_id = st.id AND p.business_date = m.business_date
        {join}
        WHERE m.id > coalesce(p.mh, 0) AND m.id <= %b
          AND (m.id > c.mf OR m.business_date > c.thr)
        """

    now = dt.datetime.now(dt.UTC)
    # Receipts of this run fold into the weighted average first (at the catalogue cost) …
    rows = select_rows(
        f"""
        SELECT m.location_id, m.product_id, sum(m.qty_delta),
               coalesce(max(pr.cost), 0)
        {moves_from("JOIN inventory_product pr ON pr.id = m.product_id")}
          AND m.kind = 'adjustment' AND m.reason = 'receipt' AND m.qty_delta > 0
        GROUP BY 1, 2
        """,
        [*params, highs.move],
    )
    if rows:
        insert_rows(
            "books_itemcost",
            (("location_id", "bigint"), ("product_id", "bigint"), ("qty", "numeric"),
             ("avg_cost", "numeric"), ("updated_at", "timestamptz")),
            [(loc, prod, qty, cost, now) for loc, prod, qty, cost in rows],
            on_conflict=_RECEIPT_UPSERT,
        )  # fmt: skip
    # … then every move of the run is valued at the average (the catalogue cost where none).
    valued_from = moves_from(
        "LEFT JOIN books_itemcost ic ON ic.location_id = m.location_id "
        "AND ic.product_id = m.product_id JOIN inventory_product pr ON pr.id = m.product_id"
    )
    moves = select_rows(
        f"""
        SELECT st.id, m.business_date, m.kind, m.reason,
               round(sum(m.qty_delta * coalesce(ic.avg_cost, pr.cost, 0)), max(c.minor))
        {valued_from}
        GROUP BY 1, 2, 3, 4
        """,
        [*params, highs.move],
    )
    # Books quantities follow every other move (receipts were added above); nothing to follow
    # while no receipt has ever been valued at these stores.
    if (
        not rows
        and not ItemCost.objects.filter(
            location_id__in=list(
                Store.objects.filter(pk__in=ids).values_list("stock_location_id", flat=True)
            )
        ).exists()
    ):
        return sales, tenders, moves
    _pg_execute(
        "UPDATE books_itemcost ic SET qty = ic.qty + d.q, updated_at = now() FROM ("
        f"SELECT m.location_id, m.product_id, sum(m.qty_delta) AS q {moves_from()}"
        " AND NOT (m.kind = 'adjustment' AND m.reason = 'receipt' AND m.qty_delta > 0)"
        " GROUP BY 1, 2) d WHERE ic.location_id = d.location_id AND ic.product_id = d.product_id",
        [*params, highs.move],
    )
    return sales, tenders, moves


def _pg_execute(sql: str, params: Sequence[object]) -> None:
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as raw:
        raw.execute(sql, list(params), binary=True)


_RECEIPT_UPSERT = """
ON CONFLICT (location_id, product_id) DO UPDATE SET
  avg_cost = CASE WHEN books_itemcost.qty > 0
    THEN round((books_itemcost.qty * books_itemcost.avg_cost + excluded.qty * excluded.avg_cost)
               / (books_itemcost.qty + excluded.qty), 6)
    ELSE excluded.avg_cost END,
  qty = books_itemcost.qty + excluded.qty,
  updated_at = excluded.updated_at
"""


# --- 2. aggregates: SQLite (Python, same rounding) ----------------------------------------------


def py_aggregate(cut: dict[int, dt.date], minors: dict[int, int], highs: Highs, prev):
    from inventory.models import Product, StockMove, TaxRate
    from stores.models import Sale, SaleLine, Tender

    rates = {t.code: (t.rate, t.inclusive) for t in TaxRate.objects.all()}
    quanta = {sid: Decimal(1).scaleb(-m) for sid, m in minors.items()}

    def new(row_id: int, store_id: int, day: dt.date, which: int, high: int) -> bool:
        if store_id not in cut or day > cut[store_id] or row_id > high:
            return False
        return row_id > prev.get((store_id, day), (0, 0, 0))[which]

    types = {}
    sales: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, 0])
    lines = SaleLine.objects.filter(id__lte=highs.line, store_id__in=list(cut)).values_list(
        "id", "store_id", "business_date", "tax_code", "line_total", "sale_id", "tax", "net"
    )
    lines = [row for row in lines if new(row[0], row[1], row[2], 0, highs.line)]
    for first in range(0, len(lines), 500):
        wanted = [row[5] for row in lines[first : first + 500]]
        types.update(Sale.objects.filter(pk__in=wanted).values_list("pk", "type"))
    for _, sid, day, code, total, sale_id, stored_tax, stored_net in lines:
        q = quanta[sid]
        tax = tax_in = ZERO
        if stored_tax is not None and stored_net is not None:
            # what ingestion checked, at the rate in force then
            tax, tax_in = stored_tax, total - stored_net
        elif code in rates:
            rate, inclusive = rates[code]
            raw = total * rate / (100 + rate) if inclusive else total * rate / 100
            tax = raw.quantize(q, rounding=ROUND_HALF_UP)
            tax_in = tax if inclusive else ZERO
        agg = sales[(sid, day, code, types[sale_id])]
        agg[0] += total - tax_in
        agg[1] += tax
        agg[2] += 1
    tenders: dict[tuple, Decimal] = defaultdict(Decimal)
    rows = Tender.objects.filter(id__lte=highs.tender, store_id__in=list(cut)).values_list(
        "id", "store_id", "business_date", "method", "amount", "change", "sale__type"
    )
    for tid, sid, day, method, amount, change, type_ in rows:
        if new(tid, sid, day, 1, highs.tender):
            tenders[(sid, day, method, type_)] += amount - change
    store_of = dict(Store.objects.filter(pk__in=list(cut)).values_list("stock_location_id", "pk"))
    run_moves = [
        m
        for m in StockMove.objects.filter(
            id__lte=highs.move, location_id__in=list(store_of)
        ).values_list(
            "id", "location_id", "product_id", "business_date", "kind", "reason", "qty_delta"
        )
        if new(m[0], store_of[m[1]], m[3], 2, highs.move)
    ]
    costs = {
        (c.location_id, c.product_id): c
        for c in ItemCost.objects.filter(location_id__in=list(store_of))
    }
    catalogue = dict(
        Product.objects.filter(pk__in={m[2] for m in run_moves}).values_list("pk", "cost")
    )
    now = dt.datetime.now(dt.UTC)
    receipts: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for _, loc, prod, _, kind, reason, qty in run_moves:
        if kind == "adjustment" and reason == "receipt" and qty > 0:
            receipts[(loc, prod)] += qty
    for key, qty in receipts.items():
        cost = catalogue.get(key[1]) or ZERO
        item = costs.get(key)
        if item is None:
            item = costs[key] = ItemCost(
                location_id=key[0], product_id=key[1], qty=ZERO, avg_cost=cost, updated_at=now
            )
        elif item.qty > 0:
            item.avg_cost = (item.qty * item.avg_cost + qty * cost) / (item.qty + qty)
        else:
            item.avg_cost = cost
        item.avg_cost = Decimal(item.avg_cost).quantize(Decimal("0.000001"), ROUND_HALF_UP)
        item.qty += qty
    values: dict[tuple, Decimal] = defaultdict(Decimal)
    for _, loc, prod, day, kind, reason, qty in run_moves:
        item = costs.get((loc, prod))
        avg = item.avg_cost if item is not None else (catalogue.get(prod) or ZERO)
        values[(store_of[loc], day, kind, reason)] += qty * avg
        if item is not None and not (kind == "adjustment" and reason == "receipt" and qty > 0):
            item.qty += qty
    for item in costs.values():
        item.updated_at = now
        item.avg_cost = Decimal(item.avg_cost).quantize(Decimal("0.000001"))
        item.save()
    moves = [
        (sid, day, kind, reason, value.quantize(quanta[sid], rounding=ROUND_HALF_UP))
        for (sid, day, kind, reason), value in values.items()
    ]
    sales_rows = [(*k, v[0], v[1], v[2]) for k, v in sales.items()]
    tender_rows = [(*k, v) for k, v in tenders.items()]
    return sales_rows, tender_rows, moves
