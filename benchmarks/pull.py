"""Change-feed benchmark: a store node's initial sync and incremental pulls through gunicorn.

    .venv/bin/python benchmarks/pull.py                        # 50,000 products, 10 writers
    .venv/bin/python benchmarks/pull.py --products 10000       # quicker
    .venv/bin/python benchmarks/pull.py --keep                 # leave tillbook_pull_bench behind
    .venv/bin/python benchmarks/pull.py --reuse --keep         # reuse a kept database (no seed)

It creates its own database (``tillbook_pull_bench``) on the PostgreSQL named by ``--pg``
(default 127.0.0.1:5432, user postgres), migrates it and seeds, through the catalogue services
(the feed's triggers run during it), 3 tax rates, ``--products`` products with one EAN-13 each,
one price list with a price per product (every 10th product also has a forward price), one
store with 2 registers and 4 cashiers. Then, over real HTTP on 127.0.0.1 through gunicorn
(``--workers`` sync workers), with a node key:

1. the reference: the same rows (products with their barcodes and tax code, the list's
   prices) read by one raw SQL ``SELECT`` each over psycopg, and the same again turned into
   change dicts and encoded as JSON;
2. initial sync: a fresh node (no cursor) pages with ``limit=5000``, then another with
   ``limit=500``, until ``has_more`` is false; the node's state is checked against the
   database (every product, barcode and price), or the run fails;
3. idle polls with the latest cursor: with ``If-None-Match`` (304) and without (an empty 200),
   and one poll 1.1 s after the previous one with its ETag (an unchanged answer must be a 304);
4. incremental: ``--writers`` processes change random prices through the service layer
   (``inventory.services.price_update``, what the HQ API's PATCH calls), each its own Django
   process and connection, unpaced and then paced (``--writer-rates``), while one node polls
   with its latest cursor every ``--interval`` seconds and sends ``If-None-Match``. Latency is
   the client's full HTTP round trip. Freshness lag is the time from a writer's commit (when
   ``price_update`` returned) to the node receiving that price. After each phase the node
   drains the feed and its prices are checked against the database.

Besides wall time it prints server CPU time (the gunicorn workers, and the PostgreSQL backends
serving them, read from ``/proc``), which other work on a shared machine distorts less.
``--app`` serves another WSGI module (a candidate change, measured against the same data) and
``--writer-nice`` runs the writers' Python niced. Figures are printed as they are measured
and as Markdown tables at the end; gunicorn and the writers are stopped on any exit.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DB = "tillbook_pull_bench"
STORE = "BER1"
PRICE_LIST = "PL-BER1"
CENT = Decimal("0.01")

# Processes this script started (gunicorn, writers): killed on any exit.
_CHILDREN: list[subprocess.Popen] = []


def env_for(pg: str, app_name: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_"))}
    env.update(
        ERP_ENV="test",
        DATABASE_URL=f"{pg}/{DB}" + (f"?application_name={app_name}" if app_name else ""),
        CELERY_TASK_ALWAYS_EAGER="true",
        # The default node throttle (600/minute) would refuse a node polling every 50 ms.
        API_THROTTLE_NODE="10000000/minute",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_CONN_MAX_AGE="600",
    )
    return env


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0–100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# Server-side CPU time: the gunicorn workers and the PostgreSQL backends serving them (their
# connections are named WEB_APP_NAME). Less sensitive than wall time to other work on the machine.
WEB_APP_NAME = "pull-bench-web"
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


class ServerCpu:
    def __init__(self, pg: str, server: subprocess.Popen) -> None:
        self.pg, self.server = pg, server

    def sample(self) -> dict[str, dict[int, float]]:
        try:
            with open(f"/proc/{self.server.pid}/task/{self.server.pid}/children") as f:
                workers = [int(x) for x in f.read().split()]
        except OSError:
            workers = []
        with psycopg.connect(f"{self.pg}/{DB}", autocommit=True) as conn:
            backends = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                [DB, WEB_APP_NAME],
            ).fetchall()]  # fmt: skip
        return {
            "app": {pid: _cpu_seconds(pid) for pid in workers},
            "pg": {pid: _cpu_seconds(pid) for pid in backends},
        }

    @staticmethod
    def spent(before: dict, after: dict) -> tuple[float, float]:
        """(gunicorn workers' CPU s, their PostgreSQL backends' CPU s) between two samples."""
        return tuple(  # type: ignore[return-value]
            sum(t - before[k].get(pid, 0.0) for pid, t in after[k].items()) for k in ("app", "pg")
        )


# --- setup ---------------------------------------------------------------------------------------

SEED = r"""
import datetime as dt, json, time
from decimal import Decimal
from django.contrib.auth.hashers import make_password
from erp.writes import record_save
from inventory import services as inv
from inventory.barcodes import gs1_check_digit
from inventory.models import Currency
from stores import models as sm, services as st
n = __N__
chunk = 10_000
started = time.perf_counter()
for code, name, rate in (("STD", "Standard", "19"), ("RED", "Reduced", "7"), ("ZERO", "Zero", "0")):
    inv.tax_rate_create(actor=None, code=code, name=name, rate=Decimal(rate), inclusive=True)
