"""Ingestion benchmark: HTTP push through gunicorn into PostgreSQL, against raw COPY.

    .venv/bin/python benchmarks/ingest.py                 # 100,000 sales, 1 and 4 clients
    .venv/bin/python benchmarks/ingest.py --sales 20000   # quicker
    .venv/bin/python benchmarks/ingest.py --prefill 1000000  # also into tables holding 1 M sales

It creates its own databases on the PostgreSQL named by ``--pg`` (default 127.0.0.1:5432,
user postgres): ``tillbook_bench_copy`` for the reference, ``tillbook_bench`` for HTTP push
and, with ``--prefill N``, ``tillbook_bench_stored``, which holds N older sales (register R5,
loaded by COPY) before each scenario. Each is migrated and seeded with 3 stores of 5
registers and 2,000 products with prices and stock. Realistic sales (about 4 lines, 1–2
tenders) are generated as batches of 500, JSON bodies built before any clock starts. Then,
for 1 client and for 4 concurrent clients (one register each), each database back at its
starting point (empty, or holding just the N older sales; vacuumed, analysed, checkpointed):

1. the reference: the same rows (events, sales, lines, tenders, stock moves) written with
   PostgreSQL ``COPY`` in one stream, in 500-sale transactions, into the same schema;
2. HTTP push through gunicorn with 4 sync workers (one server per HTTP database).

The three take turns, a sixth of the workload each (``--rounds``), in an order that rotates
every round (each target takes each place equally often), so that all three see the machine
in the same states. This machine's speed drifts by up to a half within minutes; measured one
after the other, the drift went into the ratios and into the comparison of 0 with N stored
sales. It prints sales/s, rows/s (the rows
of the five ledger tables), the ratio to the COPY rate of the same scenario, the change
against 0 stored sales, p50 and p99 batch latency, the CPU time gunicorn and PostgreSQL spent
per batch (from /proc: on two cores, what bounds the 4-client rate and latency) and the
checkpoints PostgreSQL ran during each target's turns.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from dataclasses import dataclass, field
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


def env_for(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    env.update(
        ERP_ENV="test",
        DATABASE_URL=dsn,
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


def setup_database(pg: str, db: str) -> dict[str, str]:
    """Create ``db`` afresh on the server ``pg``, migrate and seed it; its stores' node keys."""
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    env = env_for(f"{pg}/{db}")
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


def copy_reference(dsn: str, streams: list[list[list[dict]]]) -> tuple[float, int, int]:
    """Write the same rows with COPY, 500-sale transactions, one stream. (seconds, sales, rows)"""
    with psycopg.connect(dsn) as conn:
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


def start_server(dsn: str, port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), "erp.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120",
         "--log-level", "warning"],
        cwd=ROOT, env=env_for(dsn), start_new_session=True,
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


LEDGER = ("sync_event", "stores_saleline", "stores_tender", "inventory_stockmove")
SMALL = (
    "sync_batch, sync_registersyncstate, sync_reconciliationexception, "
    "sync_historicalreconciliationexception, sync_nodesyncstate"
)


def truncate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE stores_sale, {', '.join(LEDGER)}, {SMALL}")
        conn.execute("UPDATE inventory_stocklevel SET qty = 1000000")
        settle(conn)


def high_ids(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {
            t: conn.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0] for t in LEDGER
        }


