"""Ingestion benchmark: HTTP push through gunicorn into PostgreSQL, against raw COPY.

    .venv/bin/python benchmarks/ingest.py                 # 100,000 sales, 1 and 4 clients
    .venv/bin/python benchmarks/ingest.py --sales 20000   # quicker
    .venv/bin/python benchmarks/ingest.py --prefill 1000000  # also: tables already holding 1 M sales

It creates its own database (``tillbook_bench``) on the PostgreSQL named by ``--pg``
(default 127.0.0.1:5432, user postgres), migrates it, seeds 3 stores with 4 registers each
and 2,000 products with prices, and pre-generates realistic sales (about 4 lines, 1–2
tenders) as batches of 500 — JSON bodies built before any clock starts. Then, each on empty
ingestion tables:

1. the reference: the same rows (events, sales, lines, tenders, stock moves) written with
   PostgreSQL ``COPY`` in one stream, in 500-sale transactions;
2. HTTP push with 1 client, then with 4 concurrent clients (one register each), through
   gunicorn with 4 sync workers.

Before each measurement the tables are vacuumed and analysed and a checkpoint is taken, so no
set-up work (the truncate, the prefill's gigabytes of WAL) is still being written out during
it. It prints sales/s, rows/s (the rows of the five ledger tables plus stock-level upserts), p50
and p99 batch latency, the CPU time gunicorn and PostgreSQL spent per batch (from /proc: on
two cores, what bounds the 4-client rate and latency), the checkpoints PostgreSQL ran during
each run, and the ratio to the COPY rate measured in the same run. With ``--prefill`` the reference is measured twice, at the
start and again (on empty tables) just before the runs with stored sales, and each run is
compared with the one measured just before it: this machine's speed drifts by up to a half
within a run of this length, which one reference at the start attributed to the code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CENT = Decimal("0.01")
DB = "tillbook_bench"
STORES = [("BER1", "Europe/Berlin"), ("NYC1", "America/New_York"), ("SYD1", "Australia/Sydney")]
REGISTERS = ["R1", "R2", "R3", "R4"]
N_PRODUCTS = 2000


def q(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


# --- setup ---------------------------------------------------------------------------------------


BROKER = "redis://127.0.0.1:6379/7"


def broker_flush() -> None:
    import redis

    redis.Redis.from_url(BROKER).flushdb()


def env_for(pg: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    env.update(
        ERP_ENV="test",
        DATABASE_URL=f"{pg}/{DB}",
        # Ingestion sends a posting run for finished business days (the books); here it goes to
        # a broker no worker reads, as in production it goes to the workers: posting is
        # measured by benchmarks/close.py, not inside the push requests.
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_BROKER_URL=BROKER,
        API_THROTTLE_NODE="10000000/minute",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_CONN_MAX_AGE="600",
    )
    return env


SEED = r"""
import json, sys
from decimal import Decimal
from inventory.models import TaxRate, PriceList, Currency
from inventory import services as inv
from stores import services as st
n = int(sys.argv[1])
std = inv.tax_rate_create(actor=None, code="STD", name="Standard", rate=Decimal("19"), inclusive=True)
keys = {}
lists = {}
for code, tz, cur in [("BER1", "Europe/Berlin", "EUR"), ("NYC1", "America/New_York", "USD"), ("SYD1", "Australia/Sydney", "AUD")]:
    pl = inv.price_list_create(actor=None, code="PL-" + code, name=code, currency=Currency.objects.get(code=cur))
    lists[code] = pl
    store = st.store_create(actor=None, code=code, name=code, timezone=tz, currency=pl.currency, price_list=pl)
    for r in ["R1", "R2", "R3", "R4", "R5"]:
        st.register_create(actor=None, store=store, code=r)
    keys[code] = st.node_key_issue(actor=None, store=store)[1]
inv.products_bulk_upsert(actor=None, rows=[{"sku": f"{100000 + i}", "name": f"Product {i}", "tax_code": "STD", "cost": Decimal("0.50")} for i in range(n)])
import datetime as dt
for code, pl in lists.items():
    inv.prices_bulk_upsert(actor=None, price_list=pl, rows=[{"sku": f"{100000 + i}", "price": Decimal(f"{1 + i % 17}.{i % 100:02d}"), "valid_from": dt.date(2026, 1, 1)} for i in range(n)])