pl = inv.price_list_create(actor=None, code="PL-BER1", name="Berlin", currency=Currency.objects.get(code="EUR"))
store = st.store_create(actor=None, code="BER1", name="Berlin 1", timezone="Europe/Berlin", currency=pl.currency, price_list=pl)
for r in ("R1", "R2"):
    st.register_create(actor=None, store=store, code=r)
cashiers = 0
if hasattr(sm, "Cashier"):
    for i in range(4):
        c = record_save(instance=sm.Cashier(code=f"C{i + 1}", name=f"Cashier {i + 1}", role="supervisor" if i == 0 else "cashier", pin_hash=make_password(f"{1000 + i}")), reason="bench")
        record_save(instance=sm.CashierStore(cashier=c, store=store), reason="bench")
        cashiers += 1
setup_s = time.perf_counter() - started

def ean13(i):
    body = f"40{i:010d}"
    return body + str(gs1_check_digit(body))

tax = lambda i: "ZERO" if i % 20 == 0 else ("RED" if i % 4 == 1 else "STD")
started = time.perf_counter()
for s in range(0, n, chunk):
    inv.products_bulk_upsert(actor=None, rows=[
        {"sku": f"{100000 + i}", "name": f"Product {i}", "tax_code": tax(i), "cost": Decimal("0.50"), "barcodes": [ean13(i)]}
        for i in range(s, min(n, s + chunk))])
products_s = time.perf_counter() - started
started = time.perf_counter()
rows = []
for i in range(n):
    price = Decimal(f"{1 + i % 50}.{i % 100:02d}")
    if i % 10 == 0:  # a forward price: the current one ends, the next starts
        rows.append({"sku": f"{100000 + i}", "price": price, "valid_from": dt.date(2026, 1, 1), "valid_to": dt.date(2027, 6, 30)})
        rows.append({"sku": f"{100000 + i}", "price": (price * Decimal("1.05")).quantize(Decimal("0.01")), "valid_from": dt.date(2027, 7, 1)})
    else:
        rows.append({"sku": f"{100000 + i}", "price": price, "valid_from": dt.date(2026, 1, 1)})
for s in range(0, len(rows), chunk):
    inv.prices_bulk_upsert(actor=None, price_list=pl, rows=rows[s:s + chunk])
prices_s = time.perf_counter() - started
print(json.dumps({"setup_s": setup_s, "products_s": products_s, "prices_s": prices_s,
                  "products": n, "prices": len(rows), "cashiers": cashiers}))
