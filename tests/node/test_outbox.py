from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from stores.local import LocalStoreConfig, NodeState, OutboxBatch, OutboxEvent
from stores.outbox import (
    AnswerMismatch,
    NodeNotInitialised,
    OutboxError,
    batch_event_ids,
    oldest_unsent_age,
    outbox_append,
    outbox_attention,
    outbox_batch_answered,
    outbox_batch_take,
    outbox_depth,
    outbox_prune,
    receipt_number,
)
from tests.node import processes
from tests.node.helpers import DAY, append_sale, append_sales, sale_data

Status = OutboxEvent.Status


def _answer(batch: OutboxBatch, *statuses: str) -> list[dict[str, str]]:
    ids = batch_event_ids(batch)
    assert len(ids) == len(statuses)
    return [
        {"event_id": event_id, "status": status}
        | (
            {"code": f"{status}_code", "message": f"{status} because"}
            if status != "accepted"
            else {}
        )
        for event_id, status in zip(ids, statuses, strict=True)
    ]


# --- seq and receipt numbers ------------------------------------------------------------------


def test_events_are_numbered_one_two_three_with_receipt_numbers(node: NodeState) -> None:
    # when
    events = [append_sale() for _ in range(3)]

    # then
    assert [e.seq for e in events] == [1, 2, 3]
    assert [e.receipt_no for e in events] == ["S01-R1-000001", "S01-R1-000002", "S01-R1-000003"]
    sent = json.loads(events[1].payload)
    assert sent["seq"] == 2
    assert sent["register"] == "R1"
    assert sent["type"] == "sale"
    assert sent["event_id"] == str(events[1].event_id)
    assert sent["business_date"] == DAY.isoformat()
    assert sent["data"]["receipt_no"] == "S01-R1-000002"
    assert sent["data"]["totals"] == sale_data()["totals"]
    node.refresh_from_db()
    assert node.next_seq == 4


def test_receipt_numbers_pad_to_six_digits_and_then_grow() -> None:
    assert receipt_number("BER1", "R2", 42) == "BER1-R2-000042"
    assert receipt_number("BER1", "R2", 1_234_567) == "BER1-R2-1234567"


def test_a_rolled_back_sale_gives_its_seq_back(node: NodeState) -> None:
    # given
    append_sale()

    # when: the till's transaction fails after taking a seq
    def failing_sale() -> None:
        with transaction.atomic():
            outbox_append(
                type="sale", payload=sale_data(), occurred_at=timezone.now(), business_date=DAY
            )
            raise RuntimeError("printer exploded before commit")

    with pytest.raises(RuntimeError):
        failing_sale()
    after = append_sale()

    # then: no gap
    assert after.seq == 2
    assert list(OutboxEvent.objects.values_list("seq", flat=True)) == [1, 2]


def test_non_receipt_events_have_no_receipt_number(node: NodeState) -> None:
    with transaction.atomic():
        event = outbox_append(
            type="session_open",
            payload={"session_id": "s1", "cashier": "C7", "opening_float": Decimal("100.00")},
            occurred_at=timezone.now(),
            business_date=DAY,
        )
    assert event.receipt_no == ""
    assert json.loads(event.payload)["data"] == {
        "session_id": "s1",
        "cashier": "C7",
        "opening_float": "100.00",
    }


def test_occurred_at_is_written_in_the_store_time_zone_with_its_offset(node: NodeState) -> None:
    LocalStoreConfig.objects.create(code="S01", data={"timezone": "Europe/Berlin"}, version=1)
    instant = dt.datetime(2026, 11, 23, 9, 14, 58, 123456, tzinfo=dt.UTC)

    with transaction.atomic():
        event = outbox_append(
            type="sale", payload=sale_data(), occurred_at=instant, business_date=DAY
        )

    assert json.loads(event.payload)["occurred_at"] == "2026-11-23T10:14:58.123+01:00"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "gift"}, "Unknown event type"),
        ({"occurred_at": dt.datetime(2026, 11, 23, 10)}, "aware"),  # noqa: DTZ001 - on purpose
        (
            {"payload": {**sale_data(), "lines": [{"qty": 1.5}]}},
            r"data\.lines\[0\]\.qty is a float",
        ),
        ({"payload": {**sale_data(), "receipt_no": "X-1"}}, "the outbox's to give"),
        ({"business_date": dt.datetime(2026, 11, 23, tzinfo=dt.UTC)}, "business_date"),
    ],
)
def test_bad_events_are_refused_and_take_no_seq(
    node: NodeState, kwargs: dict[str, object], message: str
) -> None:
    arguments = {
        "type": "sale",
        "payload": sale_data(),
        "occurred_at": timezone.now(),
        "business_date": DAY,
        **kwargs,
    }
    with pytest.raises(OutboxError, match=message), transaction.atomic():
        outbox_append(**arguments)  # type: ignore[arg-type]
    assert append_sale().seq == 1


