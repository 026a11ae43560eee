"""Books benchmark: post every store-day of a month and close it, on PostgreSQL.

    .venv/bin/python benchmarks/close.py                       # 50 stores × 30 days × 300 sales × 4 lines
    .venv/bin/python benchmarks/close.py --stores 10 --days 7  # quicker

It creates its own database (``tillbook_bench_close``) on the PostgreSQL named by ``--pg``
(default 127.0.0.1:5432, user postgres), migrates it, creates the stores (4 registers each),
2,000 products and two tax rates through the services, then seeds November 2026 with
PostgreSQL ``COPY``: sales, their lines, one tender each (cash or card), the stock moves of
every line, and a closed session per register and day (with a small cash over/short). Then,
in this process and on that database:

1. the reference: a raw ``GROUP BY store, business_date`` over the same sale lines (sum of
   line totals), as the performance notes measure it;
2. posting: ``books.posting.store_days_post`` for every store-day of the month;
3. close: ``books.close.period_close_start`` + ``period_close_run`` (what the Celery task
   runs): post (nothing left), reconcile, check, report, lock.

It prints each time, lines per second, and the ratio to the reference measured in the same run,
and checks that the trial balance balances and that the journal's revenue plus output tax
equals the sum of the seeded line totals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DB = "tillbook_bench_close"
N_PRODUCTS = 2000
REGISTERS = ["R1", "R2", "R3", "R4"]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
MONTH = (2026, 11)


def env_for(pg: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    env.update(ERP_ENV="test", DATABASE_URL=f"{pg}/{DB}", CELERY_TASK_ALWAYS_EAGER="true")
    return env


SEED = r"""
import sys
from decimal import Decimal
from inventory.models import Currency
from inventory import services as inv
from stores import services as st
n_stores = int(sys.argv[1])
zones = sys.argv[2].split(",")
inv.tax_rate_create(actor=None, code="STD", name="Standard", rate=Decimal("19"), inclusive=True)
inv.tax_rate_create(actor=None, code="RED", name="Reduced", rate=Decimal("7"), inclusive=True)
pl = inv.price_list_create(actor=None, code="PL", name="PL", currency=Currency.objects.get(code="EUR"))
for i in range(n_stores):
    store = st.store_create(actor=None, code=f"S{i:03d}", name=f"Store {i}", timezone=zones[i % len(zones)],
                            currency=pl.currency, price_list=pl)
    for r in ["R1", "R2", "R3", "R4"]:
        st.register_create(actor=None, store=store, code=r)
inv.products_bulk_upsert(actor=None, rows=[{"sku": f"{100000 + i}", "name": f"Product {i}",
    "tax_code": "RED" if i % 5 == 0 else "STD", "cost": Decimal(f"0.{10 + i % 80:02d}")} for i in range(2000)])