# Stores hold stock: a receipt of 1,000,000 units of every product in every store.
from django.db import connection
with connection.cursor() as c:
    c.execute(
        "INSERT INTO inventory_stocklevel (location_id, product_id, qty, updated_at) "
        "SELECT s.stock_location_id, p.id, 1000000, now() FROM stores_store s, inventory_product p"
    )
print(json.dumps(keys))
"""


def setup_database(pg: str) -> dict[str, str]:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    env = env_for(pg)
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", SEED.replace("sys.argv[1]", repr(str(N_PRODUCTS)))],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def prices() -> dict[str, Decimal]:
    return {f"{100000 + i}": Decimal(f"{1 + i % 17}.{i % 100:02d}") for i in range(N_PRODUCTS)}


# --- the workload ----------------------------------------------------------------------------


class Register:
    def __init__(self, store: str, tz: str, code: str, rng: random.Random) -> None:
        self.store, self.tz, self.code, self.rng = store, ZoneInfo(tz), code, rng
        self.seq = 0
        self.clock = dt.datetime(2026, 11, 2, 8, 0, tzinfo=self.tz)

    def sale(self, price: dict[str, Decimal]) -> dict:
        self.seq += 1
        self.clock += dt.timedelta(seconds=self.rng.randint(20, 90))
        if self.clock.hour >= 21:
            self.clock = (self.clock + dt.timedelta(days=1)).replace(hour=8, minute=0)
        lines, gross, tax = [], Decimal(0), Decimal(0)
        for n in range(1, self.rng.choice((2, 3, 4, 4, 5, 6)) + 1):
            sku = f"{100000 + self.rng.randrange(N_PRODUCTS)}"
            qty = self.rng.choice((1, 1, 1, 2, 3))
            total = (price[sku] * qty).quantize(CENT)
            line_tax = (total * 19 / Decimal(119)).quantize(CENT, rounding=ROUND_HALF_UP)
            gross += total
            tax += line_tax
            lines.append(
                {"line_no": n, "sku": sku, "qty": str(qty), "unit_price": str(price[sku]),
                 "discount": "0.00", "tax_code": "STD", "line_total": q(total),
                 "price_override_reason": None}
            )  # fmt: skip
        if self.rng.random() < 0.3:
            card = (gross / 2).quantize(CENT)
            tenders = [
                {"method": "card", "amount": q(card), "change": "0.00", "reference": "auth",
                 "offline_authorized": False},
                {"method": "cash", "amount": q(gross - card), "change": "0.00"},
            ]  # fmt: skip
        else:
            tenders = [{"method": "card", "amount": q(gross), "change": "0.00", "reference": "x"}]
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "type": "sale",
            "register": self.code,
            "seq": self.seq,
            "occurred_at": self.clock.isoformat(),
            "business_date": self.clock.date().isoformat(),
            "data": {
                "receipt_no": f"{self.store}-{self.code}-{self.seq:06d}",
                "basket_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "cashier": "C1",
                "currency": {"BER1": "EUR", "NYC1": "USD", "SYD1": "AUD"}[self.store],
                "lines": lines,
                "tenders": tenders,
                "totals": {"net": q(gross - tax), "tax": q(tax), "gross": q(gross)},
                "session_id": f"{self.store}-{self.code}-s1",
            },
        }


def workload(n_sales: int, batch: int, streams: int, seed: int = 7) -> list[list[dict]]:
    """``streams`` lists of batches (each a list of sale events), one register per stream."""
    rng = random.Random(seed)
    price = prices()
    registers = [Register("BER1", "Europe/Berlin", REGISTERS[i], rng) for i in range(streams)]
    per = n_sales // streams
    out = []
    for reg in registers:
        sales = [reg.sale(price) for _ in range(per)]
        out.append([sales[i : i + batch] for i in range(0, len(sales), batch)])
    return out


# --- COPY reference --------------------------------------------------------------------------


def copy_reference(pg: str, streams: list[list[list[dict]]]) -> tuple[float, int, int]:
    """Write the same rows with COPY, 500-sale transactions, one stream. (seconds, sales, rows)"""
    with psycopg.connect(f"{pg}/{DB}") as conn:
        store_id, loc_id = conn.execute(
            "SELECT id, stock_location_id FROM stores_store WHERE code='BER1'"
        ).fetchone()
        regs = dict(conn.execute(
            "SELECT code, id FROM stores_register WHERE store_id=%s", [store_id]
        ).fetchall())  # fmt: skip
        products = dict(conn.execute("SELECT sku, id FROM inventory_product").fetchall())
        conn.commit()
        now = dt.datetime.now(dt.UTC)
        # Each line's tax and net (STD, 19 % inclusive), as ingestion stores them: computed
        # before the clock starts, since COPY only writes what it is given.
        line_tax: dict[tuple[str, int], tuple[Decimal, Decimal]] = {}
        for e in (e for stream in streams for b in stream for e in b):
            for ln in e["data"]["lines"]:
                total = Decimal(ln["line_total"])
                tax = (total * 19 / Decimal(119)).quantize(CENT, rounding=ROUND_HALF_UP)
                line_tax[(e["event_id"], ln["line_no"])] = (tax, total - tax)
        rows = sales = 0
        started = time.perf_counter()
        for batch in (b for stream in streams for b in stream):
            batch_id = uuid.uuid4()
            with conn.transaction():
                cur = conn.cursor()
                with cur.copy(
                    "COPY sync_event (event_id, store_id, register_id, seq, type, occurred_at, "
                    "business_date, received_at, batch_id, content_hash, payload, status, "
                    "hold_reason, waiting_for, applied_at) FROM STDIN"
                ) as cp:
                    for e in batch:
                        payload = json.dumps(e, sort_keys=True, separators=(",", ":"))
                        cp.write_row((e["event_id"], store_id, regs[e["register"]], e["seq"],
                                      "sale", e["occurred_at"], e["business_date"], now,
                                      batch_id, "0" * 64, payload, "applied", "", "", now))  # fmt: skip
                with cur.copy(
                    "COPY stores_sale (event_id, type, store_id, register_id, seq, receipt_no, "
                    "basket_id, session_id, cashier, currency, net, tax, gross, occurred_at, "
                    "business_date, original_event, received_at) FROM STDIN"
                ) as cp:
                    for e in batch:
                        d = e["data"]
                        cp.write_row((e["event_id"], "sale", store_id, regs[e["register"]],
                                      e["seq"], d["receipt_no"], d["basket_id"], d["session_id"],
                                      d["cashier"], d["currency"], d["totals"]["net"],
                                      d["totals"]["tax"], d["totals"]["gross"], e["occurred_at"],
                                      e["business_date"], None, now))  # fmt: skip
                with cur.copy(
                    "COPY stores_saleline (sale_id, line_no, sku, qty, unit_price, discount, "
                    "tax_code, line_total, price_override_reason, original_line_no, store_id, "
                    "business_date, tax, net) FROM STDIN"
                ) as cp:
                    for e in batch:
                        for ln in e["data"]["lines"]:
                            cp.write_row((e["event_id"], ln["line_no"], ln["sku"], ln["qty"],
                                          ln["unit_price"], ln["discount"], ln["tax_code"],
                                          ln["line_total"], "", None, store_id,
                                          e["business_date"],
                                          *line_tax[(e["event_id"], ln["line_no"])]))  # fmt: skip
                            rows += 1
                with cur.copy(
                    "COPY stores_tender (sale_id, position, method, amount, change, reference, "
                    "offline_authorized, store_id, business_date) FROM STDIN"
                ) as cp:
                    for e in batch:
                        for n, t in enumerate(e["data"]["tenders"], start=1):
                            cp.write_row((e["event_id"], n, t["method"], t["amount"], t["change"],
                                          t.get("reference") or "", False, store_id,
                                          e["business_date"]))  # fmt: skip
                            rows += 1
                with cur.copy(
                    "COPY inventory_stockmove (location_id, product_id, qty_delta, kind, reason, "
                    "reference, business_date, source_event, line_no, created_at) FROM STDIN"
                ) as cp:
                    for e in batch:
                        for ln in e["data"]["lines"]:
                            cp.write_row((loc_id, products[ln["sku"]], "-" + ln["qty"], "sale", "",
                                          e["data"]["receipt_no"], e["business_date"],
                                          e["event_id"], ln["line_no"], now))  # fmt: skip
                            rows += 1
            rows += 2 * len(batch)
            sales += len(batch)
        elapsed = time.perf_counter() - started
    return elapsed, sales, rows


# --- HTTP ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(pg: str, port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), "erp.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120",
         "--log-level", "warning"],
        cwd=ROOT, env=env_for(pg), start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def push_stream(port: int, key: str, bodies: list[bytes], latencies: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    for body in bodies:
        started = time.perf_counter()
        conn.request("POST", "/api/v1/sync/push", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"push answered {response.status}: {data[:300]!r}")
    conn.close()


def truncate(pg: str) -> None:
    with psycopg.connect(f"{pg}/{DB}", autocommit=True) as conn:
        conn.execute(
            "TRUNCATE sync_event, sync_batch, stores_sale, stores_saleline, stores_tender, "
            "inventory_stockmove, sync_registersyncstate, "
            "sync_reconciliationexception, sync_historicalreconciliationexception, "
            "sync_nodesyncstate"
        )
        conn.execute("UPDATE inventory_stocklevel SET qty = 1000000")
        settle(conn)


def settle(conn: psycopg.Connection) -> None:
    """Leave the database as a long-running one would be between measurements: statistics
    current, and no checkpoint of the set-up's writes still running (one started by the
    prefill's gigabytes of WAL would otherwise spread its writes, and the full-page images
    that follow it, over the measured run)."""
    conn.execute("VACUUM ANALYZE")
    conn.execute("CHECKPOINT")


def checkpoints(pg: str) -> int:
    with psycopg.connect(f"{pg}/{DB}") as conn:
        return conn.execute(
            "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        ).fetchone()[0]


def _ledger_rows(pg: str) -> int:
    with psycopg.connect(f"{pg}/{DB}") as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM sync_event) + (SELECT count(*) FROM stores_sale) + "
            "(SELECT count(*) FROM stores_saleline) + (SELECT count(*) FROM stores_tender) + "
            "(SELECT count(*) FROM inventory_stockmove)"
        ).fetchone()[0]


def cpu_seconds(server_pid: int) -> tuple[float, float]:
    """CPU time used so far by gunicorn (the master and its workers) and by PostgreSQL (all
    its processes: the workers' backends, the WAL writer, the checkpointer …), from /proc. A
    backend that exits takes its time with it; the workers' stay connected for the run."""
    tick = os.sysconf("SC_CLK_TCK")
    server = database = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        if int(entry) == server_pid or int(fields[1]) == server_pid:  # fields[1]: parent
            server += used
        elif name == "postgres":
            database += used
    return server, database


def run_http(
    pg: str, port: int, key: str, streams: list[list[list[dict]]], server_pid: int
) -> dict:
    bodies = [
        [json.dumps({"batch_id": str(uuid.uuid4()), "node_time": dt.datetime.now(dt.UTC).isoformat(),
                     "events": b}).encode() for b in stream]
        for stream in streams
    ]  # fmt: skip
    rows_before = _ledger_rows(pg)
    checkpoints_before = checkpoints(pg)
    latencies: list[list[float]] = [[] for _ in bodies]
    threads = [
        threading.Thread(target=push_stream, args=(port, key, b, lat))
        for b, lat in zip(bodies, latencies, strict=True)
    ]
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    cpu_after = cpu_seconds(server_pid)
    batches = sum(len(b) for b in bodies)
    flat = sorted(x for lat in latencies for x in lat)
    sales = sum(len(b) for s in streams for b in s)
    rows = _ledger_rows(pg) - rows_before
    with psycopg.connect(f"{pg}/{DB}") as conn:
        counted = conn.execute(
            "SELECT count(*) FROM stores_sale WHERE register_id IN "
            "(SELECT id FROM stores_register WHERE code <> 'R5')"
        ).fetchone()[0]
    if counted < sales:
        raise RuntimeError(f"only {counted} of {sales} sales arrived")
    return {
        "checkpoints": checkpoints(pg) - checkpoints_before,
        "seconds": elapsed,
        "sales": sales,
        "rows": rows,
        "p50_ms": statistics.median(flat) * 1000,
        "p99_ms": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000,
        "server_cpu_ms": (cpu_after[0] - cpu_before[0]) / batches * 1000,
        "pg_cpu_ms": (cpu_after[1] - cpu_before[1]) / batches * 1000,
    }


def prefill(pg: str, n: int) -> None:
    """Fill the tables with ``n`` older sales by COPY, generated in chunks (register R4 with
    seqs far above the measured ones, and another business period, so nothing clashes)."""
    print(f"prefilling {n:,} sales by COPY …", flush=True)
    rng = random.Random(99)
    price = prices()
    register = Register("BER1", "Europe/Berlin", "R5", rng)  # not one the runs measure
    register.seq = 10_000_000
    register.clock = dt.datetime(2025, 1, 2, 8, 0, tzinfo=register.tz)
    done = 0
    while done < n:
        chunk = min(50_000, n - done)
        sales = [register.sale(price) for _ in range(chunk)]
        copy_reference(pg, [[sales[i : i + 500] for i in range(0, chunk, 500)]])
        done += chunk
    with psycopg.connect(f"{pg}/{DB}", autocommit=True) as conn:
        settle(conn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--prefill", type=int, default=0, help="also measure with N sales stored")
    args = parser.parse_args()

    print(f"setting up {DB} …", flush=True)
    keys = setup_database(args.pg)
    one = workload(args.sales, args.batch, 1)
    four = workload(args.sales, args.batch, 4, seed=8)

    def reference(when: str) -> tuple[float, float]:
        """The COPY reference on empty tables: (sales/s, rows/s)."""
        truncate(args.pg)
        seconds, sales, rows = copy_reference(args.pg, one)
        print(f"COPY reference ({when}): {sales} sales, {rows} rows in {seconds:.1f} s = "
              f"{sales / seconds:,.0f} sales/s, {rows / seconds:,.0f} rows/s", flush=True)  # fmt: skip
        return sales / seconds, rows / seconds

    # The machine's speed drifts by up to half over a run of this length (see README), so
    # each group of scenarios is compared with a COPY reference measured just before it.
    references = [("start", *reference("start"))]
    port = free_port()
    server = start_server(args.pg, port, args.workers)
    results = []
    try:
        scenarios = [("1 client", one), ("4 clients", four)]
        for label, streams in scenarios:
            truncate(args.pg)
            results.append(
                (label, 0, run_http(args.pg, port, keys["BER1"], streams, server.pid), 0)
            )
        if args.prefill:
            references.append(
                (
                    "before the runs with stored sales",
                    *reference("before the runs with stored sales"),
                )
            )
            for label, streams in scenarios:
                truncate(args.pg)
                prefill(args.pg, args.prefill)
                result = run_http(args.pg, port, keys["BER1"], streams, server.pid)
                results.append((label, args.prefill, result, 1))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        broker_flush()

    print()
    print(
        "| scenario | stored sales | sales/s | rows/s | × COPY | p50 batch | p99 batch | "
        "CPU per batch: gunicorn + PostgreSQL | checkpoints |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for group, (when, sales_rate, rows_rate) in enumerate(references):
        print(f"| COPY, 1 stream (reference, {when}) | 0 | {sales_rate:,.0f} | {rows_rate:,.0f} | "
              "1.00 | | | | |")  # fmt: skip
        for label, stored, r, of in results:
            if of != group:
                continue
            rate = r["sales"] / r["seconds"]
            print(f"| HTTP push, {label} | {stored:,} | {rate:,.0f} | "
                  f"{r['rows'] / r['seconds']:,.0f} | {rate / sales_rate:.2f} | "
                  f"{r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms | "
                  f"{r['server_cpu_ms']:.0f} + {r['pg_cpu_ms']:.0f} ms | {r['checkpoints']} |")  # fmt: skip


if __name__ == "__main__":
    main()