def trim(dsn: str, high: dict[str, int]) -> None:
    """Take the tables back to what ``prefill`` left: the rows above its ids and the sales of
    registers other than R5 deleted, then vacuumed."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, last in high.items():
            conn.execute(f"DELETE FROM {table} WHERE id > %s", [last])
        conn.execute(
            "DELETE FROM stores_sale WHERE register_id IN "
            "(SELECT id FROM stores_register WHERE code <> 'R5')"
        )
        conn.execute(f"TRUNCATE {SMALL}")
        conn.execute("UPDATE inventory_stocklevel SET qty = 1000000")
        settle(conn)


def settle(conn: psycopg.Connection) -> None:
    """Leave the database as a long-running one would be between measurements: statistics
    current, and no checkpoint of the set-up's writes still running (one started by the
    prefill's gigabytes of WAL would otherwise spread its writes, and the full-page images
    that follow it, over the measured run)."""
    conn.execute("VACUUM ANALYZE")
    conn.execute("CHECKPOINT")


def checkpoints(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        ).fetchone()[0]


def ledger_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in ("stores_sale", *LEDGER))
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


@dataclass
class Target:
    """What one scenario's rounds write into: the COPY reference's database, or one served
    by a gunicorn of its own (with 0 or ``stored`` older sales), and what was measured there."""

    label: str
    dsn: str
    reference: bool = False  # the COPY reference, else HTTP push
    stored: int = 0
    server: subprocess.Popen | None = None
    port: int = 0
    key: str = ""
    seconds: float = 0.0
    sales: int = 0
    rows: int = 0
    batches: int = 0
    checkpoints: int = 0
    server_cpu: float = 0.0
    pg_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def reset(self) -> None:
        self.seconds = self.server_cpu = self.pg_cpu = 0.0
        self.sales = self.rows = self.batches = self.checkpoints = 0
        self.latencies = []

    def copy_round(self, streams: list[list[list[dict]]]) -> None:
        before = checkpoints(self.dsn)
        seconds, sales, rows = copy_reference(self.dsn, streams)
        self.checkpoints += checkpoints(self.dsn) - before
        self.seconds += seconds
        self.sales += sales
        self.rows += rows

    def push_round(self, bodies: list[list[bytes]]) -> None:
        assert self.server is not None
        latencies: list[list[float]] = [[] for _ in bodies]
        threads = [
            threading.Thread(target=push_stream, args=(self.port, self.key, b, lat))
            for b, lat in zip(bodies, latencies, strict=True)
        ]
        before = checkpoints(self.dsn)
        cpu_before = cpu_seconds(self.server.pid)
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.seconds += time.perf_counter() - started
        cpu_after = cpu_seconds(self.server.pid)
        self.checkpoints += checkpoints(self.dsn) - before
        self.server_cpu += cpu_after[0] - cpu_before[0]
        self.pg_cpu += cpu_after[1] - cpu_before[1]
        self.batches += sum(len(b) for b in bodies)
        for lat in latencies:
            self.latencies.extend(lat)


def bodies_of(streams: list[list[list[dict]]]) -> list[list[bytes]]:
    return [
        [json.dumps({"batch_id": str(uuid.uuid4()), "node_time": dt.datetime.now(dt.UTC).isoformat(),
                     "events": b}).encode() for b in stream]
        for stream in streams
    ]  # fmt: skip


def interleaved(targets: list[Target], streams: list[list[list[dict]]], rounds: int) -> None:
    """Write ``streams`` into every target, a ``rounds``-th of each stream at a time, the
    targets taking turns (in an order that rotates each round): every target sees the machine
    in the same states, so their ratios hold even while its speed drifts."""
    rows_before = {t.label: ledger_rows(t.dsn) for t in targets if not t.reference}

    def part(stream: list, r: int) -> list:
        return stream[r * len(stream) // rounds : (r + 1) * len(stream) // rounds]

    for r in range(rounds):
        turn = r % len(targets)
        for target in targets[turn:] + targets[:turn]:
            chunk = [part(s, r) for s in streams]
            if target.reference:
                target.copy_round(chunk)
            else:
                target.push_round(bodies_of(chunk))  # node_time: now, not minutes ago
    sales = sum(len(b) for s in streams for b in s)
    for target in targets:
        if target.reference:
            continue
        target.sales = sales
        target.rows = ledger_rows(target.dsn) - rows_before[target.label]
        with psycopg.connect(target.dsn) as conn:
            counted = conn.execute(
                "SELECT count(*) FROM stores_sale WHERE register_id IN "
                "(SELECT id FROM stores_register WHERE code <> 'R5')"
            ).fetchone()[0]
        if counted < sales:
            raise RuntimeError(f"{target.label}: only {counted} of {sales} sales arrived")


def prefill(dsn: str, n: int) -> None:
    """Fill the tables with ``n`` older sales by COPY, generated in chunks (register R5 with
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
        copy_reference(dsn, [[sales[i : i + 500] for i in range(0, chunk, 500)]])
        done += chunk
    with psycopg.connect(dsn, autocommit=True) as conn:
        settle(conn)


def report(scenarios: list[tuple[str, list[Target]]]) -> None:
    print()
    print(
        "| scenario | stored sales | sales/s | rows/s | × COPY | vs 0 stored | p50 batch | "
        "p99 batch | CPU per batch: gunicorn + PostgreSQL | checkpoints |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, targets in scenarios:
        copy, *pushes = targets
        copy_rate = copy.sales / copy.seconds
        print(f"| COPY, 1 stream (reference for {label}) | 0 | {copy_rate:,.0f} | "
              f"{copy.rows / copy.seconds:,.0f} | 1.00 | | | | | {copy.checkpoints} |")  # fmt: skip
        empty_rate = pushes[0].sales / pushes[0].seconds
        for t in pushes:
            rate = t.sales / t.seconds
            flat = sorted(t.latencies)
            p50 = statistics.median(flat) * 1000
            p99 = flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000
            versus = f"{rate / empty_rate - 1:+.0%}" if t.stored else ""
            print(f"| HTTP push, {label} | {t.stored:,} | {rate:,.0f} | "
                  f"{t.rows / t.seconds:,.0f} | {rate / copy_rate:.2f} | {versus} | "
                  f"{p50:.0f} ms | {p99:.0f} ms | "
                  f"{t.server_cpu / t.batches * 1000:.0f} + {t.pg_cpu / t.batches * 1000:.0f} ms | "
                  f"{t.checkpoints} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="turns each target takes: a multiple of the targets (2, or 3 with --prefill)",
    )
    parser.add_argument("--prefill", type=int, default=0, help="also measure with N sales stored")
    args = parser.parse_args()

    targets = [
        Target("COPY", f"{args.pg}/{DB}_copy", reference=True),
        Target("HTTP", f"{args.pg}/{DB}"),
    ]
    if args.prefill:
        targets.append(Target("HTTP, stored", f"{args.pg}/{DB}_stored", stored=args.prefill))
    if args.rounds % len(targets):
        # Every target must take each place in the order equally often.
        sys.exit(f"error: --rounds must be a multiple of {len(targets)}")
    for target in targets:
        name = target.dsn.rsplit("/", 1)[1]
        print(f"setting up {name} …", flush=True)
        target.key = setup_database(args.pg, name)["BER1"]
    high: dict[str, int] = {}
    if args.prefill:
        prefill(targets[2].dsn, args.prefill)
        high = high_ids(targets[2].dsn)
    workloads = [
        ("1 client", workload(args.sales, args.batch, 1)),
        ("4 clients", workload(args.sales, args.batch, 4, seed=8)),
    ]
    results = []
    try:
        for label, streams in workloads:
            print(f"{label}: {args.rounds} rounds of COPY and HTTP push …", flush=True)
            for target in targets:
                target.reset()
                if target.stored:
                    trim(target.dsn, high)
                else:
                    truncate(target.dsn)
            for target in targets[1:]:
                target.port = free_port()
                target.server = start_server(target.dsn, target.port, args.workers)
            interleaved(targets, streams, args.rounds)
            stop_servers(targets)
            results.append((label, [dataclasses.replace(t) for t in targets]))
    finally:
        stop_servers(targets)
        broker_flush()
    report(results)


def stop_servers(targets: list[Target]) -> None:
    for target in targets:
        if target.server is not None:
            os.killpg(target.server.pid, signal.SIGTERM)
            target.server.wait(10)
            target.server = None


if __name__ == "__main__":
    main()
