from __future__ import annotations

import datetime as dt
import json
import threading

import httpx
import pytest
from django.utils import timezone

from stores.local import LocalProduct, NodeState, OutboxBatch, OutboxEvent
from stores.outbox import outbox_depth
from sync.node.agent import Backoff, HQClient, SyncAgent, parse_retry_after
from tests.node.fake_hq import FakeHQ, error, network_down
from tests.node.helpers import append_sale
from tests.node.test_feed import everything, product


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def hq() -> FakeHQ:
    return FakeHQ()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_agent(hq: FakeHQ, clock: Clock, **kwargs: object) -> SyncAgent:
    client = HQClient(base_url="http://hq.test", key="tbk_x_y", transport=hq.transport())
    options: dict[str, object] = {"pull_seconds": 30, "batch_size": 200, "rng": lambda: 0.5}
    options.update(kwargs)
    return SyncAgent(client=client, clock=clock, **options)  # type: ignore[arg-type]


def state() -> NodeState:
    return NodeState.objects.get(pk=1)


# --- backoff ----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_full_jitter_up_to_the_cap() -> None:
    clock = Clock()
    draws = iter([0.999999] * 20)
    backoff = Backoff(base=0.5, cap=60, offline_cap=5, clock=clock, rng=lambda: next(draws))

    delays = [backoff.failure() for _ in range(10)]

    ceilings = [0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert delays == pytest.approx([c * 0.999999 for c in ceilings])
    assert not backoff.ready()
    clock.advance(60)
    assert backoff.ready()
    backoff.success()
    assert backoff.failure() == pytest.approx(0.5 * 0.999999)


def test_full_jitter_draws_anywhere_from_zero_to_the_ceiling() -> None:
    draws = iter([0.0, 0.25, 0.5])
    backoff = Backoff(base=1, cap=60, offline_cap=60, clock=Clock(), rng=lambda: next(draws))
    assert [backoff.failure() for _ in range(3)] == [0.0, 0.5, 2.0]  # ceilings 1, 2, 4


def test_while_offline_the_wait_is_capped_lower() -> None:
    backoff = Backoff(base=0.5, cap=60, offline_cap=5, clock=Clock(), rng=lambda: 0.999)
    delays = [backoff.failure(offline=True) for _ in range(12)]
    assert max(delays) == pytest.approx(5 * 0.999)


def test_retry_after_is_waited_at_least_and_capped() -> None:
    backoff = Backoff(base=0.5, cap=60, offline_cap=5, clock=Clock(), rng=lambda: 0.0)
    assert backoff.failure(retry_after=7) == 7
    assert backoff.failure(retry_after=3600) == 60


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Mon, 23 Nov 2026 09:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# --- pull -------------------------------------------------------------------------------------


def test_a_step_pulls_every_page_then_status_then_pushes(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    # given: two pages of master data and two sales waiting
    hq.pages = [everything()[:3], everything()[3:]]
    append_sale()
    append_sale()

    # when
    report = make_agent(hq, clock).run_once()

    # then: pull before push
    assert report.error == ""
    assert hq.requests == [
        ("GET", "/api/v1/sync/pull"),
        ("GET", "/api/v1/sync/pull"),
        ("GET", "/api/v1/sync/status"),
        ("POST", "/api/v1/sync/push"),
    ]
    assert (report.pulled, report.pull_pages, report.pushed) == (6, 2, 2)
    assert LocalProduct.objects.count() == 1
    current = state()
    assert current.cursor == "2"
    assert current.online
    assert current.last_pull_at is not None
    assert current.last_sync_ok_at is not None
    assert current.hq_high_water == 2
    assert outbox_depth() == 0


def test_pulls_happen_at_least_every_pull_interval_and_use_the_etag(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    hq.pages = [[product("SKU-A", 1)]]
    agent = make_agent(hq, clock)
    agent.run_once()
    pulls = hq.requests.count(("GET", "/api/v1/sync/pull"))

    clock.advance(10)
    agent.run_once()
    assert hq.requests.count(("GET", "/api/v1/sync/pull")) == pulls  # not due yet

    clock.advance(25)
    agent.run_once()
    clock.advance(31)
    agent.run_once()
    assert hq.requests.count(("GET", "/api/v1/sync/pull")) == pulls + 2
    assert hq.etag_seen[-1] == '"idle-1"'  # the second idle poll was a 304


def test_a_refused_cursor_starts_the_pull_afresh(node: NodeState, hq: FakeHQ, clock: Clock) -> None:
    NodeState.objects.filter(pk=1).update(cursor="stale")
    hq.pages = [[product("SKU-A", 1)]]
    hq.failures = [error(400, "invalid_cursor")]

    report = make_agent(hq, clock).run_once()

    assert report.error == ""
    assert LocalProduct.objects.filter(sku="SKU-A").exists()
    assert state().cursor == "1"


def test_unreadable_master_data_does_not_hold_sales_back(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    hq.pages = [[{**product("SKU-A", 1), "data": {"sku": "SKU-A"}}]]
    append_sale()

    report = make_agent(hq, clock).run_once()

    assert "pull" in report.error
    assert "lacks name" in report.error
    assert report.pushed == 1
    assert outbox_depth() == 0
    assert "lacks name" in state().last_error
    assert state().cursor == ""  # the page was not applied


# --- push -------------------------------------------------------------------------------------


def test_batches_go_oldest_first_and_never_reorder_the_register(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    for _ in range(5):
        append_sale()

    report = make_agent(hq, clock, batch_size=2).run_once()

    assert [[e["seq"] for e in p["events"]] for p in hq.pushes] == [[1, 2], [3, 4], [5]]
    assert report.batches == 3
    assert len(hq.events) == 5
    assert all(p["node_time"] for p in hq.pushes)


def test_each_result_status_is_recorded_as_the_protocol_says(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    events = [append_sale() for _ in range(4)]
    hq.statuses = {
        str(events[1].event_id): "held",
        str(events[2].event_id): "conflict",
        str(events[3].event_id): "rejected",
    }

    report = make_agent(hq, clock).run_once()

    assert dict(report.statuses) == {"accepted": 1, "held": 1, "conflict": 1, "rejected": 1}
    rows = dict(OutboxEvent.objects.values_list("seq", "status"))
    assert rows == {2: "held", 3: "conflict", 4: "rejected"}  # accepted 1: pruned
    assert outbox_depth() == 1  # the rejected one, never resent
    agent = make_agent(hq, clock)
    clock.advance(60)
    agent.run_once()
    assert sum(len(p["events"]) for p in hq.pushes) == 4


def test_a_lost_answer_is_retried_with_the_same_batch_and_counted_once(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    for _ in range(3):
        append_sale()
    hq.commit_then_fail = 1
    agent = make_agent(hq, clock)

    failed = agent.run_once()
    assert "cannot be reached" in failed.error
    assert failed.delay > 0
    assert not state().online
    in_flight = OutboxBatch.objects.get()
    assert outbox_depth() == 3

    # still backing off: nothing sent
    assert agent.run_once().pushed == 0
    clock.advance(failed.delay)
    retried = agent.run_once()

    assert retried.error == ""
    assert [p["batch_id"] for p in hq.pushes] == [str(in_flight.batch_id)] * 2
    assert hq.pushes[0]["events"] == hq.pushes[1]["events"]
    assert len(hq.events) == 3
    assert outbox_depth() == 0
    assert state().online


@pytest.mark.parametrize(
    ("failure", "online"),
    [
        (error(503, "unavailable"), False),
        (error(500, "server_error"), False),
        (network_down, False),
        (error(429, "throttled", retry_after="7"), True),
        (error(409, "batch_in_progress", retry_after="2"), True),
    ],
    ids=["503", "500", "network", "429", "409"],
)
def test_retryable_failures_back_off_and_keep_the_batch(
    node: NodeState, hq: FakeHQ, clock: Clock, failure: object, online: bool
) -> None:
    append_sale()
    agent = make_agent(hq, clock)
    agent.run_once()  # pulled; nothing pending any more
    append_sale()
    hq.failures = [failure]  # type: ignore[list-item]

    report = agent.run_once()

    assert report.error
    assert state().online is online
    assert state().last_error == report.error
    assert outbox_depth() == 1
    retry_after = {"throttled": 7.0, "batch_in_progress": 2.0}
    for code, seconds in retry_after.items():
        if code in report.error:
            assert report.delay >= seconds
    clock.advance(report.delay)
    assert agent.run_once().error == ""
    assert outbox_depth() == 0
    assert state().last_error == ""


def test_a_refused_key_is_flagged_and_nothing_is_lost(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    append_sale()
    hq.failures = [error(401, "unauthenticated")] * 3

    report = make_agent(hq, clock).run_once()

    assert "401" in report.error
    assert state().online  # head office answered: the link works, the key does not
    assert outbox_depth() == 1


def test_a_batch_too_large_is_cut_in_half(node: NodeState, hq: FakeHQ, clock: Clock) -> None:
    for _ in range(4):
        append_sale()
    agent = make_agent(hq, clock, batch_size=4)
    agent.next_pull = clock() + 1000
    hq.failures = [error(413, "batch_too_large")]

    report = agent.run_once()

    assert report.error == ""
    assert hq.requests.count(("POST", "/api/v1/sync/push")) == 3  # 4 refused, then 2 and 2
    assert [len(p["events"]) for p in hq.pushes] == [2, 2]
    assert len(hq.events) == 4


def test_held_events_stay_visible_until_head_office_reports_them_applied(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    event = append_sale()
    hq.statuses = {str(event.event_id): "held"}
    hq.status_extra = {"held": 1}
    agent = make_agent(hq, clock)
    agent.run_once()
    assert list(OutboxEvent.objects.values_list("status", flat=True)) == ["held"]
    assert outbox_depth() == 0

    hq.status_extra = {"held": 0}
    clock.advance(31)
    agent.run_once()
    assert not OutboxEvent.objects.exists()
    assert state().hq_status["held"] == 0


def test_node_time_is_read_afresh_for_each_attempt(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    append_sale()
    times = iter(
        [timezone.now() + dt.timedelta(seconds=n) for n in range(0, 1000, 100)]
    )  # each now() call moves on
    agent = make_agent(hq, clock, now=lambda: next(times))
    agent.next_pull = clock() + 1000
    hq.commit_then_fail = 1
    agent.run_once()
    clock.advance(60)
    agent.run_once()

    first, second = (json.loads(json.dumps(p))["node_time"] for p in hq.pushes)
    assert first != second


def test_run_forever_stops_when_told(node: NodeState, hq: FakeHQ, clock: Clock) -> None:
    agent = make_agent(hq, clock)
    stop = threading.Event()
    worker = threading.Thread(target=agent.run_forever, args=(stop,))
    worker.start()
    stop.set()
    worker.join(5)
    assert not worker.is_alive()


def test_a_feed_that_says_more_but_does_not_advance_is_reported_not_followed_forever(
    node: NodeState, hq: FakeHQ, clock: Clock
) -> None:
    NodeState.objects.filter(pk=1).update(cursor="x")
    stuck = httpx.Response(200, json={"changes": [], "cursor": "x", "has_more": True})
    hq.failures = [lambda request: stuck]
    append_sale()

    report = make_agent(hq, clock).run_once()

    assert "does not advance" in report.error
    assert report.pushed == 1
