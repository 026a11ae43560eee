"""PostgreSQL: transactions that overlap the node's pulls, on real separate connections.

Writers here are either psycopg connections of their own (a transaction held open across the
node's pulls) or threads with their own Django connections; the node pulls over HTTP on the
test's connection. A pull serves what its snapshot shows committed, so a transaction still
open when a page is served must reach the node in a later poll, whatever its transaction id
or feed version (``sync-protocol.md``, "Pull": a plain auto-increment id as cursor breaks
this, and so does a horizon of transaction ids).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import psycopg
import pytest
from django.db import connection, connections, transaction

from inventory.models import Price, PriceList, Product, TaxRate
from inventory.services import price_update, product_update
from stores.models import Cashier
from stores.services import cashier_store_add
from sync.api.auth import NodeRateThrottle
from sync.models import FeedChange
from tests.sync.feed import scenery
from tests.sync.feed.nodes import Node, diff, hq_state
from tests.sync.feed.scenery import Shop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def other_connection() -> Iterator[psycopg.Connection]:
    """A second session on the test database, outside Django (its transactions are explicit)."""
    settings = connection.settings_dict
    conn = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def unthrottled(monkeypatch: pytest.MonkeyPatch) -> None:
    """These nodes poll hundreds of times a second; the per-key rate limit is not under test."""
    rates = {**NodeRateThrottle.THROTTLE_RATES, "node": "1000000/minute"}
    monkeypatch.setattr(NodeRateThrottle, "THROTTLE_RATES", rates)


@pytest.fixture
def abc(berlin: Shop, std_rate: TaxRate) -> dict[str, Product]:
    return {sku: scenery.product(sku) for sku in ("A", "B", "C")}


def rename(sku: str, name: str) -> None:
    product_update(product=Product.objects.get(sku=sku), actor=None, changes={"name": name})


def keys(changes: list[dict]) -> list[str]:
    return [c["key"] for c in changes]


# --- the long transaction ------------------------------------------------------------------------


def test_a_change_committed_late_by_a_long_transaction_reaches_the_next_poll(
    berlin: Shop, abc: dict[str, Product], other_connection: psycopg.Connection
) -> None:
    # given: a node in sync
    node = berlin.node()
    node.catch_up()

    # when: T1 changes A and stays open, while B and C are changed and committed
    other_connection.execute("UPDATE inventory_product SET name = 'A by T1' WHERE sku = 'A'")
    rename("B", "B committed")
    rename("C", "C committed")
    pages = [node.pull(limit=1) for _ in range(3)]

    # then: the node gets B and C, page by page, and not A
    assert [keys(p["changes"]) for p in pages[:2]] == [["B"], ["C"]]
    assert pages[2]["changes"] == []
    assert node.state[("product", "A")]["name"] == "Product A"
    assert node.catch_up() == []  # still open: polling brings nothing

    # when: T1 commits
    other_connection.commit()

    # then: the next poll from the latest cursor brings A
    later = node.catch_up(limit=1)
    assert keys(later) == ["A"]
    assert later[0]["data"]["name"] == "A by T1"
    assert node.state == hq_state(berlin.store), diff(node.state, hq_state(berlin.store))


def test_a_transaction_that_took_its_id_before_the_others_is_not_skipped(
    berlin: Shop, abc: dict[str, Product], other_connection: psycopg.Connection
) -> None:
    # given: a node in sync; T1 takes its transaction id before anyone else writes
    node = berlin.node()
    node.catch_up()
    t1 = other_connection.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]

    # when: B and C are committed (with later ids) and served to the node
    rename("B", "B committed")
    rename("C", "C committed")
    assert keys(node.catch_up(limit=1)) == ["B", "C"]
    served = FeedChange.objects.filter(entity_key__in=["B", "C"]).values_list("txid", flat=True)
    assert min(served) > t1  # a horizon of transaction ids would now stand past T1

    # when: T1 only now changes A, polls go by, then T1 commits
    other_connection.execute("UPDATE inventory_product SET name = 'A by T1' WHERE sku = 'A'")
    assert node.catch_up() == []
    other_connection.commit()

    # then: A reaches the node, with T1's id
    later = node.catch_up()
    assert keys(later) == ["A"]
    assert FeedChange.objects.get(entity_key="A").txid == t1
    assert node.state == hq_state(berlin.store), diff(node.state, hq_state(berlin.store))


def test_a_long_transaction_that_commits_while_a_fresh_node_pages_reaches_it(
    berlin: Shop, abc: dict[str, Product], other_connection: psycopg.Connection
) -> None:
    # given: T1 open with a change to A, and a fresh node paging its first pass
    other_connection.execute("UPDATE inventory_product SET name = 'A by T1' WHERE sku = 'A'")
    node = berlin.node()
    node.pull(limit=2)

    # when: T1 commits mid-pass, and the node goes on polling
    other_connection.commit()
    node.catch_up(limit=2)

    # then
    assert node.state[("product", "A")]["name"] == "A by T1"
    assert node.state == hq_state(berlin.store), diff(node.state, hq_state(berlin.store))


def test_a_long_transaction_rolled_back_leaves_the_node_as_hq(
    berlin: Shop, abc: dict[str, Product], other_connection: psycopg.Connection
) -> None:
    # given
    node = berlin.node()
    node.catch_up()

    # when: T1 changes A and deletes C's row in the feed's eyes, then rolls back
    other_connection.execute("UPDATE inventory_product SET name = 'never' WHERE sku = 'A'")
    other_connection.execute("DELETE FROM inventory_product WHERE sku = 'C'")
    rename("B", "B committed")
    node.catch_up()
    other_connection.rollback()

    # then
    assert node.catch_up() == []
    assert node.state == hq_state(berlin.store)
    assert node.state[("product", "A")]["name"] == "Product A"


def test_a_feed_row_is_invisible_to_other_sessions_until_its_write_commits(
    berlin: Shop, std_rate: TaxRate, other_connection: psycopg.Connection
) -> None:
    # when: a product is created in a transaction not yet committed
    with transaction.atomic():
        scenery.product("NEW")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            mine = cursor.fetchone()[0]
        seen = other_connection.execute(
            "SELECT count(*) FROM sync_feedchange WHERE entity_key = 'NEW'"
        ).fetchone()[0]
        other_connection.rollback()
        # then: its feed row exists for this transaction only, with its id
        assert FeedChange.objects.get(entity_key="NEW").txid == mine
        assert seen == 0

    # and after the commit, for everyone
    assert other_connection.execute(
        "SELECT op, txid FROM sync_feedchange WHERE entity_key = 'NEW'"
    ).fetchone() == ("upsert", mine)


# --- races between a store's configuration and what it points at ---------------------------------


class Background:
    """``action`` run in a thread with its own database connection: it may have to wait for a
    lock the test's other session holds, which the test cannot release while it waits."""

    def __init__(self, action: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(action,))
        self.thread.start()

    def _run(self, action: Callable[[], object]) -> None:
        try:
            action()
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            connections.close_all()

    def done(self, within: float) -> bool:
        self.thread.join(within)
        return not self.thread.is_alive()