"""

ISSUE_KEY = r"""
from stores import services as st
from stores.models import Store
print(st.node_key_issue(actor=None, store=Store.objects.get(code="BER1"), label="pull bench")[1])
"""


def shell(pg: str, code: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=env_for(pg), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def database_exists(pg: str) -> bool:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone()
            is not None
        )


def setup_database(pg: str, n_products: int) -> dict[str, Any]:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    started = time.perf_counter()
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env_for(pg), check=True)
    migrate_s = time.perf_counter() - started
    seeded = json.loads(shell(pg, SEED.replace("__N__", str(n_products))))
    seeded["migrate_s"] = migrate_s
    with psycopg.connect(f"{pg}/{DB}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return seeded


def drop_database(pg: str) -> None:
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


# --- what head office holds (the truth a node is checked against) ------------------------------

PRODUCTS_SQL = (
    "SELECT p.id, p.sku, p.name, p.unit, t.code, p.active, p.weighed, "
    "ARRAY(SELECT b.code FROM inventory_barcode b WHERE b.product_id = p.id ORDER BY b.code) "
    "FROM inventory_product p JOIN inventory_taxrate t ON t.id = p.tax_rate_id"
)
PRICES_SQL = (
    "SELECT r.id, p.sku, r.price, r.valid_from, r.valid_to FROM inventory_price r "
    "JOIN inventory_product p ON p.id = r.product_id JOIN inventory_pricelist l "
    "ON l.id = r.price_list_id WHERE l.code = %s"
)


def hq_state(pg: str) -> dict[str, Any]:
    with psycopg.connect(f"{pg}/{DB}") as conn:
        products = {
            sku: {"barcodes": list(codes), "tax_code": tax}
            for _id, sku, _n, _u, tax, _a, _w, codes in conn.execute(PRODUCTS_SQL).fetchall()
        }
        prices = {
            f"{sku}@{vf.isoformat()}": str(price.quantize(CENT))
            for _id, sku, price, vf, _vt in conn.execute(PRICES_SQL, [PRICE_LIST]).fetchall()
        }
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM inventory_taxrate), "
            "(SELECT count(*) FROM stores_register r JOIN stores_store s ON s.id = r.store_id "
            " WHERE s.code = %(s)s), "
            "(SELECT count(*) FROM stores_cashierstore m JOIN stores_store s ON s.id = m.store_id "
            " WHERE s.code = %(s)s)",
            {"s": STORE},
        ).fetchone()
    return {
        "product": products,
        "price": prices,
        "tax_rate": counts[0],
        "register": counts[1],
        "cashier": counts[2],
        "store_config": 1,
    }


def reference(pg: str) -> dict[str, float]:
    """The same rows by raw SQL (one SELECT per entity), and turned into changes + JSON."""
    with psycopg.connect(f"{pg}/{DB}") as conn:
        conn.execute(PRODUCTS_SQL).fetchall()  # warm the cache the same way the pulls found it
        conn.commit()
        started = time.perf_counter()
        products = conn.execute(PRODUCTS_SQL).fetchall()
        prices = conn.execute(PRICES_SQL, [PRICE_LIST]).fetchall()
        conn.commit()
        select_s = time.perf_counter() - started
        changes = [
            {"entity": "product", "key": sku, "op": "upsert", "version": pid,
             "data": {"sku": sku, "name": name, "barcodes": list(codes), "unit": unit,
                      "tax_code": tax, "active": active, "weighed": weighed}}
            for pid, sku, name, unit, tax, active, weighed, codes in products
        ] + [
            {"entity": "price", "key": f"{sku}@{vf.isoformat()}", "op": "upsert", "version": rid,
             "data": {"sku": sku, "price": str(price.quantize(CENT)), "valid_from": vf.isoformat(),
                      "valid_to": vt.isoformat() if vt else None}}
            for rid, sku, price, vf, vt in prices
        ]  # fmt: skip
        body = b"".join(
            msgspec.json.encode({"changes": changes[i : i + 5000], "cursor": "x", "has_more": True})
            for i in range(0, len(changes), 5000)
        )
        json_s = time.perf_counter() - started
    return {"rows": len(products) + len(prices), "select_s": select_s, "json_s": json_s,
            "bytes": len(body)}  # fmt: skip


# --- HTTP ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(pg: str, port: int, workers: int, app: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), app, "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "120",
         "--log-level", "warning"],
        cwd=ROOT, env=env_for(pg, WEB_APP_NAME), start_new_session=True,
    )  # fmt: skip
    _CHILDREN.append(proc)
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


class Node:
    """A store node: pulls over HTTP, applies changes by version, keeps its cursor and ETag."""

    def __init__(self, port: int, key: str, limit: int) -> None:
        self.port, self.limit = port, limit
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cursor: str | None = None
        self.etag: str | None = None
        self.state: dict[tuple[str, str], tuple[int, Any]] = {}
        self.stale = 0  # changes whose version was not above the one held
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []

    def pull(self, *, conditional: bool = True) -> tuple[int, float, bytes, dict | None]:
        """One request: (status, seconds for the full round trip, body, parsed answer)."""
        path = f"/api/v1/sync/pull?limit={self.limit}"
        if self.cursor:
            path += f"&cursor={self.cursor}"
        headers = dict(self.headers)
        if conditional and self.etag:
            headers["If-None-Match"] = self.etag
        started = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError):
            # gunicorn's sync workers close every connection: reconnect, as a client does.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
        elapsed = time.perf_counter() - started
        self.statuses[response.status] += 1
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        if response.status == 304:
            return 304, elapsed, body, None
        if response.status != 200:
            self.errors.append(f"{response.status}: {body[:300]!r}")
            return response.status, elapsed, body, None
        answer = msgspec.json.decode(body)
        self.etag = response.getheader("ETag")
        self.cursor = answer["cursor"]
        return 200, elapsed, body, answer

    def apply(self, changes: list[dict]) -> None:
        for change in changes:
            key = (change["entity"], change["key"])
            held = self.state.get(key)
            if held is not None and change["version"] <= held[0]:
                self.stale += 1
                continue
            if change["op"] == "upsert":
                self.state[key] = (change["version"], change["data"])
            else:
                # A tombstone keeps its version, so an older upsert cannot bring the key back.
                self.state[key] = (change["version"], None)

    def view(self, entity: str) -> dict[str, Any]:
        return {k: d for (e, k), (_v, d) in self.state.items() if e == entity and d is not None}


def initial_sync(port: int, key: str, limit: int, cpu: ServerCpu) -> tuple[Node, dict[str, Any]]:
    node = Node(port, key, limit)
    cpu_before = cpu.sample()
    pages = changes = size = 0
    latencies = []
    entities: Counter[str] = Counter()
    started = time.perf_counter()
    while True:
        status, elapsed, body, answer = node.pull(conditional=False)
        if status != 200:
            raise RuntimeError(f"initial sync, page {pages + 1}: {node.errors[-1]}")
        pages += 1
        size += len(body)
        latencies.append(elapsed)
        changes += len(answer["changes"])
        entities.update(c["entity"] for c in answer["changes"])
        node.apply(answer["changes"])
        if not answer["has_more"]:
            break
    seconds = time.perf_counter() - started
    app_cpu, pg_cpu = cpu.spent(cpu_before, cpu.sample())
    return node, {
        "limit": limit, "seconds": seconds, "changes": changes, "pages": pages, "bytes": size,
        "app_cpu": app_cpu, "pg_cpu": pg_cpu,
        "rate": changes / seconds, "p50_page_ms": statistics.median(latencies) * 1000,
        "max_page_ms": max(latencies) * 1000, "entities": dict(entities),
        "keys": len(node.state),
    }  # fmt: skip


def verify(node: Node, truth: dict[str, Any], what: str) -> None:
    """The node holds exactly head office's state for its store, or the run fails."""
    problems = []
    products, prices = node.view("product"), node.view("price")
    if set(products) != set(truth["product"]):
        missing = set(truth["product"]) - set(products)
        extra = set(products) - set(truth["product"])
        problems.append(f"products: {len(missing)} missing, {len(extra)} extra")
    wrong = [
        sku for sku, data in products.items()
        if sku in truth["product"] and (sorted(data["barcodes"]) != truth["product"][sku]["barcodes"]
                                        or data["tax_code"] != truth["product"][sku]["tax_code"])
    ]  # fmt: skip
    if wrong:
        problems.append(f"products: {len(wrong)} with other barcodes or tax code, e.g. {wrong[:3]}")
    if set(prices) != set(truth["price"]):
        missing = set(truth["price"]) - set(prices)
        extra = set(prices) - set(truth["price"])
        problems.append(f"prices: {len(missing)} missing, {len(extra)} extra")
    wrong = [
        k for k, d in prices.items() if k in truth["price"] and d["price"] != truth["price"][k]
    ]
    if wrong:
        problems.append(
            f"prices: {len(wrong)} differ from HQ, e.g. {wrong[0]}: node "
            f"{prices[wrong[0]]['price']}, HQ {truth['price'][wrong[0]]}"
        )
    for entity in ("tax_rate", "register", "cashier", "store_config"):
        if len(node.view(entity)) != truth[entity]:
            problems.append(f"{entity}: node {len(node.view(entity))}, HQ {truth[entity]}")
    if problems:
        raise SystemExit(
            f"FAILED ({what}): the node does not hold HQ's state: " + "; ".join(problems)
        )
    print(f"  verified ({what}): {len(products):,} products, {len(prices):,} prices, "
          f"{truth['tax_rate']} tax rates, {truth['register']} registers, "
          f"{truth['cashier']} cashiers, store config", flush=True)  # fmt: skip