"""


def setup_database(pg: str, n_stores: int) -> None:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    env = env_for(pg)
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    code = SEED.replace("sys.argv[1]", repr(str(n_stores))).replace(
        "sys.argv[2]", repr(",".join(ZONES))
    )
    subprocess.run([PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True)


def _tax(total_cents: int, rate: int) -> int:
    """Inclusive tax of a line in cents, rounded half-up (as ingestion does)."""
    return (total_cents * rate * 2 + (100 + rate)) // ((100 + rate) * 2)


SALE_COLUMNS = (
    "event_id, type, store_id, register_id, seq, receipt_no, basket_id, session_id, cashier, "
    "currency, net, tax, gross, occurred_at, business_date, received_at"
)
LINE_COLUMNS = (
    "sale_id, line_no, sku, qty, unit_price, discount, tax_code, line_total, "
    "price_override_reason, original_line_no, store_id, business_date, tax, net"
)
TENDER_COLUMNS = (
    "sale_id, position, method, amount, change, reference, offline_authorized, store_id, "
    "business_date"
)
MOVE_COLUMNS = (
    "location_id, product_id, qty_delta, kind, reason, reference, business_date, source_event, "
    "line_no, created_at"
)
SESSION_COLUMNS = (
    "session_id, store_id, register_id, cashier, opening_float, opened_at, open_event, "
    "business_date, close_event, closed_at, sale_count, return_count, tenders, counted_cash"
)


def seed(pg: str, n_days: int, n_sales: int, n_lines: int) -> tuple[int, int]:
    """COPY a month of sales into the database, one COPY stream per table, each on its own
    connection so rows go out as they are made. Returns (sale lines, sum of line totals in
    cents)."""
    from zoneinfo import ZoneInfo

    rng = random.Random(11)
    conns = {t: psycopg.connect(f"{pg}/{DB}") for t in ("sale", "line", "tender", "move", "meta")}
    meta = conns["meta"]
    stores = meta.execute(
        "SELECT s.id, s.code, s.timezone, s.stock_location_id FROM stores_store s ORDER BY id"
    ).fetchall()
    registers = {
        (sid, code): rid
        for rid, sid, code in meta.execute("SELECT id, store_id, code FROM stores_register")
    }
    products = meta.execute(
        "SELECT p.id, p.sku, t.rate FROM inventory_product p "
        "JOIN inventory_taxrate t ON t.id = p.tax_rate_id ORDER BY p.id"
    ).fetchall()
    prices = [100 + (i * 37) % 900 for i in range(len(products))]
    price_dec = [Decimal(p) / 100 for p in prices]
    codes = ["RED" if int(rate) == 7 else "STD" for _, _, rate in products]
    now = dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)
    zero = Decimal(0)
    n_rows = 0
    total_cents = 0
    sessions = []
    cursors = {t: c.cursor() for t, c in conns.items()}
    with (
        cursors["sale"].copy(f"COPY stores_sale ({SALE_COLUMNS}) FROM STDIN") as sales,
        cursors["line"].copy(f"COPY stores_saleline ({LINE_COLUMNS}) FROM STDIN") as lines,
        cursors["tender"].copy(f"COPY stores_tender ({TENDER_COLUMNS}) FROM STDIN") as tenders,
        cursors["move"].copy(f"COPY inventory_stockmove ({MOVE_COLUMNS}) FROM STDIN") as moves,
    ):
        for sid, code, tz, location in stores:
            zone = ZoneInfo(tz)
            seqs = dict.fromkeys(REGISTERS, 0)
            for d in range(n_days):
                day = dt.date(*MONTH, 1) + dt.timedelta(days=d)
                cash = dict.fromkeys(REGISTERS, 0)
                count = dict.fromkeys(REGISTERS, 0)
                opened = dt.datetime.combine(day, dt.time(7), zone)
                for n in range(n_sales):
                    register = REGISTERS[n % 4]
                    seqs[register] += 1
                    eid = uuid.UUID(int=rng.getrandbits(128), version=4)
                    gross = tax = 0
                    for line_no in range(1, n_lines + 1):
                        p = rng.randrange(len(products))
                        pid, sku, rate = products[p]
                        qty = 1 + rng.randrange(3)
                        total = qty * prices[p]
                        gross += total
                        line_tax = _tax(total, int(rate))
                        tax += line_tax
                        lines.write_row(
                            (eid, line_no, sku, qty, price_dec[p], zero, codes[p],
                             Decimal(total) / 100, "", None, sid, day,
                             Decimal(line_tax) / 100, Decimal(total - line_tax) / 100)
                        )  # fmt: skip
                        moves.write_row(
                            (location, pid, -qty, "sale", "", code, day, eid, line_no, now)
                        )
                    n_rows += n_lines
                    total_cents += gross
                    method = "cash" if n % 3 else "card"
                    if method == "cash":
                        cash[register] += gross
                    count[register] += 1
                    tenders.write_row(
                        (eid, 1, method, Decimal(gross) / 100, zero, "", False, sid, day)
                    )
                    sales.write_row(
                        (eid, "sale", sid, registers[(sid, register)], seqs[register],
                         f"{code}-{register}-{seqs[register]}", "", f"{code}-{register}-{d}",
                         "C1", "EUR", Decimal(gross - tax) / 100, Decimal(tax) / 100,
                         Decimal(gross) / 100, opened + dt.timedelta(seconds=60 + n * 100), day,
                         now)
                    )  # fmt: skip
                for register in REGISTERS:
                    over = rng.choice([0, 0, 0, 5, -10])
                    sessions.append(
                        (f"{code}-{register}-{d}", sid, registers[(sid, register)], "C1",
                         Decimal(100), opened, uuid.uuid4(), day, uuid.uuid4(),
                         opened + dt.timedelta(hours=12), count[register], 0,
                         f'{{"cash": "{Decimal(cash[register]) / 100}"}}',
                         Decimal(10000 + cash[register] + over) / 100)
                    )  # fmt: skip
    with cursors["meta"].copy(f"COPY stores_tillsession ({SESSION_COLUMNS}) FROM STDIN") as copy:
        for row in sessions:
            copy.write_row(row)
    for conn in conns.values():
        conn.commit()
        conn.close()
    with psycopg.connect(f"{pg}/{DB}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return n_rows, total_cents


def reference(pg: str) -> tuple[float, int]:
    with psycopg.connect(f"{pg}/{DB}") as conn:
        start = time.perf_counter()
        rows = conn.execute(
            "SELECT store_id, business_date, count(*), sum(line_total) FROM stores_saleline "
            "GROUP BY store_id, business_date"
        ).fetchall()
        return time.perf_counter() - start, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sales", type=int, default=300, help="sales per store and day")
    parser.add_argument("--lines", type=int, default=4, help="lines per sale")
    args = parser.parse_args()

    print(f"setting up {DB} …", flush=True)
    t0 = time.perf_counter()
    setup_database(args.pg, args.stores)
    n_lines, total_cents = seed(args.pg, args.days, args.sales, args.lines)
    print(f"seeded {n_lines:,} sale lines in {time.perf_counter() - t0:.0f} s", flush=True)
    # warm the cache the same way for the reference and for posting
    reference(args.pg)
    ref_s, ref_groups = reference(args.pg)

    os.environ.update(env_for(args.pg))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erp.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db.models import Sum

    from books.close import period_close_run, period_close_start
    from books.models import JournalLine
    from books.posting import store_days_post
    from books.services import period_ensure

    last = dt.date(*MONTH, 1) + dt.timedelta(days=args.days - 1)
    now = dt.datetime(2026, 12, 15, 12, tzinfo=dt.UTC)
    start = time.perf_counter()
    posted = store_days_post(through=last, now=now)
    post_s = time.perf_counter() - start
    start = time.perf_counter()
    period = period_ensure(day=dt.date(*MONTH, 1))
    job = period_close_start(period=period, actor=None)
    job = period_close_run(job_id=str(job.pk), now=now)
    close_s = time.perf_counter() - start
    assert job.state == "succeeded", job.message

    lines = JournalLine.objects.filter(entry__period=period)
    sums = lines.aggregate(d=Sum("debit"), c=Sum("credit"))
    assert sums["d"] == sums["c"], sums
    sold = lines.filter(account__role__in=["revenue", "output_tax"]).aggregate(
        c=Sum("credit"), d=Sum("debit")
    )
    assert sold["c"] - sold["d"] == Decimal(total_cents) / 100, (sold, total_cents)

    total = post_s + close_s
    print()
    print(f"stores {args.stores}, days {args.days}, sales/day {args.sales}, lines/sale "
          f"{args.lines}: {n_lines:,} sale lines, {posted.entries:,} entries, "
          f"{lines.count():,} journal lines")  # fmt: skip
    print()
    print("| step | seconds | sale lines/s | × reference |")
    print("|---|---:|---:|---:|")
    print(f"| reference: raw GROUP BY store, day over the sale lines ({ref_groups} groups) | "
          f"{ref_s:.2f} | {n_lines / ref_s:,.0f} | 1.0 |")  # fmt: skip
    print(f"| post every store-day | {post_s:.2f} | {n_lines / post_s:,.0f} | "
          f"{post_s / ref_s:.1f} |")  # fmt: skip
    print(f"| close (post, reconcile, check, report, lock) | {close_s:.2f} | "
          f"{n_lines / close_s:,.0f} | {close_s / ref_s:.1f} |")  # fmt: skip
    print(f"| **post + close** | **{total:.2f}** | {n_lines / total:,.0f} | "
          f"{total / ref_s:.1f} |")  # fmt: skip
    print(f"\nchecked: trial balance {sums['d']} = {sums['c']}; revenue + output tax = "
          f"{Decimal(total_cents) / 100} = seeded line totals")  # fmt: skip


if __name__ == "__main__":
    main()
