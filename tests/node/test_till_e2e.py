"""The till end to end: a real head office (gunicorn on PostgreSQL), a real store node (its
web server and its sync agent, ``ERP_ROLE=node`` on SQLite) talking HTTP through the fault
proxy, and a cashier selling through the till API while head office is down, answers are
lost after head office committed, responses are slow, and the agent is killed with SIGKILL
and restarted. At the end head office holds
exactly the node's sales, returns, sessions and totals, with no reconciliation exception."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.live_hq import LiveHQ, _manage, free_port, hq_env, live_hq
from tests.faults.proxy import Fault, FaultProxy
from tests.node import processes
from tests.node.test_e2e import Node, make_node, wait_until
from tests.node.till_processes import NodeWeb, TillClient

__all__ = ["hq_env", "live_hq", "make_node"]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CASHIERS = """
from stores.models import Store
from stores.services import cashier_create
store = Store.objects.get(code="S01")
cashier_create(actor=None, code="C1", name="Cara", role="cashier", pin="1234", stores=[store])
cashier_create(actor=None, code="SV", name="Sam", role="supervisor", pin="2580", stores=[store])
"""


def test_head_office_ends_with_exactly_the_tills_sales_returns_and_sessions(
    live_hq: LiveHQ, make_node: Callable[..., Node], tmp_path: Path
) -> None:
    _manage(live_hq.database, "shell", "-c", CASHIERS)
    with FaultProxy(upstream_port=live_hq.port) as proxy:
        node = make_node(hq_url=proxy.url)
        done = node.init()
        assert done.returncode == 0, done.stderr
        web = NodeWeb(node.data_dir, tmp_path / "node-web.log", port=free_port(),
                      env={"DEVICES_PRINTER_PATH": str(tmp_path / "receipts")}).start()  # fmt: skip
        node.start()
        till = TillClient(web.port, "C1", "1234")
        try:
            # stock arrives, a shift starts, three sales while head office is reachable
            till.ok("POST", "stock-adjustments", {"lines": [
                {"code": sku, "qty_delta": "100", "reason": "receipt"}
                for sku in ("SKU-A", "SKU-B", "SKU-C", "SKU-D")]}, 201)  # fmt: skip
            session = till.ok("POST", "sessions", {"opening_float": "100.00"}, 201)["session_id"]
            sales = [till.sale([("SKU-A", "2"), ("SKU-B", None)]) for _ in range(3)]
            wait_until(lambda: till.ok("GET", "status")["outbox_depth"] == 0, what="in sync")
            assert till.ok("GET", "status")["online"] is True

            # head office goes down: the till keeps selling, and says it is offline
            proxy.set(Fault.down())
            sales.append(till.sale([("SKU-C", "3")], method="card"))
            wait_until(lambda: till.ok("GET", "status")["online"] is False, what="offline")
            sales += [till.sale([("SKU-D", None), ("SKU-A", None)]) for _ in range(4)]
            returned = till.ok("POST", "returns", {"receipt_no": sales[0]["receipt_no"],
                               "lines": [{"original_line_no": 1, "qty": "1"}]}, 201)  # fmt: skip
            till.ok("POST", "cash-movements", {"kind": "drop", "amount": "20.00"}, 201)
            status = till.ok("GET", "status")
            assert status["outbox_depth"] >= 7
            assert status["oldest_unsent_age_s"] is not None

            # back, but every answer is lost after head office committed; then slow
            proxy.set(Fault.lose_response())
            wait_until(lambda: proxy.stats.dropped_responses > 0, what="a lost answer")
            sales.append(till.sale([("SKU-B", "5")]))
            proxy.set(Fault.slow(0.05))
            sales.append(till.sale([("SKU-C", None)]))
            closed = till.ok("POST", f"sessions/{session}/close", {"counted_cash": "150.00"})
            # the agent dies (SIGKILL) and comes back; the till never noticed
            node.kill()
            till.ok("POST", "sessions", {"opening_float": "150.00"}, 201)
            late = till.sale([("SKU-D", "2")])
            node.start()
            proxy.set(Fault.none())
            wait_until(lambda: till.ok("GET", "status")["outbox_depth"] == 0, timeout=60,
                       what="the outbox drained")  # fmt: skip
            final = till.ok("GET", "status")
        finally:
            till.close()
            web.kill()

    # then: head office holds exactly the node's events, each once, seqs 1…n
    next_seq = node.state()["next_seq"]
    seqs = [s for (s,) in live_hq.rows(
        "SELECT e.seq FROM sync_event e JOIN stores_register r ON r.id = e.register_id "
        "WHERE r.code = 'R1' ORDER BY e.seq")]  # fmt: skip
    assert seqs == list(range(1, next_seq))
    assert final["high_water"] == {"R1": next_seq - 1}
    node_receipts = processes.query(
        node.data_dir, "SELECT event_id, type, receipt_no, gross FROM stores_localreceipt"
    )
    hq_sales = live_hq.rows("SELECT replace(event_id::text, '-', ''), type, receipt_no, gross "
                            "FROM stores_sale")  # fmt: skip
    assert sorted((e.replace("-", ""), t, r, Decimal(str(g))) for e, t, r, g in node_receipts) == (
        sorted((e, t, r, g) for e, t, r, g in hq_sales)
    )
    assert len(hq_sales) == len(sales) + 2  # the return, and the sale of the next shift
    # every receipt was printed, by the web server's print spooler after its sale committed
    printed = sorted(p.stem for p in (tmp_path / "receipts").glob("*.txt"))
    assert printed == sorted(r for _, _, r, _ in node_receipts)
    assert late["receipt_no"] in {r for _, _, r, _ in hq_sales}
    hq_return = live_hq.rows("SELECT original_event::text FROM stores_sale WHERE type='return'")
    assert hq_return == [(sales[0]["event_id"],)]
    assert returned["totals"]["gross"] == "1.99"

    # the session and its Z-report, as the node computed them
    z = closed["z_report"]
    row = live_hq.rows(
        "SELECT sale_count, return_count, gross, tax, counted_cash, tenders, first_seq, last_seq "
        "FROM stores_tillsession WHERE session_id = %s", [session])[0]  # fmt: skip
    assert row[:5] == (len(sales), 1, Decimal(z["gross"]), Decimal(z["tax"]), Decimal("150.00"))
    assert row[5] == z["tenders"]
    assert (row[6], row[7]) == (z["first_seq"], z["last_seq"])
    gross_at_hq = live_hq.scalar(
        "SELECT sum(CASE WHEN type = 'sale' THEN gross ELSE -gross END) FROM stores_sale "
        "WHERE session_id = %s",
        [session],
    )
    assert gross_at_hq == Decimal(z["gross"])
    for method in ("cash", "card"):
        taken = live_hq.scalar(
            "SELECT sum(CASE WHEN s.type = 'sale' THEN t.amount - t.change "
            "ELSE t.change - t.amount END) FROM stores_tender t "
            "JOIN stores_sale s ON s.event_id = t.sale_id "
            "WHERE s.session_id = %s AND t.method = %s",
            [session, method],
        )
        assert taken == Decimal(z["tenders"][method]), method
    # totals computed exactly as head office checks them: no exception of any kind
    assert live_hq.rows("SELECT type, message FROM sync_reconciliationexception") == []
    assert live_hq.scalar("SELECT count(*) FROM sync_eventconflict") == 0
    assert live_hq.scalar("SELECT count(*) FROM sync_deadletter") == 0
    assert live_hq.scalar("SELECT count(*) FROM stores_cashmovement") == 1
