"""Store-node benchmark: till latency with head office up and down, recovery after a
partition, and draining a day's offline backlog.

    .venv/bin/python benchmarks/node.py                              # the full run
    .venv/bin/python benchmarks/node.py --partition-seconds 30 --backlog 1000   # quicker
    .venv/bin/python benchmarks/node.py --phases latency                        # one phase

Everything is real processes on 127.0.0.1: head office is gunicorn (``--hq-workers`` sync
workers) on its own PostgreSQL database (``tillbook_node_bench``, dropped at the end unless
``--keep``), seeded with ``--products`` products in one store (S01, Europe/Berlin, EUR) with
five registers and a cashier. Each store node is ``manage.py node_init`` then its web server
(gunicorn with ``ERP_ROLE=node``, one sync worker) and its sync agent (``manage.py run_node``),
each node on a SQLite database of its own, reaching head office through the test suite's TCP
fault proxy (``tests/faults/proxy.py``), which can take head office away.

1. **Sale latency**: ``--sales`` sales of 1–5 lines through the till API (start a basket,
   scan each line, pay cash, complete), with head office reachable and then unreachable.
   Reported: the completion request (the local transaction that writes the sale and its
   outbox event) and the whole sale, p50 / p99, client-side round trips. Blocks of 25 sales
   alternate between the two, so other load on the machine weighs on both alike.
2. **Partition recovery**: ``--registers`` registers sell one sale every 2 s each while head
   office is unreachable for ``--partition-seconds``; then the link comes back and selling
   stops. Reported: the time from the link's return to head office holding every event of
   every register (checked in its database), and the backlog it drained.
3. **Backlog drain**: a register rings ``--backlog`` sales with its agent stopped (the till
   services in one process, as fast as they go), then its agent starts. Reported: the time
   from the agent's start to head office holding all of them.

The agents run with the default ``SYNC_OFFLINE_RETRY_MAX_SECONDS`` (how long a node waits at
most between attempts while head office is unreachable: 2 s) unless ``--offline-retry`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.live_hq import LiveHQ, Seed, _create_db, _drop_db, _manage, free_port  # noqa: E402
from tests.faults.proxy import Fault, FaultProxy  # noqa: E402
from tests.node import processes  # noqa: E402
from tests.node.till_processes import NodeWeb, TillClient  # noqa: E402

DB = "tillbook_node_bench"
REGISTERS = ("R1", "R2", "R3", "R4", "R5")

SEED = r"""
import json
from decimal import Decimal
from inventory.models import Currency
from inventory import services as inv
from stores import services as st
import datetime as dt
n = {n}
std = inv.tax_rate_create(actor=None, code="STD", name="Standard", rate=Decimal("19"), inclusive=True)
red = inv.tax_rate_create(actor=None, code="RED", name="Reduced", rate=Decimal("7"), inclusive=True)
pl = inv.price_list_create(actor=None, code="DE", name="DE", currency=Currency.objects.get(code="EUR"))
store = st.store_create(actor=None, code="S01", name="Bench", timezone="Europe/Berlin", currency=pl.currency, price_list=pl)
for r in {registers!r}:
    st.register_create(actor=None, store=store, code=r)
inv.products_bulk_upsert(actor=None, rows=[{{"sku": f"{{100000 + i}}", "name": f"Product {{i}}", "tax_code": "RED" if i % 3 else "STD", "cost": Decimal("0.50")}} for i in range(n)])
inv.prices_bulk_upsert(actor=None, price_list=pl, rows=[{{"sku": f"{{100000 + i}}", "price": Decimal(f"{{1 + i % 17}}.{{i % 100:02d}}"), "valid_from": dt.date(2026, 1, 1)}} for i in range(n)])
from django.db import connection
with connection.cursor() as c:
    c.execute("INSERT INTO inventory_stocklevel (location_id, product_id, qty, updated_at) SELECT s.stock_location_id, p.id, 1000000, now() FROM stores_store s, inventory_product p")
st.cashier_create(actor=None, code="C1", name="Bench", role="cashier", pin="1234", stores=[store])
print("KEY=" + st.node_key_issue(actor=None, store=store)[1])
"""

BACKLOG = r"""
import random, time
from stores.local import LocalCashier
from stores.till import services as t
cashier = LocalCashier.objects.get(code="C1")
t.session_open(cashier=cashier, opening_float="0") if t.session_current() is None else None
rng = random.Random(7)
began = time.perf_counter()
for i in range({n}):
    b = t.basket_start(cashier=cashier)
    for _ in range(rng.randint(1, 5)):
        t.basket_line_add(cashier=cashier, basket_id=b.basket_id, code=str(100000 + rng.randrange({products})))
    t.basket_tender_add(cashier=cashier, basket_id=b.basket_id, method="cash")
    t.basket_complete(cashier=cashier, basket_id=b.basket_id)
