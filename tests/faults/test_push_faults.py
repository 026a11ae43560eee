"""Network faults and crashes between a store node and a real head office.

A real gunicorn on its own PostgreSQL database (``tests/e2e/live_hq.py``), reached through the
fault proxy or killed with SIGKILL while it works. Whatever the fault, a batch the node
retries is applied exactly once, and a retry answers what the first attempt answered.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import psycopg
import pytest

from tests.e2e.live_hq import PG, PRICE, SKUS, TEST_APP, LiveHQ, Reply, hq_env, live_hq
from tests.faults.proxy import Fault, FaultProxy
from tests.sync.builders import Till, batch

__all__ = ["hq_env", "live_hq"]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NETWORK_ERRORS = (ConnectionError, http.client.HTTPException, TimeoutError)


@pytest.fixture
def proxy(live_hq: LiveHQ) -> Iterator[FaultProxy]:
    with FaultProxy(upstream_port=live_hq.port) as running:
        yield running


def sales(till: Till, n: int, skus: tuple[str, ...] = ("SKU-A",)) -> list[dict]:
    return [till.sale([(sku, "1", PRICE) for sku in skus]) for _ in range(n)]


def batch_id(body: bytes) -> str:
    return json.loads(body)["batch_id"]


def stored_response(hq: LiveHQ, body: bytes) -> bytes | None:
    rows = hq.rows("SELECT response FROM sync_batch WHERE batch_id = %s", [batch_id(body)])
    return bytes(rows[0][0]) if rows else None


def assert_applied_once(hq: LiveHQ, n_sales: int, lines_per_sale: int = 1) -> None:
    counts = hq.counts()
    assert counts["sync_event"] == counts["stores_sale"] == counts["stores_tender"] == n_sales
    assert counts["stores_saleline"] == counts["inventory_stockmove"] == n_sales * lines_per_sale
    assert hq.scalar("SELECT count(DISTINCT event_id) FROM sync_event") == n_sales
    levels = hq.rows("SELECT qty FROM inventory_stocklevel")
    assert sum(q for (q,) in levels) == Decimal(-n_sales * lines_per_sale)


# --- lost and cut answers -------------------------------------------------------------------


def lose_first_answer(hq: LiveHQ, proxy: FaultProxy, body: bytes) -> None:
    proxy.set(Fault.lose_response())
    with pytest.raises(NETWORK_ERRORS):
        hq.push(body, "S01-A", port=proxy.port, timeout=30)
    assert proxy.stats.dropped_responses == 1
    proxy.set(Fault.none())


def test_lost_response_retry_of_the_same_batch_replays_the_first_answer(
    live_hq: LiveHQ, proxy: FaultProxy
) -> None:
    hq = live_hq
    events = sales(Till(register="R1", store_code="S01"), 30)
    body = batch(events)
    lose_first_answer(hq, proxy, body)

    first = stored_response(hq, body)
    assert first, "the server committed the batch and its answer before the answer was lost"
    assert_applied_once(hq, 30)

    retry = hq.push(body, "S01-A", port=proxy.port)
    assert retry.status == 200
    assert retry.body == first, "the retry is the replay of the first answer"
    assert retry.statuses() == ["accepted"] * 30
    assert retry.json()["high_water"]["R1"] == 30
    assert_applied_once(hq, 30)
    assert hq.counts()["sync_batch"] == 1


def test_lost_response_retry_under_a_new_batch_id_is_all_duplicate(
    live_hq: LiveHQ, proxy: FaultProxy
) -> None:
    hq = live_hq
    events = sales(Till(register="R1", store_code="S01"), 30)
    lose_first_answer(hq, proxy, batch(events))
    assert_applied_once(hq, 30)

    retry = hq.push(batch(events), "S01-A", port=proxy.port)
    assert retry.status == 200
    assert retry.statuses() == ["duplicate"] * 30
    assert retry.json()["high_water"]["R1"] == 30
    assert_applied_once(hq, 30)
    assert hq.counts()["sync_batch"] == 2


@pytest.mark.parametrize("cut_at", [1, 600], ids=["in-status-line", "in-body"])
def test_answer_cut_mid_response_then_retry_applies_once(
    live_hq: LiveHQ, proxy: FaultProxy, cut_at: int
) -> None:
    hq = live_hq
    body = batch(sales(Till(register="R1", store_code="S01"), 20))
    proxy.set(Fault.reset_after(cut_at))
    with pytest.raises(NETWORK_ERRORS):
        hq.push(body, "S01-A", port=proxy.port, timeout=30)
    assert proxy.stats.resets == 1
    first = stored_response(hq, body)
    assert first, "the cut came after the commit"
    assert len(first) > 600, "the cut really was inside the body"

    proxy.set(Fault.none())
    retry = hq.push(body, "S01-A", port=proxy.port)
    assert (retry.status, retry.body) == (200, first)
    assert retry.statuses() == ["accepted"] * 20
    assert_applied_once(hq, 20)


def test_client_timeout_on_a_slow_link_then_retry_applies_once(
    live_hq: LiveHQ, proxy: FaultProxy
) -> None:
    """The node gives up after 0.2 s while its request is still crawling to the server; it
    retries at once on a good link, so the two attempts reach the server in either order."""
    hq = live_hq
    body = batch(sales(Till(register="R1", store_code="S01"), 20))
    proxy.set(Fault.slow(0.5))
    with pytest.raises(TimeoutError):
        hq.push(body, "S01-A", port=proxy.port, timeout=0.2)

    proxy.set(Fault.none())
    retry = hq.push(body, "S01-A", port=proxy.port)
    assert retry.status == 200
    assert retry.statuses() == ["accepted"] * 20

    # Let the abandoned first attempt arrive and finish: both requests reach the server.
    deadline = time.monotonic() + 10
    while proxy.stats.bytes_up < 2 * len(body) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.stats.bytes_up >= 2 * len(body), "the slow first attempt reached the server"
    time.sleep(0.5)
    hq.wait_no_server_backends()
    assert stored_response(hq, body) == retry.body
    assert hq.counts()["sync_batch"] == 1
    assert_applied_once(hq, 20)
    assert hq.log_errors() == [], hq.log_tail()


# --- crashes --------------------------------------------------------------------------------

Moment = Callable[[str, str], bool]


def writing(table: str) -> Moment:
    """The connection is writing rows into ``table`` (INSERT or COPY), or has just done so."""
    pattern = re.compile(rf"^(INSERT INTO|COPY) {table} ")
    return lambda state, query: pattern.match(query) is not None


MOMENTS: dict[str, Moment] = {
    # the batch id is claimed (uncommitted) and its registers are being locked and read
    "after-claim": lambda state, query: (
        state == "idle in transaction" and not query.startswith("SET LOCAL")
    ),
    # the batch's events are going in
    "storing-events": writing("sync_event"),
    # sales are stored and the stock ledger is being written
    "writing-ledger": writing("inventory_stockmove"),
}


def kill_when(hq: LiveHQ, body: bytes, moment: Moment) -> tuple[str, str]:
    """Push ``body`` and SIGKILL the server (master and workers) as soon as its database
    connection is at ``moment``. Returns the (state, query) it was killed at."""
    outcome: list[Reply | BaseException] = []

    def client() -> None:
        try:
            outcome.append(hq.push(body, "S01-A", timeout=60))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    seen = None
    observed: list[tuple[str, str]] = []
    deadline = time.monotonic() + 30
    while seen is None and thread.is_alive() and time.monotonic() < deadline:
        for _pid, state, query in hq.server_backends():
            if not observed or observed[-1] != (state, query[:50]):
                observed.append((state, query[:50]))
            if state in ("active", "idle in transaction") and moment(state, query):
                hq.kill()
                seen = (state, query[:60])
                break
        else:
            time.sleep(0.001)
    thread.join(30)
    assert seen is not None, f"never saw the moment; saw {observed}; got {outcome!r:.300}"
    assert len(outcome) == 1
    assert isinstance(outcome[0], NETWORK_ERRORS), f"killed too late: {outcome[0]!r:.300}"
    return seen


@pytest.mark.parametrize("moment", list(MOMENTS), ids=list(MOMENTS))
def test_server_killed_mid_batch_keeps_nothing_and_the_retry_applies_once(
    live_hq: LiveHQ, moment: str
) -> None:
    hq = live_hq
    n = 1000
    body = batch(sales(Till(register="R1", store_code="S01"), n, skus=SKUS))  # 4 lines each
    assert len(SKUS) == 4

    killed_at = kill_when(hq, body, MOMENTS[moment])

    # PostgreSQL rolls the dead connection's transaction back: nothing of the batch is left.
    hq.wait_no_server_backends()
    assert set(hq.counts().values()) == {0}, (killed_at, hq.counts())
    assert hq.scalar("SELECT count(*) FROM inventory_stocklevel") == 0
    assert hq.scalar("SELECT count(*) FROM sync_registersyncstate") == 0

    hq.start()
    retry = hq.push(body, "S01-A")
    assert retry.status == 200, retry.body[:300]
    assert retry.statuses() == ["accepted"] * n
    assert retry.json()["high_water"]["R1"] == n
    assert_applied_once(hq, n, lines_per_sale=4)
    assert hq.counts()["sync_batch"] == 1

    again = hq.push(body, "S01-A")
    assert (again.status, again.body) == (200, retry.body), "a second retry replays the answer"
    assert_applied_once(hq, n, lines_per_sale=4)


# --- a stuck transaction elsewhere ----------------------------------------------------------

# What another (hung) transaction holds, taken from the test's own connection: the batch id's
# unique key (a worker still processing that batch), the register's sync state, or the SKU's
# stock-level row (another store node's batch).
HOLDERS = {
    "batch-id": "INSERT INTO sync_batch (batch_id, store_id, content_hash, event_count, "
    "received_at, response) VALUES (%(batch)s, %(store)s, 'x', 0, now(), '')",
    "register": "SELECT 1 FROM sync_registersyncstate WHERE register_id = "
    "(SELECT id FROM stores_register WHERE store_id = %(store)s AND code = 'R1') FOR UPDATE",
    "stock-row": "SELECT 1 FROM inventory_stocklevel WHERE location_id = %(location)s "
    "AND product_id = %(product)s FOR UPDATE",
}


@pytest.mark.parametrize("hq_env", [{"SYNC_LOCK_TIMEOUT_SECONDS": "1"}], ids=["lock-1s"])
@pytest.mark.parametrize("held", list(HOLDERS), ids=list(HOLDERS))
def test_a_batch_stuck_behind_another_transaction_is_told_to_retry_then_applies_once(
    live_hq: LiveHQ, held: str
) -> None:
    """Past ``SYNC_LOCK_TIMEOUT_SECONDS`` a push waiting on a lock answers ``409
    batch_in_progress`` with Retry-After (never a 500), applies nothing, and its retry once
    the lock is gone applies it once."""
    hq = live_hq
    till = Till(register="R1", store_code="S01")
    warm = hq.push(batch(sales(till, 1)), "S01-A")  # creates the register state and stock row
    assert warm.status == 200
    body = batch(sales(till, 10))
    params = {
        "batch": batch_id(body),
        "store": hq.seed.stores["S01"]["id"],
        "location": hq.seed.location("S01"),
        "product": hq.seed.products["SKU-A"],
    }
    with psycopg.connect(f"{PG}/{hq.database}", application_name=TEST_APP) as holder:
        holder.execute(HOLDERS[held], params)  # an open transaction, holding the lock
        stuck = hq.push(body, "S01-A")
        holder.rollback()
    assert stuck.status == 409, stuck.body[:300]
    assert stuck.json()["error"]["code"] == "batch_in_progress"
    assert int(stuck.headers["retry-after"]) >= 1
    assert_applied_once(hq, 1)

    retry = hq.push(body, "S01-A")
    assert retry.status == 200
    assert retry.statuses() == ["accepted"] * 10
    assert_applied_once(hq, 11)
    assert hq.log_errors() == [], hq.log_tail()
