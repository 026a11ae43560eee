"""Concurrent pushes against a real head office (gunicorn, 3 workers, PostgreSQL).

What the protocol promises under concurrency, tried with real processes racing:

- two retries of the same events under different batch ids, released at the same instant,
  have one effect between them: each event ``accepted`` in one answer, ``duplicate`` in the
  other;
- one batch id sent four times at once is applied once and answered byte for byte the same;
- sales and returns of one SKU pushed in parallel by several nodes (of one store, and of two
  stores) lose no stock update and never deadlock: every level equals the sum of its moves
  and the quantity the events imply.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.e2e.live_hq import PG, PRICE, TEST_APP, LiveHQ, Reply
from tests.sync.builders import Till, batch

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def race(hq: LiveHQ, sends: list[tuple[bytes, str]]) -> list[Reply]:
    """Send each (body, key) from its own thread, all released by one barrier once every
    connection is open, so the requests reach the server together."""
    barrier = threading.Barrier(len(sends))
    replies: list[Reply | BaseException | None] = [None] * len(sends)

    def run(i: int, body: bytes, key: str) -> None:
        try:
            conn = hq.connect()
            barrier.wait(10)
            replies[i] = hq.send(conn, body, key)
        except BaseException as exc:
            replies[i] = exc

    threads = [
        threading.Thread(target=run, args=(i, body, key)) for i, (body, key) in enumerate(sends)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for reply in replies:
        if not isinstance(reply, Reply):
            raise AssertionError(f"a racing request failed: {reply!r}\n{hq.log_tail()}")
    return replies  # type: ignore[return-value]


def assert_no_server_errors(hq: LiveHQ) -> None:
    assert hq.log_errors() == [], hq.log_tail()
    assert hq.deadlocks() == 0


def test_racing_retries_with_different_batch_ids_apply_each_event_once(live_hq: LiveHQ) -> None:
    hq = live_hq
    till = Till(register="R1", store_code="S01")
    rounds, size = 10, 200
    accepted_in: dict[str, str] = {}
    winners = []
    with hq.watch_lock_waits() as watch:
        for _ in range(rounds):
            events = [till.sale([("SKU-A", "1", PRICE)]) for _ in range(size)]
            ids = [str(uuid.uuid4()), str(uuid.uuid4())]
            first, second = race(hq, [(batch(events, batch_id=b), "S01-A") for b in ids])
            assert (first.status, second.status) == (200, 200), (first.body[:300], second.body)
            a, b = first.json(), second.json()
            for n, event in enumerate(events):
                pair = sorted([a["results"][n]["status"], b["results"][n]["status"]])
                assert pair == ["accepted", "duplicate"], (n, pair)
                assert a["results"][n]["event_id"] == event["event_id"]
                assert b["results"][n]["event_id"] == event["event_id"]
                winner = a if a["results"][n]["status"] == "accepted" else b
                accepted_in[event["event_id"]] = winner["batch_id"]
            winners.append(0 if a["results"][0]["status"] == "accepted" else 1)
            assert a["high_water"]["R1"] == b["high_water"]["R1"] == till.seq
    # the race was real: one request waited for the other's register lock inside PostgreSQL
    assert watch.seen.get("sync_registersyncstate", 0) > 0, (watch.seen, winners)

    total = rounds * size
    counts = hq.counts()
    assert counts["sync_batch"] == 2 * rounds
    assert counts["sync_event"] == counts["stores_sale"] == counts["inventory_stockmove"] == total
    assert counts["sync_eventconflict"] == 0
    stored = dict(hq.rows("SELECT event_id::text, batch_id::text FROM sync_event"))
    assert stored == accepted_in, "each event is stored by the batch that said 'accepted'"
    assert hq.scalar(
        "SELECT qty FROM inventory_stocklevel WHERE location_id = %s AND product_id = %s",
        [hq.seed.location("S01"), hq.seed.products["SKU-A"]],
    ) == Decimal(-total)
    assert_no_server_errors(hq)


def test_one_batch_id_sent_four_times_at_once_is_applied_once_with_one_answer(
    live_hq: LiveHQ,
) -> None:
    hq = live_hq
    till = Till(register="R1", store_code="S01")
    rounds, size = 3, 200
    with hq.watch_lock_waits() as watch:
        for n in range(rounds):
            events = [
                till.sale([("SKU-A", "1", PRICE), ("SKU-B", "2", PRICE)]) for _ in range(size)
            ]
            body = batch(events)
            replies = race(hq, [(body, "S01-A")] * 4)
            assert all(r.status < 500 for r in replies), [(r.status, r.body) for r in replies]
            final = []
            for reply in replies:
                if reply.status == 409:  # allowed: batch_in_progress + Retry-After; retry then
                    assert reply.json()["error"]["code"] == "batch_in_progress"
                    assert "retry-after" in reply.headers
                    reply, _ = hq.push_answered(body, "S01-A")
                assert reply.status == 200, reply.body[:300]
                final.append(reply.body)
            assert len(set(final)) == 1, "every answer is the first one, byte for byte"
            assert final[0] == bytes(
                hq.scalar("SELECT response FROM sync_batch WHERE batch_id = %s", [body_id(body)])
            )
            assert Reply(200, {}, final[0]).statuses() == ["accepted"] * size
            counts = hq.counts()
            assert counts["sync_batch"] == n + 1
            assert counts["stores_sale"] == counts["sync_event"] == (n + 1) * size
            assert counts["stores_saleline"] == counts["inventory_stockmove"] == 2 * (n + 1) * size
    # the race was real: the other requests waited on the batch id's unique key
    assert watch.seen.get("sync_batch", 0) > 0, watch.seen
    assert_no_server_errors(hq)


def test_one_event_id_racing_under_two_registers_is_accepted_once_and_conflict_once(
    live_hq: LiveHQ,
) -> None:
    """Two nodes of a store each send an event with the same event_id (a node bug or a
    cloned outbox) at the same instant. They lock different registers, so nothing serialises
    them before the event insert: the loser must still answer ``conflict`` (event_id_reused),
    never a 5xx."""
    hq = live_hq
    one, two = Till(register="R1", store_code="S01"), Till(register="R2", store_code="S01")
    rounds, size, shared = 6, 100, range(0, 100, 20)
    for _ in range(rounds):
        a = [one.sale([("SKU-A", "1", PRICE)]) for _ in range(size)]
        b = [two.sale([("SKU-B", "1", PRICE)]) for _ in range(size)]
        for k in shared:
            b[k]["event_id"] = a[k]["event_id"]
        first, second = race(hq, [(batch(a), "S01-A"), (batch(b), "S01-B")])
        assert (first.status, second.status) == (200, 200), (first.body[:300], second.body[:300])
        ra, rb = first.json()["results"], second.json()["results"]
        for k in range(size):
            if k in shared:
                pair = sorted([ra[k]["status"], rb[k]["status"]])
                assert pair == ["accepted", "conflict"], (k, pair)
                loser = ra[k] if ra[k]["status"] == "conflict" else rb[k]
                assert loser["code"] == "event_id_reused"
            else:
                assert ra[k]["status"] == rb[k]["status"] == "accepted", (k, ra[k], rb[k])
    counts = hq.counts()
    assert counts["sync_event"] == counts["stores_sale"] == rounds * (2 * size - len(shared))
    assert counts["sync_eventconflict"] == rounds * len(shared)
    assert_no_server_errors(hq)


def body_id(body: bytes) -> str:
    return json.loads(body)["batch_id"]


# --- stock: many writers on one SKU ---------------------------------------------------------


def _lane_batches(
    till: Till, rng: random.Random, n_batches: int, size: int
) -> tuple[list[bytes], dict[str, Decimal], int]:
    """A node's outbox as batches: sales of SKU-A (some with SKU-B, lines in either order),
    returns of earlier sales and returns without receipt. Returns the bodies, the stock
    change per SKU they imply, and the number of lines."""
    delta: dict[str, Decimal] = defaultdict(Decimal)
    lines_total = 0
    sold: list[dict[str, Any]] = []
    bodies = []
    for _ in range(n_batches):
        events = []
        for _ in range(size):
            roll = rng.random()
            if roll < 0.2 and sold:
                original = sold.pop(rng.randrange(len(sold)))
                lines = [(ln["sku"], ln["qty"], PRICE) for ln in original["data"]["lines"]]
                event = till.return_of(original, lines)
                sign = Decimal(1)
            elif roll < 0.3:
                lines = [("SKU-A", str(rng.randint(1, 3)), PRICE)]
                event = till.return_of(None, lines)
                sign = Decimal(1)
            else:
                lines = [("SKU-A", str(rng.randint(1, 3)), PRICE)]
                if rng.random() < 0.4:
                    lines.append(("SKU-B", str(rng.randint(1, 2)), PRICE))
                    rng.shuffle(lines)
                event = till.sale(lines)
                sign = Decimal(-1)
            for sku, qty, _price in lines:
                delta[sku] += sign * Decimal(qty)
            lines_total += len(lines)
            events.append(event)
        # returns only of sales already sent in an earlier batch: those are never held
        sold.extend(e for e in events if e["type"] == "sale")
        bodies.append(batch(events))
    return bodies, delta, lines_total


LANES = {
    # two stores selling the same product, each from two nodes at once
    "two-stores-share-a-sku": [
        ("S01", "R1", "S01-A"),
        ("S01", "R2", "S01-B"),
        ("S02", "R1", "S02-A"),
        ("S02", "R2", "S02-B"),
    ],
    # one store: two nodes, and a second register behind the first node's key
    "one-store-three-registers": [
        ("S01", "R1", "S01-A"),
        ("S01", "R2", "S01-B"),
        ("S01", "R3", "S01-A"),
    ],
}


@pytest.mark.parametrize("lanes", list(LANES.values()), ids=list(LANES))
def test_parallel_sales_and_returns_of_one_sku_lose_no_stock_update(
    live_hq: LiveHQ, lanes: list[tuple[str, str, str]]
) -> None:
    hq = live_hq
    n_batches, size = 8, 40
    plans = []
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    lines_expected = 0
    for n, (store, register, key) in enumerate(lanes):
        till = Till(register=register, store_code=store)
        bodies, delta, lines = _lane_batches(till, random.Random(n), n_batches, size)
        plans.append((key, bodies))
        for sku, qty in delta.items():
            expected[(store, sku)] += qty
        lines_expected += lines

    barrier = threading.Barrier(len(plans))
    failures: list[str] = []
    busy: list[int] = []

    def node(key: str, bodies: list[bytes]) -> None:
        try:
            barrier.wait(10)
            for body in bodies:  # a node pushes its outbox in order, one batch at a time
                reply, n_busy = hq.push_answered(body, key)
                busy.append(n_busy)
                if reply.status != 200:
                    failures.append(f"{key}: {reply.status} {reply.body[:300]!r}")
                    return
                statuses = set(reply.statuses())
                if statuses != {"accepted"}:
                    failures.append(f"{key}: {statuses}")
                    return
        except BaseException as exc:
            failures.append(f"{key}: {exc!r}")

    with hq.watch_lock_waits() as watch:
        threads = [threading.Thread(target=node, args=plan) for plan in plans]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    assert failures == [], f"{failures}\n{hq.log_tail()}"
    # the pushes' transactions really ran at the same time (that two writers of one level queue
    # on its row is shown deterministically by the test below)
    assert watch.overlap >= 2, (watch.overlap, watch.seen)

    counts = hq.counts()
    assert counts["sync_event"] == counts["stores_sale"] == len(lanes) * n_batches * size
    assert counts["inventory_stockmove"] == counts["stores_saleline"] == lines_expected
    levels = {
        (store, sku): (qty, moved)
        for store, sku, qty, moved in hq.rows(
            "SELECT s.code, p.sku, l.qty, (SELECT sum(m.qty_delta) FROM inventory_stockmove m "
            "  WHERE m.location_id = l.location_id AND m.product_id = l.product_id) "
            "FROM inventory_stocklevel l "
            "JOIN stores_store s ON s.stock_location_id = l.location_id "
            "JOIN inventory_product p ON p.id = l.product_id"
        )
    }
    assert {k: qty for k, (qty, _) in levels.items()} == dict(expected), "no lost update"
    assert all(qty == moved for qty, moved in levels.values()), "each level = sum of its moves"
    for store, register, _key in lanes:
        assert (
            hq.scalar(
                "SELECT st.high_water FROM sync_registersyncstate st "
                "JOIN stores_register r ON r.id = st.register_id "
                "JOIN stores_store s ON s.id = r.store_id WHERE s.code = %s AND r.code = %s",
                [store, register],
            )
            == n_batches * size
        )
    assert_no_server_errors(hq)


def test_a_push_queues_behind_another_writer_of_a_stock_level_and_loses_nothing(
    live_hq: LiveHQ,
) -> None:
    """Another transaction holds SKU-A's level at S01 (as a concurrent batch would, from its
    upsert until its commit): the push waits on that row, then adds its own change to the
    other writer's, and neither is lost."""
    hq = live_hq
    location, product = hq.seed.location("S01"), hq.seed.products["SKU-A"]
    hq.db.execute(
        "INSERT INTO inventory_stocklevel (location_id, product_id, qty, updated_at) "
        "VALUES (%s, %s, 100, now()) ON CONFLICT (location_id, product_id) "
        "DO UPDATE SET qty = 100",
        [location, product],
    )
    till = Till(register="R1", store_code="S01")
    body = batch([till.sale([("SKU-A", "3", PRICE)]), till.sale([("SKU-A", "2", PRICE)])])

    other = psycopg.connect(f"{PG}/{hq.database}", application_name=TEST_APP)
    try:
        other.execute(
            "UPDATE inventory_stocklevel SET qty = qty + 10 "
            "WHERE location_id = %s AND product_id = %s",
            [location, product],
        )
        replies: list[Reply] = []
        pusher = threading.Thread(target=lambda: replies.append(hq.push(body, "S01-A")))
        pusher.start()
        deadline = time.monotonic() + 30
        while not any(
            "inventory_stocklevel" in query
            for _pid, state, query in hq.server_backends()
            if state == "active"
        ) or not hq.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND wait_event_type = 'Lock' AND query LIKE '%%inventory_stocklevel%%'",
            [hq.database],
        ):
            assert time.monotonic() < deadline, f"the push never waited\n{hq.log_tail()}"
            assert pusher.is_alive(), replies
            time.sleep(0.01)
        other.commit()
    finally:
        other.close()
    pusher.join(30)

    assert [r.status for r in replies] == [200], replies
    assert set(replies[0].statuses()) == {"accepted"}
    level = hq.scalar(
        "SELECT qty FROM inventory_stocklevel WHERE location_id = %s AND product_id = %s",
        [location, product],
    )
    assert level == Decimal(100 + 10 - 3 - 2)
    assert_no_server_errors(hq)