def drain(node: Node) -> int:
    """Pull until nothing is left; the number of changes received."""
    received = 0
    while True:
        status, _e, _b, answer = node.pull(conditional=False)
        if status != 200:
            raise RuntimeError(f"drain: {node.errors[-1]}")
        node.apply(answer["changes"])
        received += len(answer["changes"])
        if not answer["has_more"]:
            return received


def idle_polls(node: Node, n: int, conditional: bool, cpu: ServerCpu) -> dict[str, Any]:
    latencies, statuses = [], Counter()
    cpu_before = cpu.sample()
    for _ in range(n):
        status, elapsed, _b, answer = node.pull(conditional=conditional)
        if answer:
            node.apply(answer["changes"])
        latencies.append(elapsed * 1000)
        statuses[status] += 1
        time.sleep(0.01)
    app_cpu, pg_cpu = cpu.spent(cpu_before, cpu.sample())
    return {"n": n, "statuses": dict(statuses), "p50": pct(latencies, 50),
            "p99": pct(latencies, 99), "max": max(latencies),
            "cpu_ms": (app_cpu + pg_cpu) * 1000 / n}  # fmt: skip


# --- incremental: writers and a polling node -------------------------------------------------

WRITER = r"""
import json, os, random, time
from decimal import Decimal
from inventory import services as inv
from inventory.models import Price
wid = int(os.environ["BENCH_WRITER"])
start_at, end_at = float(os.environ["BENCH_START"]), float(os.environ["BENCH_END"])
rate = float(os.environ["BENCH_RATE"])
ids = list(Price.objects.filter(price_list__code="PL-BER1").values_list("pk", flat=True))
rng = random.Random(1000 + wid)
log, errors, n = [], [], 0
while time.time() < start_at:
    time.sleep(0.002)
next_at = start_at + rng.random() / rate if rate else start_at
while True:
    if rate:
        pause = next_at - time.time()
        if pause > 0:
            time.sleep(pause)
        next_at += 1 / rate
    if time.time() >= end_at:
        break
    price = Price.objects.select_related("price_list__currency", "product").get(pk=rng.choice(ids))
    # Unique per writer and change, so the node's sighting of it can be matched to its commit.
    value = Decimal(100 + 10 * n + wid) / 100
    try:
        inv.price_update(price=price, actor=None, changes={"price": value}, reason="bench")
    except Exception as exc:
        errors.append(repr(exc)[:200])
        continue
    log.append((time.time(), f"{price.product.sku}@{price.valid_from.isoformat()}", f"{value:.2f}"))
    n += 1
with open(os.environ["BENCH_OUT"], "w") as f:
    json.dump({"log": log, "errors": errors}, f)
"""