def test_a_price_created_in_the_new_list_while_a_switch_commits_reaches_the_node(
    berlin: Shop, abc: dict[str, Product], other_connection: psycopg.Connection
) -> None:
    # given: a node in sync on DE; list AT prices A
    outlet = scenery.price_list("AT", "EUR")
    scenery.price(outlet, abc["A"], "0.99")
    node = berlin.node()
    node.catch_up()

    # when: the switch to AT is written but not committed ...
    other_connection.execute(
        "UPDATE stores_store SET price_list_id = %s, updated_at = now() WHERE id = %s",
        [outlet.pk, berlin.store.pk],
    )
    # ... another session gives AT a price for B (committing at once, or waiting for the
    # switch: either is allowed) ...
    writer = Background(lambda: scenery.price(outlet, abc["B"], "1.49"))
    writer.done(within=1)
    # ... the node polls, still on DE, and moves on since a product changed meanwhile ...
    rename("C", "C committed")
    assert keys(node.catch_up()) == ["C"]
    # ... and the switch commits
    other_connection.commit()
    assert writer.done(within=30)
    assert writer.error is None, writer.error
    node.catch_up()

    # then: the node holds AT's prices, B's included
    assert ("price", "B@2026-01-01") in node.state
    assert node.state == hq_state(berlin.store), diff(node.state, hq_state(berlin.store))