print(f"MADE={{time.perf_counter() - began:.3f}}")
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="tillbook_node_bench_"))
        self.hq: LiveHQ | None = None
        self.proxy: FaultProxy | None = None
        self.webs: list[NodeWeb] = []
        self.agents: list[processes.NodeAgent] = []
        self.key = ""
        self.rng = random.Random(11)

    # --- set-up ------------------------------------------------------------------------------

    def setup(self) -> None:
        _drop_db(DB)
        _create_db(DB)
        began = time.perf_counter()
        _manage(DB, "migrate", "--noinput", "-v", "0")
        out = _manage(DB, "shell", "-c", SEED.format(n=self.args.products, registers=REGISTERS))
        self.key = next(x for x in out.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")
        print(f"head office migrated and seeded in {time.perf_counter() - began:.1f} s")
        self.hq = LiveHQ(database=DB, seed=Seed({}, {}, {}), log_path=self.tmp / "hq.log",
                         workers=self.args.hq_workers)  # fmt: skip
        self.hq.start()
        self.proxy = FaultProxy(upstream_port=self.hq.port).start()

    def node(self, register: str, *, agent: bool = True) -> tuple[Path, NodeWeb | None]:
        assert self.proxy is not None
        data = processes.new_node_dir(self.tmp, f"node-{register}")
        done = processes.manage(data, "node_init", "--hq", self.proxy.url, "--store", "S01",
                                "--register", register, "--key", self.key)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        web = None
        if agent:
            web = NodeWeb(data, self.tmp / f"web-{register}.log", port=free_port(), workers=1,
                          env={"DEVICES_PRINTER_PATH": str(data / "receipts")}).start()  # fmt: skip
            self.webs.append(web)
            self.start_agent(data, register)
        return data, web

    def start_agent(self, data: Path, register: str) -> None:
        env = {"SYNC_BACKOFF_MAX_SECONDS": "5", "SYNC_PULL_SECONDS": "30"}
        if self.args.offline_retry is not None:
            env["SYNC_OFFLINE_RETRY_MAX_SECONDS"] = str(self.args.offline_retry)
        self.agents.append(
            processes.NodeAgent(data, self.tmp / f"agent-{register}.log", env=env).start()
        )

    def hq_count(self, register: str) -> int:
        assert self.hq is not None
        return self.hq.scalar(
            "SELECT count(*) FROM sync_event e JOIN stores_register r ON r.id = e.register_id "
            "WHERE r.code = %s", [register])  # fmt: skip

    def lines(self) -> list[tuple[str, None]]:
        return [(str(100000 + self.rng.randrange(self.args.products)), None)
                for _ in range(self.rng.randint(1, 5))]  # fmt: skip

    def sale(self, till: TillClient) -> tuple[float, float]:
        began = time.perf_counter()
        basket = till.ok("POST", "baskets", None, 201)["basket_id"]
        for code, _ in self.lines():
            till.ok("POST", f"baskets/{basket}/lines", {"code": code}, 201)
        till.ok("POST", f"baskets/{basket}/tenders", {"method": "cash"}, 201)
        before = time.perf_counter()
        till.ok("POST", f"baskets/{basket}/complete", None, 201)
        end = time.perf_counter()
        return end - before, end - began

    @staticmethod
    def wait(condition: Any, timeout: float, what: str) -> float:
        began = time.perf_counter()
        while not condition():
            if time.perf_counter() - began > timeout:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.02)
        return time.perf_counter() - began

    # --- phases --------------------------------------------------------------------------------

    def latency(self) -> dict[str, dict[str, float]]:
        assert self.proxy is not None
        _, web = self.node("R1")
        assert web is not None
        till = TillClient(web.port, "C1", "1234")
        till.ok("POST", "sessions", {"opening_float": "100.00"}, 201)
        for _ in range(10):  # warm up both the worker and SQLite's page cache
            self.sale(till)
        # Blocks of sales alternate between head office up and down, so that whatever else
        # the machine does weighs on both the same.
        modes = {"head office up": (Fault.none(), True), "head office down": (Fault.down(), False)}
        samples: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in modes}
        block = 25
        while min(len(c) for c, _ in samples.values()) < self.args.sales:
            for label, (fault, online) in modes.items():
                self.proxy.set(fault)
                self.wait(lambda o=online: till.ok("GET", "status")["online"] is o, 60, label)
                complete, whole = samples[label]
                for _ in range(min(block, self.args.sales - len(complete))):
                    c, w = self.sale(till)
                    complete.append(c)
                    whole.append(w)
        results = {}
        for label, (complete, whole) in samples.items():
            results[label] = {"complete_p50": statistics.median(complete),
                              "complete_p99": pct(complete, 99), "sale_p50": statistics.median(whole),
                              "sale_p99": pct(whole, 99), "n": len(complete)}  # fmt: skip
            print(f"{label}: complete p50 {ms(results[label]['complete_p50'])}, p99 "
                  f"{ms(results[label]['complete_p99'])}; whole sale p50 "
                  f"{ms(results[label]['sale_p50'])}, p99 {ms(results[label]['sale_p99'])}")  # fmt: skip
        self.proxy.set(Fault.none())
        self.wait(lambda: till.ok("GET", "status")["outbox_depth"] == 0, 120, "R1 in sync")
        till.close()
        return results

    def partition(self) -> dict[str, float]:
        assert self.proxy is not None
        registers = REGISTERS[1 : 1 + self.args.registers]
        tills = []
        for register in registers:
            _, web = self.node(register)
            assert web is not None
            till = TillClient(web.port, "C1", "1234")
            till.ok("POST", "sessions", {"opening_float": "0"}, 201)
            tills.append(till)
        for register in registers:
            self.wait(lambda r=register: self.hq_count(r) >= 1, 60, f"{register} session at HQ")
        self.proxy.set(Fault.down())
        began = time.perf_counter()
        sold = 0
        tick = 0
        # one sale every 2 s per register, the registers staggered across the interval
        while time.perf_counter() - began < self.args.partition_seconds:
            for index, till in enumerate(tills):
                due = began + tick * 2.0 + index * 2.0 / len(tills)
                time.sleep(max(0.0, due - time.perf_counter()))
                self.sale(till)
                sold += 1
            tick += 1
        depth = sum(t.ok("GET", "status")["outbox_depth"] for t in tills)
        counts = {
            r: processes.query(self.tmp / f"node-{r}", "SELECT next_seq - 1 FROM stores_nodestate")[
                0
            ][0]
            for r in registers
        }
        self.proxy.set(Fault.none())
        back = time.perf_counter()
        self.wait(lambda: all(self.hq_count(r) >= counts[r] for r in registers), 300,
                  "every register's events at HQ")  # fmt: skip
        recovery = time.perf_counter() - back
        for till in tills:
            till.close()
        print(f"partition {self.args.partition_seconds:g} s, {len(registers)} registers, {sold} "
              f"sales ({depth} events waiting): head office held everything {recovery:.2f} s "
              f"after the link came back")  # fmt: skip
        return {"recovery": recovery, "sold": sold, "depth": depth, "registers": len(registers)}

    def backlog(self) -> dict[str, float]:
        data, _ = self.node("R5", agent=False)
        done = processes.manage(
            data,
            "shell",
            "-c",
            BACKLOG.format(n=self.args.backlog, products=self.args.products),
            timeout=3600,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        made = float(
            next(x for x in done.stdout.splitlines() if x.startswith("MADE=")).removeprefix("MADE=")
        )
        expected = self.args.backlog + 1  # and the session_open
        self.start_agent(data, "R5")
        drained = self.wait(lambda: self.hq_count("R5") >= expected, 600, "the backlog at HQ")
        sales = self.hq.scalar("SELECT count(*) FROM stores_sale s JOIN stores_register r ON "
                               "r.id = s.register_id WHERE r.code = 'R5'")  # fmt: skip
        print(f"backlog: {self.args.backlog} sales rung offline in {made:.1f} s "
              f"({self.args.backlog / made:.0f}/s through the till services); head office "
              f"held all {sales} {drained:.2f} s after the agent started")  # fmt: skip
        return {"made": made, "drained": drained, "sales": sales}

    def close(self) -> None:
        for agent in self.agents:
            with contextlib.suppress(Exception):
                agent.kill()
        for web in self.webs:
            with contextlib.suppress(Exception):
                web.kill()
        if self.proxy is not None:
            self.proxy.stop()
        if self.hq is not None:
            self.hq.close()
        if not self.args.keep:
            _drop_db(DB)
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"kept database {DB} and {self.tmp}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--sales", type=int, default=200, help="sales per latency phase")
    parser.add_argument("--partition-seconds", type=float, default=120.0)
    parser.add_argument("--registers", type=int, default=2, choices=range(1, 4))
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument(
        "--offline-retry",
        type=int,
        default=None,
        help="SYNC_OFFLINE_RETRY_MAX_SECONDS (default: the setting's)",
    )
    parser.add_argument("--hq-workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--phases",
        default="latency,partition,backlog",
        help="comma-separated: latency, partition, backlog",
    )
    args = parser.parse_args()
    bench = Bench(args)
    try:
        phases = set(args.phases.split(","))
        bench.setup()
        latency = bench.latency() if "latency" in phases else {}
        partition = bench.partition() if "partition" in phases else None
        backlog = bench.backlog() if "backlog" in phases else None
    finally:
        bench.close()
    print("\n| phase | figure |\n|---|---|")
    for label, r in latency.items():
        print(f"| sale completion, {label} ({r['n']} sales) | p50 {ms(r['complete_p50'])}, "
              f"p99 {ms(r['complete_p99'])} (whole sale p50 {ms(r['sale_p50'])}, p99 "
              f"{ms(r['sale_p99'])}) |")  # fmt: skip
    if partition:
        print(f"| recovery after a {args.partition_seconds:g} s partition, {partition['registers']} "
              f"registers at 1 sale / 2 s ({partition['sold']} sales) | {partition['recovery']:.2f} s |")  # fmt: skip
    if backlog:
        print(f"| drain of {args.backlog} offline sales | {backlog['drained']:.2f} s |")


if __name__ == "__main__":
    main()