def start_writers(pg: str, count: int, rate: float, start_at: float, end_at: float,
                  outdir: str, nice: int) -> list[tuple[subprocess.Popen, str]]:  # fmt: skip
    writers = []
    for wid in range(count):
        out = os.path.join(outdir, f"writer-{wid}.json")
        env = env_for(pg) | {
            "BENCH_WRITER": str(wid), "BENCH_START": repr(start_at), "BENCH_END": repr(end_at),
            "BENCH_RATE": repr(rate), "BENCH_OUT": out,
        }  # fmt: skip
        proc = subprocess.Popen(
            [PY, "manage.py", "shell", "-c", WRITER], cwd=ROOT, env=env, start_new_session=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )  # fmt: skip
        _CHILDREN.append(proc)
        writers.append((proc, out))
    return writers


def incremental(pg: str, node: Node, writers: int, rate: float, duration: float,
                interval: float, warmup: float, cpu: ServerCpu, nice: int = 0) -> dict[str, Any]:  # fmt: skip
    """Writers change prices for ``duration`` s while ``node`` polls every ``interval`` s."""
    with tempfile.TemporaryDirectory(prefix="pull-bench-") as outdir:
        start_at = time.time() + warmup  # the writers' Django start-up is not in the window
        end_at = start_at + duration
        procs = start_writers(pg, writers, rate, start_at, end_at, outdir, nice)
        while time.time() < start_at:
            time.sleep(0.01)
        load_before = os.getloadavg()[0]
        cpu_before = cpu.sample()
        polls: list[dict[str, Any]] = []
        seen: dict[tuple[str, str], float] = {}
        while time.time() < end_at:
            status, elapsed, body, answer = node.pull()
            now = time.time()
            n = 0
            if answer is not None:
                n = len(answer["changes"])
                for c in answer["changes"]:
                    if c["entity"] == "price" and c["data"] is not None:
                        seen.setdefault((c["key"], c["data"]["price"]), now)
                node.apply(answer["changes"])
            polls.append({"status": status, "ms": elapsed * 1000, "changes": n,
                          "bytes": len(body), "more": bool(answer and answer["has_more"])})  # fmt: skip
            if not (answer and answer["has_more"]):
                time.sleep(interval)
        load_after = os.getloadavg()[0]
        app_cpu, pg_cpu = cpu.spent(cpu_before, cpu.sample())
        for proc, _out in procs:
            proc.wait(60)
        logs, errors = [], []
        for proc, out in procs:
            if proc.returncode != 0 or not os.path.exists(out):
                raise RuntimeError(f"a writer failed (exit {proc.returncode})")
            with open(out) as f:
                data = json.load(f)
            logs += data["log"]
            errors += data["errors"]
        for proc, _out in procs:
            _CHILDREN.remove(proc)
    # Changes committed in the window's last moments, and any a snapshot held back: drain.
    tail = drain(node)
    committed = {(key, price): t for t, key, price in logs}
    lags = [(seen[k] - t) * 1000 for k, t in committed.items() if k in seen]
    ok = [p for p in polls if p["status"] in (200, 304)]
    lat = [p["ms"] for p in ok]
    with_changes = [p for p in ok if p["changes"]]
    return {
        "rate": rate,
        "writers": writers,
        "writes": len(logs),
        "writes_per_s": len(logs) / duration,
        "write_errors": errors,
        "polls": len(polls),
        "statuses": dict(Counter(p["status"] for p in polls)),
        "p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99), "max": max(lat),
        "p50_changes": pct([p["ms"] for p in with_changes], 50) if with_changes else 0.0,
        "p99_changes": pct([p["ms"] for p in with_changes], 99) if with_changes else 0.0,
        "changes_mean": statistics.mean(p["changes"] for p in ok),
        "changes_max": max(p["changes"] for p in ok),
        "pages_more": sum(p["more"] for p in ok),
        "seen": len(lags),
        "lag_p50": pct(lags, 50), "lag_p99": pct(lags, 99),
        "lag_max": max(lags) if lags else float("nan"),
        "tail": tail,
        "load": (load_before, load_after),
        "cpu_ms": (app_cpu + pg_cpu) * 1000 / len(polls),
    }  # fmt: skip