def test_append_outside_a_transaction_is_refused(node: NodeState) -> None:
    # pytest-django wraps the test in a transaction; step outside it as a caller would be.
    assert connection.in_atomic_block
    atomic = connection.in_atomic_block
    connection.in_atomic_block = False
    try:
        with pytest.raises(OutboxError, match="inside the till operation's transaction"):
            outbox_append(
                type="sale", payload=sale_data(), occurred_at=timezone.now(), business_date=DAY
            )
    finally:
        connection.in_atomic_block = atomic


@pytest.mark.django_db
def test_append_before_node_init_is_refused() -> None:
    with pytest.raises(NodeNotInitialised, match="node_init"):
        append_sale()


# --- concurrency ------------------------------------------------------------------------------


def test_processes_appending_at_once_on_sqlite_get_distinct_consecutive_seqs(
    tmp_path: object,
) -> None:
    """Four node processes append 25 sales each at the same instant to one SQLite file."""
    # given: a node database set up as S01/R1
    data_dir = processes.new_node_dir(tmp_path)  # type: ignore[arg-type]
    done = processes.manage(
        data_dir,
        "shell",
        "-c",
        "from stores.local import NodeState; NodeState.objects.create(hq_url='http://x', "
        "store_code='S01', register_code='R1', node_key='k')",
    )
    assert done.returncode == 0, done.stderr

    # when
    start_at = time.time() + 3
    script = (
        "import time; from tests.node.helpers import append_sales; "
        f"time.sleep(max(0, {start_at} - time.time())); append_sales(25)"
    )
    procs = [
        processes.subprocess.Popen(
            [str(processes.PYTHON), "manage.py", "shell", "-c", script],
            cwd=processes.ROOT,
            env=processes.node_env(data_dir),
            stdout=processes.subprocess.PIPE,
            stderr=processes.subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]

    # then
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    rows = processes.query(data_dir, "SELECT seq, event_id, receipt_no FROM stores_outboxevent")
    assert sorted(seq for seq, _, _ in rows) == list(range(1, 101))
    assert len({event_id for _, event_id, _ in rows}) == 100
    assert {receipt for seq, _, receipt in rows} == {f"S01-R1-{n:06d}" for n in range(1, 101)}
    reported = {i for out, _ in outputs for i in out.split("EVENT_IDS=")[1].strip().split(",")}
    assert {str(uuid.UUID(e)) for _, e, _ in rows} == reported
    assert processes.query(data_dir, "SELECT next_seq FROM stores_nodestate") == [(101,)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_threads_appending_at_once_get_distinct_consecutive_seqs() -> None:
    NodeState.objects.create(hq_url="http://x", store_code="S01", register_code="R1", node_key="k")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            append_sales(20)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert not errors
    assert list(OutboxEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 81)
    )


# --- depth, age, batches, answers, pruning -------------------------------------------------------


def test_depth_and_age_count_what_head_office_has_not_acknowledged(node: NodeState) -> None:
    assert outbox_depth() == 0
    assert oldest_unsent_age() is None
    first = append_sale()
    append_sale()
    OutboxEvent.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=5)
    )

    assert outbox_depth() == 2
    age = oldest_unsent_age()
    assert age is not None
    assert dt.timedelta(minutes=5) <= age < dt.timedelta(minutes=6)


