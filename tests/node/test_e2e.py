"""A real head office and a real store node talking HTTP.

Head office: gunicorn on a PostgreSQL database of its own (``tests/e2e/live_hq.py``). The node:
``manage.py node_init`` then ``manage.py run_node`` as subprocesses with ``ERP_ROLE=node`` and a
SQLite database of their own; its outbox is filled by ``tests.node.helpers.append_sales`` in
another process, as the till will. Whatever happens in between (head office down, the node
killed with SIGKILL mid-push, answers lost after head office committed), at the end head
office holds exactly the node's events: the same ids, each once, seqs 1…n.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.e2e.live_hq import PG, TEST_APP, LiveHQ, hq_env, live_hq
from tests.faults.proxy import Fault, FaultProxy
from tests.node import processes

__all__ = ["hq_env", "live_hq"]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

AGENT_ENV = {
    "SYNC_PULL_SECONDS": "2",
    "SYNC_PUSH_BATCH": "25",
    "SYNC_HTTP_TIMEOUT": "10",
    "SYNC_BACKOFF_MAX_SECONDS": "2",
    "SYNC_OFFLINE_RETRY_MAX_SECONDS": "1",
}


def wait_until(condition: Callable[[], object], *, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.05)


@dataclass
class Node:
    """One store node: its data directory, and its agent process when running."""

    data_dir: Path
    log_dir: Path
    hq_url: str
    key: str
    agent: processes.NodeAgent | None = None
    starts: int = 0

    def init(self, *, key: str | None = None, register: str = "R1", hq_url: str | None = None):
        return processes.manage(
            self.data_dir,
            "node_init",
            "--hq", hq_url or self.hq_url,
            "--store", "S01",
            "--register", register,
            "--key", key or self.key,
        )  # fmt: skip

    def append(self, n: int) -> list[str]:
        done = processes.manage(
            self.data_dir,
            "shell",
            "-c",
            f"from tests.node.helpers import append_sales; append_sales({n})",
        )
        assert done.returncode == 0, done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith("EVENT_IDS="))
        return line.removeprefix("EVENT_IDS=").split(",")

    def start(self, env: dict[str, str] | None = None) -> None:
        self.starts += 1
        self.agent = processes.NodeAgent(
            self.data_dir,
            self.log_dir / f"run_node.{self.starts}.log",
            env={**AGENT_ENV, **(env or {})},
        ).start()

    def kill(self) -> None:
        assert self.agent is not None
        self.agent.kill()
        self.agent = None

    def stop(self) -> int:
        assert self.agent is not None
        code = self.agent.stop()
        self.agent = None
        return code

    def close(self) -> None:
        if self.agent is not None:
            self.agent.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def depth(self) -> int:
        return processes.query(
            self.data_dir, "SELECT count(*) FROM stores_outboxevent WHERE acked_at IS NULL"
        )[0][0]

    def state(self) -> dict[str, object]:
        columns = ("online", "hq_high_water", "last_error", "last_sync_ok_at", "next_seq")
        row = processes.query(self.data_dir, f"SELECT {', '.join(columns)} FROM stores_nodestate")
        return dict(zip(columns, row[0], strict=True))


@pytest.fixture
def make_node(tmp_path: Path, live_hq: LiveHQ) -> Iterator[Callable[..., Node]]:
    made: list[Node] = []

    def make(hq_url: str | None = None, key: str = "S01-A") -> Node:
        name = f"node{len(made)}"
        log_dir = tmp_path / f"{name}-logs"
        log_dir.mkdir()
        node = Node(
            data_dir=processes.new_node_dir(tmp_path, name),
            log_dir=log_dir,
            hq_url=hq_url or f"http://127.0.0.1:{live_hq.port}",
            key=live_hq.seed.keys[key],
        )
        made.append(node)
        return node

    yield make
    for node in made:
        node.close()


def hq_events(hq: LiveHQ) -> list[tuple[str, int]]:
    return hq.rows(
        "SELECT e.event_id::text, e.seq FROM sync_event e JOIN stores_register r "
        "ON r.id = e.register_id WHERE r.code = 'R1' ORDER BY e.seq"
    )


def assert_hq_holds_exactly(hq: LiveHQ, ids: list[str]) -> None:
    events = hq_events(hq)
    assert [seq for _, seq in events] == list(range(1, len(ids) + 1))
    assert sorted(event_id for event_id, _ in events) == sorted(ids)
    assert hq.scalar("SELECT count(*) FROM stores_sale") == len(ids)
    assert hq.scalar("SELECT count(*) FROM sync_eventconflict") == 0
    assert hq.scalar("SELECT count(*) FROM sync_deadletter") == 0


def test_node_init_refuses_a_wrong_key_a_foreign_register_and_an_absent_head_office(
    live_hq: LiveHQ, make_node: Callable[..., Node]
) -> None:
    node = make_node()

    wrong_key = node.init(key="tbk_nothing_here")
    foreign = node.init(register="R9")
    absent = node.init(hq_url=f"http://127.0.0.1:{processes_free_port()}")

    assert wrong_key.returncode != 0
    assert wrong_key.stderr.strip() == "CommandError: head office refused the key"
    assert foreign.returncode != 0
    assert foreign.stderr.strip() == (
        "CommandError: register R9 is not a register of store S01 at head office"
    )
    assert absent.returncode != 0
    assert len(absent.stderr.strip().splitlines()) == 1
    assert "cannot be reached" in absent.stderr
    assert processes.query(node.data_dir, "SELECT count(*) FROM stores_nodestate") == [(0,)]


def processes_free_port() -> int:
    from tests.e2e.live_hq import free_port

    return free_port()


def test_every_event_reaches_head_office_exactly_once(
    live_hq: LiveHQ, make_node: Callable[..., Node]
) -> None:
    # given: a node set up against head office, with its master data
    node = make_node()
    done = node.init()
    assert done.returncode == 0, done.stderr
    assert "4 product" in done.stdout
    skus = processes.query(node.data_dir, "SELECT sku FROM stores_localproduct ORDER BY sku")
    assert [s for (s,) in skus] == ["SKU-A", "SKU-B", "SKU-C", "SKU-D"]
    assert processes.query(node.data_dir, "SELECT count(*) FROM stores_localprice") == [(4,)]

    # when: 60 sales wait in the outbox, then the agent runs; 10 more while it runs
    ids = node.append(60)
    node.start()
    wait_until(lambda: len(hq_events(live_hq)) == 60, what="the first 60 events at HQ")
    ids += node.append(10)
    wait_until(lambda: len(hq_events(live_hq)) == 70, what="all 70 events at HQ")
    wait_until(lambda: node.depth() == 0, what="the outbox to empty")

    # then
    assert_hq_holds_exactly(live_hq, ids)
    wait_until(lambda: node.state()["hq_high_water"] == 70, what="high water 70 on the node")
    assert node.state()["online"] == 1
    assert node.stop() == 0
    assert "Stopped." in node.logs()
    # acknowledged and passed by high water: pruned
    assert processes.query(node.data_dir, "SELECT count(*) FROM stores_outboxevent") == [(0,)]
    assert not live_hq.log_errors()


def test_sales_made_while_head_office_is_down_arrive_when_it_is_back(
    live_hq: LiveHQ, make_node: Callable[..., Node]
) -> None:
    node = make_node()
    assert node.init().returncode == 0
    node.start()
    ids = node.append(5)
    wait_until(lambda: len(hq_events(live_hq)) == 5, what="the first 5 events")
    wait_until(lambda: node.depth() == 0, what="their answer recorded on the node")

    # when: head office goes down, the till keeps selling
    live_hq.kill()
    ids += node.append(20)
    wait_until(lambda: node.state()["online"] == 0, what="the node to notice head office is down")
    assert node.depth() == 20
    assert "cannot be reached" in str(node.state()["last_error"])

    # then: back up, everything arrives, once
    live_hq.start()
    wait_until(lambda: len(hq_events(live_hq)) == 25, timeout=30, what="all 25 events")
    wait_until(lambda: node.depth() == 0 and node.state()["online"] == 1, what="node in sync")
    assert_hq_holds_exactly(live_hq, ids)
    assert node.state()["last_error"] == ""


def test_a_node_killed_mid_push_and_restarted_leaves_head_office_with_exactly_its_events(
    live_hq: LiveHQ, make_node: Callable[..., Node]
) -> None:
    # Through a slow link, so a push takes a while and the kills land inside pushes.
    with FaultProxy(upstream_port=live_hq.port) as proxy:
        node = make_node(hq_url=proxy.url)
        assert node.init().returncode == 0
        ids = node.append(300)
        proxy.set(Fault.slow(0.03))

        seen_at_kill = []
        for target in (20, 120, 220):
            node.start()
            wait_until(
                lambda t=target: len(hq_events(live_hq)) >= t, timeout=90, what=f"{target} at HQ"
            )
            node.kill()  # SIGKILL: no clean-up of any kind
            seen_at_kill.append(len(hq_events(live_hq)))
        assert seen_at_kill[-1] < 300, "the last kill came too late to interrupt anything"

        node.start()
        wait_until(lambda: len(hq_events(live_hq)) == 300, timeout=120, what="all 300 events")
        wait_until(lambda: node.depth() == 0, what="the outbox to empty")

    assert_hq_holds_exactly(live_hq, ids)
    assert node.state()["next_seq"] == 301
    # At least one kill caught a batch in flight (sent, maybe committed, answer not recorded):
    # the restarted node sent that batch again, same id, and head office counted it once.
    assert "resending batch" in node.logs()


def test_answers_lost_after_head_office_committed_are_replayed_not_reapplied(
    live_hq: LiveHQ, make_node: Callable[..., Node]
) -> None:
    with FaultProxy(upstream_port=live_hq.port) as proxy:
        node = make_node(hq_url=proxy.url)
        assert node.init().returncode == 0
        # The agent's first step (a pull) goes through; the next pull is an hour away, so what
        # follows are pushes only (gunicorn's sync workers open a connection per request, and
        # the proxy applies its fault to each new connection).
        node.start(env={"SYNC_PULL_SECONDS": "3600"})
        wait_until(lambda: node.state()["last_sync_ok_at"] is not None, what="the first step")

        # when: every answer is lost on the way back (head office commits, the node never hears)
        proxy.set(Fault.lose_response())
        ids = node.append(40)
        wait_until(lambda: len(hq_events(live_hq)) > 0, what="a batch committed at HQ")
        committed = len(hq_events(live_hq))
        batches_then = live_hq.scalar("SELECT count(*) FROM sync_batch")
        time.sleep(1.5)  # the node retries, and loses those answers too
        assert node.depth() == 40  # the node has heard nothing
        assert len(hq_events(live_hq)) == committed  # retries changed nothing at HQ
        assert live_hq.scalar("SELECT count(*) FROM sync_batch") == batches_then

        # then: the link heals; the retry gets the stored answer, the rest follows
        proxy.set(Fault.none())
        wait_until(lambda: node.depth() == 0, timeout=30, what="the outbox to empty")
        assert proxy.stats.dropped_responses > 0

    assert_hq_holds_exactly(live_hq, ids)
    assert live_hq.scalar("SELECT count(*) FROM sync_batch") == 40 // 25 + 1


def test_master_data_changes_at_head_office_reach_the_node_including_late_commits(
    live_hq: LiveHQ, make_node: Callable[..., Node]
) -> None:
    node = make_node()
    assert node.init().returncode == 0
    node.start(env={"SYNC_PULL_SECONDS": "1"})

    def local(sql: str) -> list[tuple[object, ...]]:
        return processes.query(node.data_dir, sql)

    # a price change, by plain SQL (the feed's triggers see every path)
    live_hq.db.execute(
        "UPDATE inventory_price SET price = 2.49 WHERE product_id = "
        "(SELECT id FROM inventory_product WHERE sku = 'SKU-A')"
    )

    def local_price(sku: str) -> list[Decimal]:
        rows = local(f"SELECT price FROM stores_localprice WHERE sku = '{sku}'")
        return [Decimal(str(price)) for (price,) in rows]

    wait_until(lambda: local_price("SKU-A") == [Decimal("2.49")], what="the new price")

    # a change committed by a transaction that stays open while the node pulls
    with psycopg.connect(f"{PG}/{live_hq.database}", application_name=TEST_APP) as late:
        late.execute("UPDATE inventory_product SET name = 'Late milk' WHERE sku = 'SKU-B'")
        time.sleep(2.5)  # the node pulls twice meanwhile, and must not skip past it
        late.commit()
    wait_until(
        lambda: (
            local("SELECT name FROM stores_localproduct WHERE sku = 'SKU-B'") == [("Late milk",)]
        ),
        what="the late-committed name on the node",
    )

    # a price deleted, a register deactivated
    live_hq.db.execute(
        "DELETE FROM inventory_price WHERE product_id = "
        "(SELECT id FROM inventory_product WHERE sku = 'SKU-D')"
    )
    live_hq.db.execute(
        "UPDATE stores_register SET active = false WHERE code = 'R2' AND store_id = %s",
        [live_hq.seed.stores["S01"]["id"]],
    )
    wait_until(
        lambda: (
            local("SELECT count(*) FROM stores_localprice WHERE sku = 'SKU-D'") == [(0,)]
            and local("SELECT active FROM stores_localregister WHERE code = 'R2'") == [(0,)]
        ),
        what="the delete and the deactivation on the node",
    )

    # then: the mirror is head office's current state for the store
    hq_products = live_hq.rows("SELECT sku, name FROM inventory_product ORDER BY sku")
    assert local("SELECT sku, name FROM stores_localproduct ORDER BY sku") == hq_products
    hq_prices = live_hq.rows(
        "SELECT p.sku, pr.price FROM inventory_price pr JOIN inventory_product p "
        "ON p.id = pr.product_id ORDER BY p.sku"
    )
    node_prices = local("SELECT sku, price FROM stores_localprice ORDER BY sku")
    assert [(sku, Decimal(str(price))) for sku, price in node_prices] == hq_prices
    assert node.state()["last_error"] == ""