# --- main ----------------------------------------------------------------------------------------


def _cleanup() -> None:
    for proc in reversed(_CHILDREN):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(_CHILDREN):
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    _CHILDREN.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--writers", type=int, default=10)
    parser.add_argument(
        "--writer-rates", default="0,5,1",
        help="one incremental phase per value: price changes/s per writer, 0 = as fast as it can",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=25.0, help="seconds per phase")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between polls")
    parser.add_argument(
        "--writer-nice", type=int, default=0,
        help="run the writers' Python at this nice level (their PostgreSQL backends are not "
        "niced): tells CPU contention from contention in the database",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--app", default="erp.wsgi:application",
        help="the WSGI app gunicorn serves (to measure a candidate change against the same run)",
    )  # fmt: skip
    parser.add_argument("--reuse", action="store_true", help="use a kept database, do not seed")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(f"load at start: {uptime()}", flush=True)
    try:
        run(args)
    finally:
        _cleanup()
        if not args.keep:
            drop_database(args.pg)
        print(f"load at end: {uptime()}", flush=True)


def run(args: argparse.Namespace) -> None:
    pg = args.pg
    seeded: dict[str, Any] | None = None
    if args.reuse and database_exists(pg):
        print(f"reusing {DB} (migrating it to the code's schema)", flush=True)
        subprocess.run(
            [PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env_for(pg), check=True
        )
    else:
        print(f"setting up {DB}: {args.products:,} products …", flush=True)
        seeded = setup_database(pg, args.products)
        print(f"  migrate {seeded['migrate_s']:.1f} s; seed (not timed in the figures): "
              f"store, registers, cashiers {seeded['setup_s']:.1f} s, "
              f"{seeded['products']:,} products with barcodes {seeded['products_s']:.1f} s "
              f"({seeded['products'] / seeded['products_s']:,.0f}/s), "
              f"{seeded['prices']:,} prices {seeded['prices_s']:.1f} s "
              f"({seeded['prices'] / seeded['prices_s']:,.0f}/s)", flush=True)  # fmt: skip
    key = shell(pg, ISSUE_KEY)
    truth = hq_state(pg)
    print(f"  HQ holds {len(truth['product']):,} products, {len(truth['price']):,} prices",
          flush=True)  # fmt: skip

    ref = reference(pg)
    print(f"reference: {ref['rows']:,} rows by raw SELECT in {ref['select_s'] * 1000:.0f} ms "
          f"({ref['rows'] / ref['select_s']:,.0f} rows/s); as change JSON "
          f"{ref['json_s'] * 1000:.0f} ms ({ref['bytes'] / 1e6:.1f} MB)", flush=True)  # fmt: skip

    port = free_port()
    cpu = ServerCpu(pg, start_server(pg, port, args.workers, args.app))
    warm = Node(port, key, 1)
    for _ in range(3 * args.workers):  # every worker's first request, not in the figures
        warm.cursor = None
        warm.pull(conditional=False)

    syncs = []
    node = None
    for limit in (5000, 500):
        synced, result = initial_sync(port, key, limit, cpu)
        syncs.append(result)
        print(f"initial sync, limit={limit}: {result['changes']:,} changes in "
              f"{result['seconds']:.2f} s = {result['rate']:,.0f} rows/s, {result['pages']} pages "
              f"(p50 {result['p50_page_ms']:.0f} ms, max {result['max_page_ms']:.0f} ms), "
              f"{result['bytes'] / 1e6:.1f} MB; server CPU: gunicorn {result['app_cpu']:.2f} s, "
              f"PostgreSQL {result['pg_cpu']:.2f} s; {result['entities']}", flush=True)  # fmt: skip
        verify(synced, truth, f"initial sync, limit={limit}")
        node = node or synced
    assert node is not None
    node.limit = 5000

    drain(node)
    # An unchanged answer must keep its ETag across seconds, or no real node (polling every
    # few seconds) ever gets a 304.
    node.pull(conditional=False)
    time.sleep(1.1)
    status, *_ = node.pull()
    etag_stable = status == 304
    print(f"idle poll 1.1 s after the previous one, with its ETag: {status} "
          f"({'stable ETag' if etag_stable else 'the unchanged answer got a new ETag'})",
          flush=True)  # fmt: skip
    idle_200 = idle_polls(node, 200, conditional=False, cpu=cpu)
    idle_304 = idle_polls(node, 200, conditional=True, cpu=cpu)
    for label, r in (
        ("idle poll, 200 (no If-None-Match)", idle_200),
        ("idle poll, If-None-Match", idle_304),
    ):
        print(f"{label}: {r['statuses']} p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, "
              f"max {r['max']:.1f} ms; server CPU {r['cpu_ms']:.1f} ms a poll", flush=True)  # fmt: skip

    phases = []
    for rate in (float(r) for r in args.writer_rates.split(",") if r.strip()):
        label = "unpaced" if not rate else f"{rate:g}/s each"
        print(f"incremental: {args.writers} writers ({label}) for {args.duration:g} s, "
              f"a poll every {args.interval * 1000:.0f} ms …", flush=True)  # fmt: skip
        r = incremental(pg, node, args.writers, rate, args.duration, args.interval, warmup=8.0,
                        cpu=cpu, nice=args.writer_nice)  # fmt: skip
        phases.append(r)
        print(f"  {r['writes']:,} price changes = {r['writes_per_s']:,.0f}/s "
              f"({len(r['write_errors'])} writer errors); {r['polls']} polls {r['statuses']}; "
              f"latency p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f}, p99 {r['p99']:.1f}, "
              f"max {r['max']:.1f}; with changes p50 {r['p50_changes']:.1f} / p99 "
              f"{r['p99_changes']:.1f} ms; changes/poll mean {r['changes_mean']:.1f}, "
              f"max {r['changes_max']}; freshness lag p50 {r['lag_p50']:.0f} ms, p99 "
              f"{r['lag_p99']:.0f}, max {r['lag_max']:.0f} ({r['seen']:,} of {r['writes']:,} "
              f"changes seen, the rest compacted by a later change); drained after: "
              f"{r['tail']}; server CPU {r['cpu_ms']:.1f} ms a poll; "
              f"load {r['load'][0]:.2f} → {r['load'][1]:.2f}", flush=True)  # fmt: skip
        if r["write_errors"]:
            print(f"  writer errors, first: {r['write_errors'][0]}", flush=True)
        verify(node, hq_state(pg), f"after {label} writers")
    if node.stale:
        print(f"NOTE: {node.stale} changes arrived with a version not above the one held")
    bad = {s: n for s, n in node.statuses.items() if s not in (200, 304)}
    if bad:
        print(f"NOTE: non-2xx/304 answers: {bad}; first: {node.errors[:1]}")

    # --- summary --------------------------------------------------------------------------
    print()
    print("| initial sync | seconds | changes | rows/s | pages | MB | × reference | "
          "server CPU s (gunicorn + PG) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| raw SQL SELECT (reference) | {ref['select_s']:.2f} | {ref['rows']:,} | "
          f"{ref['rows'] / ref['select_s']:,.0f} | 1 | | 1.00 | |")  # fmt: skip
    print(f"| SELECT + change dicts + JSON | {ref['json_s']:.2f} | {ref['rows']:,} | "
          f"{ref['rows'] / ref['json_s']:,.0f} | | {ref['bytes'] / 1e6:.1f} | "
          f"{ref['json_s'] / ref['select_s']:.1f} | |")  # fmt: skip
    for s in syncs:
        print(f"| HTTP pull, limit={s['limit']} | {s['seconds']:.2f} | {s['changes']:,} | "
              f"{s['rate']:,.0f} | {s['pages']} | {s['bytes'] / 1e6:.1f} | "
              f"{s['seconds'] / ref['select_s']:.1f} | "
              f"{s['app_cpu']:.2f} + {s['pg_cpu']:.2f} |")  # fmt: skip
    print()
    print(
        "| incremental poll | writes/s | polls | p50 | p95 | p99 | max | changes/poll | "
        "lag p50 | lag p99 | server CPU/poll |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in (
        ("idle, no If-None-Match (200)", idle_200),
        ("idle, If-None-Match (304)", idle_304),
    ):
        print(f"| {label} | 0 | {r['n']} | {r['p50']:.1f} ms | | {r['p99']:.1f} ms | "
              f"{r['max']:.1f} ms | 0 | | | {r['cpu_ms']:.1f} ms |")  # fmt: skip
    for r in phases:
        label = "unpaced" if not r["rate"] else f"{r['rate']:g}/s each"
        print(f"| {r['writers']} writers, {label} | {r['writes_per_s']:,.0f} | {r['polls']} | "
              f"{r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['p99']:.1f} ms | {r['max']:.1f} ms | "
              f"{r['changes_mean']:.1f} | {r['lag_p50']:.0f} ms | {r['lag_p99']:.0f} ms | "
              f"{r['cpu_ms']:.1f} ms |")  # fmt: skip
    print()
    if not etag_stable:
        print("NOTE: an unchanged answer 1.1 s later had another ETag, so it was a 200, not a 304")
    first = syncs[0]
    print(
        f"goal: initial sync of {len(truth['product']):,} products < 10 s: "
        f"{'met' if first['seconds'] < 10 else 'NOT met'} ({first['seconds']:.2f} s, limit=5000)"
    )
    for r in phases:
        label = "unpaced" if not r["rate"] else f"{r['rate']:g}/s each"
        print(
            f"goal: incremental p99 < 20 ms ({label} writers): "
            f"{'met' if r['p99'] < 20 else 'NOT met'} ({r['p99']:.1f} ms)"
        )


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)  # gunicorn and the writers were stopped on the way out