def test_a_batch_takes_the_oldest_pending_events_and_is_resent_unchanged(node: NodeState) -> None:
    for _ in range(5):
        append_sale()

    batch = outbox_batch_take(limit=3)
    assert batch is not None
    assert (batch.first_seq, batch.last_seq, batch.event_count) == (1, 3, 3)
    assert [e["seq"] for e in json.loads(batch.events)] == [1, 2, 3]
    assert json.loads(batch.events)[0] == json.loads(OutboxEvent.objects.get(seq=1).payload)

    # a retry (after a lost answer, a crash) sends the same batch, not the next events
    again = outbox_batch_take(limit=3)
    assert again is not None
    assert (again.batch_id, again.events) == (batch.batch_id, batch.events)


def test_an_answer_records_each_status_and_high_water_then_prunes(node: NodeState) -> None:
    for _ in range(5):
        append_sale()
    batch = outbox_batch_take(limit=5)
    assert batch is not None

    summary = outbox_batch_answered(
        batch=batch,
        results=_answer(batch, "accepted", "duplicate", "held", "conflict", "rejected"),
        high_water=4,
    )

    assert summary.counts == {
        "accepted": 1,
        "duplicate": 1,
        "held": 1,
        "conflict": 1,
        "rejected": 1,
    }
    # accepted and duplicate at or below high water: gone; held and conflict: kept, shown
    rows = {e.seq: e for e in OutboxEvent.objects.all()}
    assert sorted(rows) == [3, 4, 5]
    assert rows[3].status == Status.HELD
    assert rows[3].acked_at is not None
    assert rows[3].code == "held_code"
    assert rows[4].status == Status.CONFLICT
    assert rows[4].acked_at is not None
    assert rows[5].status == Status.REJECTED
    assert rows[5].acked_at is None  # still counted, never resent
    assert not OutboxBatch.objects.exists()
    assert outbox_batch_take(limit=5) is None
    assert outbox_depth() == 1
    assert [a["kind"] for a in outbox_attention()] == ["held", "conflict", "rejected"]
    node.refresh_from_db()
    assert node.hq_high_water == 4
    assert node.last_push_at is not None


def test_nothing_is_pruned_above_high_water(node: NodeState) -> None:
    for _ in range(3):
        append_sale()
    batch = outbox_batch_take(limit=3)
    assert batch is not None
    outbox_batch_answered(
        batch=batch, results=_answer(batch, "accepted", "accepted", "accepted"), high_water=1
    )
    assert list(OutboxEvent.objects.values_list("seq", "status")) == [
        (2, "accepted"),
        (3, "accepted"),
    ]
    assert outbox_depth() == 0
    assert outbox_prune(high_water=3) == 2


def test_held_conflicting_and_rejected_events_go_once_head_office_reports_them_settled(
    node: NodeState,
) -> None:
    for _ in range(3):
        append_sale()
    batch = outbox_batch_take(limit=3)
    assert batch is not None
    outbox_batch_answered(
        batch=batch, results=_answer(batch, "held", "conflict", "rejected"), high_water=2
    )

    # head office still holds one, has an open conflict, and the rejected one open
    assert (
        outbox_prune(high_water=2, register_status={"held": 1, "conflicts": 1, "rejected": 1}) == 0
    )
    # the held one applied, the conflict resolved; the rejected one still holds high water back
    assert (
        outbox_prune(high_water=2, register_status={"held": 0, "conflicts": 0, "rejected": 1}) == 2
    )
    assert outbox_depth() == 1
    # staff voided the rejected one: high water passes it
    assert (
        outbox_prune(high_water=3, register_status={"held": 0, "conflicts": 0, "rejected": 0}) == 1
    )
    assert outbox_depth() == 0


def test_an_answer_that_does_not_match_the_batch_records_nothing(node: NodeState) -> None:
    for _ in range(2):
        append_sale()
    batch = outbox_batch_take(limit=2)
    assert batch is not None
    results = _answer(batch, "accepted", "accepted")

    with pytest.raises(AnswerMismatch):
        outbox_batch_answered(batch=batch, results=results[::-1], high_water=2)
    with pytest.raises(AnswerMismatch):
        outbox_batch_answered(batch=batch, results=results[:1], high_water=2)
    with pytest.raises(AnswerMismatch):
        outbox_batch_answered(
            batch=batch, results=[results[0], {**results[1], "status": "maybe"}], high_water=2
        )

    assert OutboxBatch.objects.filter(pk=batch.pk).exists()
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {"pending"}