def test_a_cashier_edited_while_added_to_another_store_reaches_that_store(
    berlin: Shop, zurich: Shop, other_connection: psycopg.Connection
) -> None:
    # given: a cashier in Berlin; Zurich's node in sync
    person = scenery.cashier("C1", berlin.store)
    node = zurich.node()
    node.catch_up()

    # when: the cashier is renamed in T1 (open) while another session adds them to Zurich
    # (committing at once, or waiting for T1: either is allowed), and Zurich's node polls
    other_connection.execute(
        "UPDATE stores_cashier SET name = 'Renamed' WHERE id = %s", [person.pk]
    )
    adder = Background(
        lambda: cashier_store_add(
            cashier=Cashier.objects.get(pk=person.pk), store=zurich.store, actor=None
        )
    )
    adder.done(within=1)
    node.catch_up()
    other_connection.commit()
    assert adder.done(within=30)
    assert adder.error is None, adder.error
    node.catch_up()

    # then
    assert node.state[("cashier", "C1")]["name"] == "Renamed"
    assert node.state == hq_state(zurich.store), diff(node.state, hq_state(zurich.store))


# --- concurrent writers --------------------------------------------------------------------------


def _writer(
    plist: PriceList,
    prices: list[int],
    stop: threading.Event,
    errors: list,
    seed: int,
    lingering: bool,
) -> None:
    """Commit changes until told to stop: new priced products (a missed one is missed for
    good) and new amounts for old prices; a lingering writer only adds products, and commits
    each one late, after others have committed theirs."""
    rng = random.Random(seed)
    plist = PriceList.objects.select_related("currency").get(pk=plist.pk)
    try:
        for n in range(1_000_000):
            if stop.is_set():
                break
            with transaction.atomic():
                if lingering or rng.random() < 0.5:
                    item = scenery.product(f"W{seed}-{n:04d}")
                    scenery.price(plist, item, str(Decimal(rng.randint(1, 9_999)).scaleb(-2)))
                else:
                    price = Price.objects.select_related("price_list__currency").get(
                        pk=rng.choice(prices)
                    )
                    amount = Decimal(rng.randint(1, 99_999)).scaleb(-2)
                    price_update(price=price, actor=None, changes={"price": amount})
                if lingering:
                    time.sleep(rng.uniform(0.05, 0.3))  # commit late, after others
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.slow
@pytest.mark.usefixtures("unthrottled")
def test_a_node_paging_while_writers_commit_ends_with_hqs_state(
    berlin: Shop, std_rate: TaxRate
) -> None:
    # given: forty priced products and a node in sync
    plist: PriceList = berlin.price_list
    prices = [
        scenery.price(plist, scenery.product(f"P{n:02d}", barcodes=1), "1.00").pk for n in range(40)
    ]
    node = Node(berlin.key, name="paging node")
    node.catch_up(limit=50)

    # when: four writers (one slow to commit) write while the node pages with small limits
    stop, errors = threading.Event(), []
    writers = [
        threading.Thread(target=_writer, args=(plist, prices, stop, errors, seed, seed == 0))
        for seed in range(4)
    ]
    for writer in writers:
        writer.start()
    rng = random.Random(7)
    deadline = time.monotonic() + 4
    pages = 0
    while time.monotonic() < deadline and not errors:
        node.pull(limit=rng.choice((1, 2, 3, 5)))
        pages += 1
        time.sleep(0.005)  # the writers share this process (and its GIL)
    stop.set()
    for writer in writers:
        writer.join(timeout=30)

    # then: the writers wrote, the node paged throughout, and a final poll leaves it at HQ's state
    assert not errors, errors
    assert not any(writer.is_alive() for writer in writers)
    assert pages > 20
    written = Product.objects.filter(sku__startswith="W").count()
    assert Price.objects.filter(price_list=plist).exclude(price=Decimal("1.00")).count() > 10
    assert written > 20
    node.catch_up(limit=3)
    assert node.state == hq_state(berlin.store), diff(node.state, hq_state(berlin.store))
    updates = [c for c in node.received if c["entity"] == "price"]
    assert len(updates) > len(prices)  # it saw changes while they happened, not only at the end
