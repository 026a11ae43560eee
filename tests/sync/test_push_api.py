"""Sync protocol v1 push, through HTTP: every per-event status, every whole-batch error,
replays, high water, status, reconciliation exceptions raised at ingestion, every event type
stored in full, held events released, dead letters corrected or voided.

``sync-protocol.md`` is the authority for every expectation here.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from erp.errors import PayloadTooLarge, ValidationFailed
from inventory.models import Price, StockCount, StockLevel, StockMove, TaxRate
from inventory.services import product_create, products_bulk_upsert
from stores.models import CashMovement, DeviceReport, Sale, Store, TillSession
from stores.services import node_key_issue, node_key_revoke
from sync.api.auth import NodeRateThrottle
from sync.dead_letters import dead_letter_reapply, dead_letter_void
from sync.held import held_events_release, held_events_sweep
from sync.models import (
    Batch,
    DeadLetter,
    Event,
    EventConflict,
    NodeSyncState,
    ReconciliationException,
    RegisterSyncState,
)
from sync.push.service import batch_push
from sync.tasks import held_events_release_for_skus
from tests.factories import ProductFactory
from tests.sync.builders import Till, batch
from tests.sync.conftest import SKU_A, SKU_B, SKU_KG

pytestmark = pytest.mark.django_db

Type = ReconciliationException.Type
EXC = ReconciliationException.objects


# --- helpers -------------------------------------------------------------------------------------


def ok(response) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    """The protocol's error body, exactly: {"error": {"code", "message", "details"}}."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"].strip()
    return body["error"]


def statuses(body: dict[str, Any]) -> list[str]:
    return [r["status"] for r in body["results"]]


def canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def of_type(type_: str, **filters: Any):
    return EXC.filter(type=type_, **filters)


def raw_batch(events: list[bytes], batch_id: str | None = None) -> bytes:
    """A body whose events are exactly the given bytes (for dead-letter raw checks)."""
    head = b'{"batch_id":"' + (batch_id or str(uuid.uuid4())).encode() + b'","events":['
    return head + b",".join(events) + b"]}"


def simple_sale(till: Till, sku: str = SKU_A, qty: str = "2", price: str = "1.99") -> dict:
    return till.sale([(sku, qty, price)])


# --- every per-event status ----------------------------------------------------------------------


def test_accepted_sale_is_applied(push, r1: Till, counts, registers, location) -> None:
    sale = simple_sale(r1)

    body = ok(push(batch([sale])))

    assert body["results"] == [{"event_id": sale["event_id"], "status": "accepted"}]
    assert body["high_water"] == {"R1": 1}
    assert body["server_time"].endswith("Z")
    event = Event.objects.get(event_id=sale["event_id"])
    assert (event.status, event.register_id, event.seq, event.type) == (
        "applied",
        registers["R1"].pk,
        1,
        "sale",
    )
    assert event.applied_at is not None
    assert Sale.objects.filter(event_id=sale["event_id"]).exists()
    move = StockMove.objects.get(source_event=sale["event_id"])
    assert (move.kind, move.qty_delta, move.line_no, move.location_id) == (
        "sale",
        Decimal("-2"),
        1,
        location.pk,
    )


def test_duplicate_is_not_applied_twice(push, r1: Till, counts) -> None:
    sale = simple_sale(r1)
    ok(push(batch([sale])))
    before = counts()

    body = ok(push(batch([sale])))  # a new batch_id: a retry after a lost answer

    assert body["results"] == [{"event_id": sale["event_id"], "status": "duplicate"}]
    assert body["high_water"] == {"R1": 1}
    after = counts()
    assert after["sync_batch"] == before["sync_batch"] + 1
    assert {k: v for k, v in after.items() if k != "sync_batch"} == {
        k: v for k, v in before.items() if k != "sync_batch"
    }


def test_same_content_is_canonical_json_whitespace_and_key_order_do_not_matter(
    push, r1: Till
) -> None:
    sale = simple_sale(r1)
    ok(push(batch([sale])))
    pretty = json.dumps(dict(reversed(list(sale.items()))), indent=4, ensure_ascii=True)
    batch_id = str(uuid.uuid4()).encode()
    body = b'{"events": [' + pretty.encode() + b'], "batch_id": "' + batch_id + b'"}'

    assert statuses(ok(push(body))) == ["duplicate"]
    assert EventConflict.objects.count() == 0


def test_held_unknown_sku(push, r1: Till, counts) -> None:
    sale = r1.sale([(SKU_A, "1", "1.99"), ("NOT-YET", "1", "5.00")])

    body = ok(push(batch([sale])))

    (result,) = body["results"]
    assert result["status"] == "held"
    assert result["code"] == "unknown_sku"
    assert "NOT-YET" in result["message"]
    assert body["high_water"] == {"R1": 1}  # held counts as received
    event = Event.objects.get(event_id=sale["event_id"])
    assert (event.status, event.hold_reason, event.waiting_for) == (
        "held",
        "unknown_sku",
        "NOT-YET",
    )
    assert not Sale.objects.exists()
    assert not StockMove.objects.exists()


def test_held_original_not_received(push, r1: Till) -> None:
    missing = str(uuid.uuid4())
    ret = r1.return_of({"event_id": missing}, [(SKU_A, "1", "1.99")])

    body = ok(push(batch([ret])))

    (result,) = body["results"]
    assert (result["status"], result["code"]) == ("held", "original_not_received")
    assert missing in result["message"]
    event = Event.objects.get(event_id=ret["event_id"])
    assert (event.status, event.hold_reason, event.waiting_for) == (
        "held",
        "original_not_received",
        missing,
    )
    assert not Sale.objects.exists()


def test_conflict_event_id_reused(push, r1: Till, counts) -> None:
    sale = simple_sale(r1)
    ok(push(batch([sale])))
    changed = copy.deepcopy(sale)
    changed["data"]["cashier"] = "C8"
    before = counts()

    body = ok(push(batch([changed])))

    (result,) = body["results"]
    assert (result["status"], result["code"]) == ("conflict", "event_id_reused")
    assert result["message"]
    conflict = EventConflict.objects.get()
    assert conflict.reason == "event_id_reused"
    assert str(conflict.existing_event_id) == sale["event_id"]
    assert conflict.payload == canonical(changed)
    assert conflict.content_hash == hashlib.sha256(canonical(changed).encode()).hexdigest()
    assert Sale.objects.get().cashier == "C7"  # not applied
    after = counts()
    for table in ("sync_event", "stores_sale", "inventory_stockmove"):
        assert after[table] == before[table]
    exc = of_type(Type.EVENT_CONFLICT).get()
    assert exc.status == "open"
    # resent, it is the same conflict again, stored once
    assert statuses(ok(push(batch([changed])))) == ["conflict"]
    assert EventConflict.objects.count() == 1


def test_conflict_seq_taken(push, r1: Till) -> None:
    first = simple_sale(r1)
    ok(push(batch([first])))
    other_device = copy.deepcopy(first)
    other_device["event_id"] = str(uuid.uuid4())
    other_device["data"]["receipt_no"] = "S01-R1-OTHER"

    body = ok(push(batch([other_device])))

    (result,) = body["results"]
    assert (result["status"], result["code"]) == ("conflict", "seq_taken")
    conflict = EventConflict.objects.get()
    assert (conflict.reason, conflict.seq) == ("seq_taken", 1)
    assert str(conflict.existing_event_id) == first["event_id"]
    assert not Event.objects.filter(event_id=other_device["event_id"]).exists()
    assert Sale.objects.count() == 1


def test_seq_taken_within_one_batch(push, r1: Till) -> None:
    first = simple_sale(r1)
    twin = copy.deepcopy(first)
    twin["event_id"] = str(uuid.uuid4())

    body = ok(push(batch([first, twin])))

    assert [(r["status"], r.get("code")) for r in body["results"]] == [
        ("accepted", None),
        ("conflict", "seq_taken"),
    ]


def _pop(*path: str | int) -> Callable[[dict], None]:
    def mutate(event: dict) -> None:
        target: Any = event
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


def _set(value: Any, *path: str | int) -> Callable[[dict], None]:
    def mutate(event: dict) -> None:
        target: Any = event
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


INVALID_EVENTS: dict[str, tuple[Callable[[dict], None], str]] = {
    # name: (mutation, what the message must say: the field, and its place in the event)
    "missing envelope field": (_pop("business_date"), "business_date"),
    "missing data field": (_pop("data", "receipt_no"), "receipt_no - at $.data"),
    "missing line field": (_pop("data", "lines", 0, "sku"), "sku - at $.data.lines[0]"),
    "bad type: seq a string": (_set("1", "seq"), "$.seq"),
    "bad type: lines an object": (_set({"sku": SKU_A}, "data", "lines"), "$.data.lines"),
    "bad type: event_id not a UUID": (_set("not-a-uuid", "event_id"), "$.event_id"),
    "bad type: seq zero": (_set(0, "seq"), "$.seq"),
    "JSON number for qty": (_set(2, "data", "lines", 0, "qty"), "$.data.lines[0].qty"),
    "JSON number for an amount": (
        _set(3.98, "data", "tenders", 0, "amount"),
        "$.data.tenders[0].amount",
    ),
    "bad decimal: comma": (
        _set("1,99", "data", "lines", 0, "unit_price"),
        "$.data.lines[0].unit_price",
    ),
    "bad decimal: words": (_set("two", "data", "lines", 0, "qty"), "$.data.lines[0].qty"),
    "bad decimal: exponent": (_set("1e2", "data", "totals", "gross"), "$.data.totals.gross"),
    "bad decimal: too many places": (
        _set("1.99999", "data", "lines", 0, "unit_price"),
        "$.data.lines[0].unit_price",
    ),
    "bad decimal: a final newline": (_set("2\n", "data", "lines", 0, "qty"), "$.data.lines[0].qty"),
    "currency with a final newline": (_set("EUR\n", "data", "currency"), "$.data.currency"),
    "naive occurred_at": (_set("2026-11-23T10:00:00", "occurred_at"), "$.occurred_at"),
    "unknown type": (_set("refund", "type"), "$.type"),
}


@pytest.mark.parametrize("case", list(INVALID_EVENTS))
def test_rejected_invalid_event(case: str, push, r1: Till, counts) -> None:
    mutate, word = INVALID_EVENTS[case]
    event = simple_sale(r1)
    mutate(event)
    before = counts()

    body = ok(push(batch([event])))

    (result,) = body["results"]
    assert result["status"] == "rejected"
    assert result["code"] == "invalid_event"
    assert word in result["message"], result["message"]
    assert result["event_id"] == event["event_id"]
    after = counts()
    for table in ("sync_event", "stores_sale", "inventory_stockmove", "stores_saleline"):
        assert after[table] == before[table], table
    assert after["sync_deadletter"] == before["sync_deadletter"] + 1
    dead = DeadLetter.objects.get()
    assert (dead.code, dead.status) == ("invalid_event", "open")
    assert json.loads(bytes(dead.raw)) == event
    assert of_type(Type.REJECTED_EVENT).get().status == "open"
    assert body["high_water"] == {}  # nothing received for R1


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[1, 2]", id="an array"),
        pytest.param(b'"sale"', id="a string"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"event_id": "x", "seq": 1e400}', id="number out of range"),
        pytest.param(b'{"seq": 123456789012345678901234567890, "register": "R1"}', id="huge int"),
        pytest.param(b'{"seq": 1, "data": {"lines": [-1e999]}}', id="nested number out of range"),
    ],
)
def test_an_event_that_is_not_an_event_is_rejected_not_a_500(raw: bytes, push, counts) -> None:
    body = ok(push(raw_batch([raw])))

    assert statuses(body) == ["rejected"]
    assert body["results"][0]["code"] == "invalid_event"
    assert bytes(DeadLetter.objects.get().raw) == raw
    assert counts()["sync_event"] == 0


# --- whole-batch errors: each applies nothing ---------------------------------------------------


@pytest.fixture
def unchanged(counts) -> Callable[[], None]:
    """Call at the end of a test: the tables a push writes are as they were at its start."""
    start = counts()

    def check() -> None:
        assert counts() == start

    return check


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param("", id="no header"),
        pytest.param("Bearer tbk_deadbeef_" + "x" * 43, id="wrong key"),
        pytest.param("Bearer", id="bearer without key"),
        pytest.param("Bearer a b", id="too many parts"),
        pytest.param("Bearer tbk_\xff\xfe_zz", id="not ascii"),
        pytest.param("Bearer \x00\x01", id="control characters"),
        pytest.param("Basic dXNlcjpwYXNz", id="another scheme"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_401_unauthenticated(auth: str, push, r1: Till, unchanged) -> None:
    response = push(batch([simple_sale(r1)]), auth=auth)

    assert_error(response, 401, "unauthenticated")
    unchanged()


def test_401_with_a_wrong_secret_for_a_real_prefix(push, node_key, r1: Till, unchanged) -> None:
    node, _ = node_key
    forged = f"tbk_{node.prefix}_" + "A" * 43

    assert_error(push(batch([simple_sale(r1)]), auth=f"Bearer {forged}"), 401, "unauthenticated")
    unchanged()


def test_401_revoked_key(push, node_key, r1: Till, unchanged) -> None:
    node_key_revoke(node_key=node_key[0], actor=None)

    assert_error(push(batch([simple_sale(r1)])), 401, "unauthenticated")
    unchanged()


def test_401_on_status_too(status) -> None:
    assert_error(status(auth="Bearer nope"), 401, "unauthenticated")


def test_403_forbidden_register_applies_nothing_even_the_valid_events(
    push, r1: Till, other_store: Store, unchanged
) -> None:
    foreign = Till(register="R9", store_code="S02").sale([(SKU_A, "1", "1.99")])
    events = [simple_sale(r1), foreign, r1.adjustment(SKU_B, "5", "receipt")]

    error = assert_error(push(batch(events)), 403, "forbidden_register")

    assert error["details"] == {"registers": ["R9"]}
    unchanged()
    assert not Batch.objects.exists()


def test_403_for_a_register_no_store_has(push, r1: Till, unchanged) -> None:
    events = [simple_sale(r1), Till(register="R77").device()]

    error = assert_error(push(batch(events)), 403, "forbidden_register")

    assert error["details"] == {"registers": ["R77"]}
    unchanged()


@override_settings(SYNC_MAX_EVENTS=3)
def test_413_too_many_events(push, r1: Till, unchanged) -> None:
    events = [r1.device() for _ in range(4)]

    assert_error(push(batch(events)), 413, "batch_too_large")
    unchanged()
    # at the limit, it is fine
    assert statuses(ok(push(batch(events[:3])))) == ["accepted"] * 3


@override_settings(SYNC_MAX_BYTES=4096)
def test_413_too_many_bytes(push, r1: Till, unchanged) -> None:
    body = batch([r1.sale([(SKU_A, "1", "1.99")]) for _ in range(10)])
    assert len(body) > 4096

    assert_error(push(body), 413, "batch_too_large")
    unchanged()


@override_settings(SYNC_MAX_BYTES=4096)
def test_413_too_many_bytes_without_a_declared_length(node_key, r1: Till, unchanged) -> None:
    """A chunked body declares no length; the parser still refuses it."""
    body = batch([r1.sale([(SKU_A, "1", "1.99")]) for _ in range(10)])

    with pytest.raises(PayloadTooLarge) as caught:
        batch_push(node_key=node_key[0], body=body)

    assert caught.value.code == "batch_too_large"
    assert caught.value.status == 413
    unchanged()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
def test_415_not_json(content_type: str, push, r1: Till, unchanged) -> None:
    response = push(batch([simple_sale(r1)]), content_type=content_type)

    assert_error(response, 415, "unsupported_media_type")
    unchanged()


def test_json_with_charset_is_json(push, r1: Till) -> None:
    response = push(batch([simple_sale(r1)]), content_type="application/json; charset=utf-8")

    assert statuses(ok(response)) == ["accepted"]


def test_429_throttled_with_retry_after(push, r1: Till, counts, monkeypatch) -> None:
    monkeypatch.setattr(NodeRateThrottle, "THROTTLE_RATES", {"node": "2/minute"})
    ok(push(batch([r1.device()])))
    ok(push(batch([r1.device()])))
    before = counts()

    response = push(batch([r1.device()]))

    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert counts() == before


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not json"),
        pytest.param(b'{"batch_id": "7d7c8f3e-1d2b-4c5d-9e8f-0a1b2c3d4e5f", "events": [', id="cut"),
        pytest.param(b"\xff\xfe{}", id="not utf-8"),
        pytest.param(
            b'{"batch_id": "7d7c8f3e-1d2b-4c5d-9e8f-0a1b2c3d4e5f", "events": []} trailing',
            id="trailing garbage",
        ),
        pytest.param(
            b'{"batch_id":"7d7c8f3e-1d2b-4c5d-9e8f-0a1b2c3d4e5f","events":['
            + b"[" * 5000
            + b"]" * 5000
            + b"]}",
            id="nested too deep",
        ),
    ],
)
def test_400_malformed_json(body: bytes, push, unchanged) -> None:
    assert_error(push(body), 400, "malformed_json")
    unchanged()


def test_400_malformed_json_for_an_empty_body(push, unchanged) -> None:
    # the test client drops the content type of an empty body: set it by hand
    assert_error(push(b"", CONTENT_TYPE="application/json"), 400, "malformed_json")
    unchanged()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"events": []}, id="no batch_id"),
        pytest.param({"batch_id": str(uuid.uuid4())}, id="no events"),
        pytest.param({"batch_id": str(uuid.uuid4()), "events": {}}, id="events an object"),
        pytest.param({"batch_id": str(uuid.uuid4()), "events": "x"}, id="events a string"),
        pytest.param({"batch_id": "batch-1", "events": []}, id="batch_id not a UUID"),
        pytest.param({"batch_id": 17, "events": []}, id="batch_id a number"),
        pytest.param(
            {"batch_id": str(uuid.uuid4()), "events": [], "node_time": "2026-11-23T10:00:00"},
            id="naive node_time",
        ),
        pytest.param([], id="an array"),
        pytest.param("batch", id="a string"),
    ],
)
def test_400_invalid_batch(body: Any, push, unchanged) -> None:
    assert_error(push(json.dumps(body)), 400, "invalid_batch")
    unchanged()


def test_422_batch_id_reused_with_different_events(push, r1: Till, counts) -> None:
    batch_id = str(uuid.uuid4())
    ok(push(batch([simple_sale(r1)], batch_id=batch_id)))
    before = counts()
    other = simple_sale(r1)

    assert_error(push(batch([other], batch_id=batch_id)), 422, "batch_id_reused")

    assert counts() == before
    assert not Event.objects.filter(event_id=other["event_id"]).exists()


def test_422_batch_id_of_another_store(push, r1: Till, other_store: Store, counts) -> None:
    batch_id = str(uuid.uuid4())
    sale = simple_sale(r1)
    ok(push(batch([sale], batch_id=batch_id)))
    _, other_key = node_key_issue(actor=None, store=other_store)
    foreign = Till(register="R9", store_code="S02").device()
    before = counts()

    response = push(batch([foreign], batch_id=batch_id), auth=f"Bearer {other_key}")

    assert_error(response, 422, "batch_id_reused")
    assert counts() == before


def test_same_batch_id_same_body_replays_the_first_answer_byte_for_byte(
    push, r1: Till, counts
) -> None:
    events = [
        simple_sale(r1),
        r1.sale([("UNKNOWN-1", "1", "1.00")]),
        {**simple_sale(r1), "seq": "bad"},
        r1.device(),
    ]
    body = batch(events)
    first = push(body)
    ok(first)
    after_first = counts()

    again = push(body)
    later_clock = push(
        batch(events, batch_id=json.loads(body)["batch_id"], node_time="2030-01-01T00:00:00Z")
    )

    assert again.content == first.content
    assert later_clock.content == first.content  # node_time is not part of "the same body"
    assert counts() == after_first
    assert DeadLetter.objects.count() == 1
    assert EXC.filter(type=Type.REJECTED_EVENT).count() == 1


def test_results_are_in_request_order_one_per_event(push, r1: Till, r2: Till) -> None:
    earlier = simple_sale(r1)
    ok(push(batch([earlier])))
    reused = copy.deepcopy(earlier)
    reused["data"]["cashier"] = "X"
    events = [
        {**r2.device(), "seq": -1},  # rejected
        r2.device(),  # accepted
        earlier,  # duplicate
        r1.sale([("UNKNOWN", "1", "1.00")]),  # held
        reused,  # conflict
        r2.adjustment(SKU_B, "3", "receipt"),  # accepted
    ]

    body = ok(push(batch(events)))

    assert [r["event_id"] for r in body["results"]] == [e["event_id"] for e in events]
    assert statuses(body) == ["rejected", "accepted", "duplicate", "held", "conflict", "accepted"]
    assert body["high_water"] == {"R1": 2, "R2": 0}
    for result in body["results"]:
        if result["status"] in ("accepted", "duplicate"):
            assert set(result) == {"event_id", "status"}
        else:
            assert set(result) == {"event_id", "status", "code", "message"}


def test_an_empty_batch_is_fine(push) -> None:
    body = ok(push(batch([])))

    assert body["results"] == []


# --- high water --------------------------------------------------------------------------------


def _numbered(till: Till, n: int) -> list[dict]:
    return [till.device() for _ in range(n)]


def test_high_water_is_contiguous_and_fills_in(push, r1: Till) -> None:
    e1, e2, e3, e4 = _numbered(r1, 4)

    assert ok(push(batch([e1, e2, e4])))["high_water"] == {"R1": 2}
    assert ok(push(batch([e3])))["high_water"] == {"R1": 4}
    state = RegisterSyncState.objects.get()
    assert (state.high_water, state.max_seq) == (4, 4)


def test_high_water_per_register(push, r1: Till, r2: Till) -> None:
    a = _numbered(r1, 3)
    b = _numbered(r2, 2)

    assert ok(push(batch([a[0], b[0], a[1], b[1], a[2]])))["high_water"] == {"R1": 3, "R2": 2}
    # a batch for R2 only still reports every register HQ knows for the store
    assert ok(push(batch([r2.device()])))["high_water"] == {"R1": 3, "R2": 3}


def test_a_rejected_event_holds_high_water_back(push, r1: Till) -> None:
    e1, e2, e3 = _numbered(r1, 3)
    broken = {**e2, "data": {**e2["data"], "kind": "toaster"}}

    body = ok(push(batch([e1, broken, e3])))

    assert statuses(body) == ["accepted", "rejected", "accepted"]
    assert body["high_water"] == {"R1": 1}

    dead = DeadLetter.objects.get()
    outcome = dead_letter_reapply(dead_letter=dead, actor=None, raw=json.dumps(e2).encode())

    assert outcome["status"] == "accepted"
    assert RegisterSyncState.objects.get().high_water == 3


def test_a_conflict_counts_as_received(push, r1: Till) -> None:
    e1, e2, e3 = _numbered(r1, 3)
    ok(push(batch([e1, e3])))
    # the node resends e1's id with seq 2: event_id_reused, but seq 2 has been received
    reused = {**e2, "event_id": e1["event_id"]}

    body = ok(push(batch([reused])))

    assert [(r["status"], r.get("code")) for r in body["results"]] == [
        ("conflict", "event_id_reused")
    ]
    assert body["high_water"] == {"R1": 3}


def test_held_counts_as_received(push, r1: Till) -> None:
    e1 = r1.sale([("LATER", "1", "1.00")])
    e2 = r1.device()

    assert ok(push(batch([e1, e2])))["high_water"] == {"R1": 2}


# --- status ------------------------------------------------------------------------------------


def test_status_reports_what_hq_holds(push, status, r1: Till, registers) -> None:
    e1 = simple_sale(r1)
    e2 = r1.sale([("LATER", "1", "1.00")])  # held
    r1.device()  # seq 3 never sent
    e4 = r1.device()
    e5 = {**r1.device(), "data": {"device": "x", "kind": "printer", "state": "on fire"}}
    twin = {**copy.deepcopy(e1), "event_id": str(uuid.uuid4())}  # seq_taken
    node_time = (timezone.now() - dt.timedelta(seconds=30)).isoformat()

    ok(push(batch([e1, e2, e4, e5, twin], node_time=node_time)))
    response = status()

    assert response.status_code == 200
    body = response.json()
    assert body["server_time"].endswith("Z")
    assert body["registers"]["R1"] == {
        "high_water": 2,
        "gaps": [[3, 3]],
        "last_event_at": "2026-11-23T09:00:04.000Z",
        "held": 1,
        "conflicts": 1,
        "rejected": 1,
    }
    assert body["registers"]["R2"] == {
        "high_water": 0,
        "gaps": [],
        "last_event_at": None,
        "held": 0,
        "conflicts": 0,
        "rejected": 0,
    }
    assert body["node"]["clock_skew_seconds"] == pytest.approx(-30, abs=5)


def test_status_gaps_are_ranges(push, status, r1: Till) -> None:
    e = _numbered(r1, 9)
    ok(push(batch([e[0], e[3], e[4], e[8]])))

    assert status().json()["registers"]["R1"]["gaps"] == [[2, 3], [6, 8]]


# --- exceptions raised at ingestion --------------------------------------------------------------


def test_seq_gap_raised_then_resolved_when_the_gap_fills(push, r1: Till, registers) -> None:
    e1, e2, e3, e4 = _numbered(r1, 4)
    ok(push(batch([e1, e2, e4])))

    gap = of_type(Type.SEQ_GAP).get()
    assert gap.status == "open"
    assert gap.details == {"from": 3, "to": 3}
    assert gap.register_id == registers["R1"].pk

    ok(push(batch([e3])))

    gap.refresh_from_db()
    assert gap.status == "resolved"
    assert gap.resolved_at is not None
    assert gap.resolution_note


def test_clock_skew_when_node_time_is_ten_minutes_off(push, r1: Till, node_key) -> None:
    ahead = (timezone.now() + dt.timedelta(minutes=10)).isoformat()

    ok(push(batch([r1.device()], node_time=ahead)))

    skew = of_type(Type.CLOCK_SKEW).get()
    assert skew.status == "open"
    assert skew.details["skew_seconds"] == pytest.approx(600, abs=10)
    assert NodeSyncState.objects.get(node_key=node_key[0]).clock_skew_seconds == pytest.approx(
        600, abs=10
    )


def test_no_clock_skew_within_the_limit_and_it_resolves(push, r1: Till) -> None:
    ok(
        push(
            batch([r1.device()], node_time=(timezone.now() + dt.timedelta(minutes=10)).isoformat())
        )
    )
    ok(push(batch([r1.device()], node_time=(timezone.now() + dt.timedelta(seconds=5)).isoformat())))

    assert of_type(Type.CLOCK_SKEW).get().status == "resolved"


def test_a_push_records_the_node_clock_and_leaves_its_pull_columns_alone(
    push, r1: Till, node_key
) -> None:
    pulled = dt.datetime(2026, 11, 30, 9, 15, tzinfo=dt.UTC)
    NodeSyncState.objects.create(
        node_key=node_key[0], store=node_key[0].store, last_pull_at=pulled, pull_current_at=pulled
    )
    node_time = timezone.now() + dt.timedelta(seconds=3)

    ok(push(batch([r1.device()], node_time=node_time.isoformat())))

    state = NodeSyncState.objects.get(node_key=node_key[0])
    assert (state.last_pull_at, state.pull_current_at) == (pulled, pulled)
    assert state.last_node_time == node_time
    assert state.clock_skew_seconds == pytest.approx(3, abs=2)
    assert state.last_push_at is not None


def _at(till: Till, occurred_at: str, business_date: str) -> dict:
    return {**simple_sale(till), "occurred_at": occurred_at, "business_date": business_date}


def test_business_date_is_the_date_in_the_store_time_zone(push, r1: Till) -> None:
    # 23:30 UTC on the 22nd is 00:30 on the 23rd in Berlin
    sale = _at(r1, "2026-11-22T23:30:00Z", "2026-11-23")

    assert statuses(ok(push(batch([sale])))) == ["accepted"]

    assert not of_type(Type.BUSINESS_DATE_MISMATCH).exists()
    stored = Sale.objects.get()
    assert stored.occurred_at == dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC)
    assert stored.business_date == dt.date(2026, 11, 23)


def test_business_date_mismatch_is_accepted_and_raises_an_exception(push, r1: Till) -> None:
    sale = _at(r1, "2026-11-22T23:30:00+00:00", "2026-11-22")

    assert statuses(ok(push(batch([sale])))) == ["accepted"]

    exc = of_type(Type.BUSINESS_DATE_MISMATCH).get()
    assert str(exc.event_id) == sale["event_id"]
    assert exc.details["local_date"] == "2026-11-23"
    assert Sale.objects.get().business_date == dt.date(2026, 11, 22)  # kept as sent


def test_totals_mismatch_is_accepted_and_stored_in_full(push, r1: Till) -> None:
    sale = r1.sale([(SKU_A, "2", "1.99"), (SKU_B, "1", "2.50")])
    sale["data"]["lines"][0]["line_total"] = "3.00"  # 2 × 1.99 is 3.98

    assert statuses(ok(push(batch([sale])))) == ["accepted"]

    exc = of_type(Type.TOTALS_MISMATCH).get()
    assert str(exc.event_id) == sale["event_id"]
    assert exc.details["lines"] == [{"line_no": "1", "expected": "3.98", "line_total": "3.00"}]
    stored = Sale.objects.get()
    assert stored.gross == Decimal(sale["data"]["totals"]["gross"])
    lines = list(stored.lines.order_by("line_no").values_list("line_no", "line_total"))
    assert lines == [(1, Decimal("3.00")), (2, Decimal("2.50"))]
    assert StockMove.objects.filter(source_event=sale["event_id"]).count() == 2


def test_discounted_line_that_adds_up_is_no_mismatch(push, r1: Till) -> None:
    sale = r1.sale([(SKU_B, "2", "2.50")])
    line = sale["data"]["lines"][0]
    line["discount"], line["line_total"] = "1.00", "4.00"
    tax = (Decimal("4.00") * 19 / 119).quantize(Decimal("0.01"))
    sale["data"]["totals"] = {"net": str(Decimal("4.00") - tax), "tax": str(tax), "gross": "4.00"}
    sale["data"]["tenders"][0]["amount"] = "4.00"

    ok(push(batch([sale])))

    assert not of_type(Type.TOTALS_MISMATCH).exists()


@pytest.fixture
def price_change(products) -> None:
    """SKU_A costs 1.99 until 2026-11-30 and 2.19 from 2026-12-01."""
    product = products[SKU_A]
    Price.objects.filter(product=product).update(valid_to=dt.date(2026, 11, 30))
    Price.objects.create(
        price_list=Price.objects.get(product=product).price_list,
        product=product,
        price=Decimal("2.19"),
        valid_from=dt.date(2026, 12, 1),
    )


@pytest.mark.usefixtures("price_change")
@pytest.mark.parametrize(
    ("day", "price", "override", "differs"),
    [
        (dt.date(2026, 11, 23), "1.99", None, False),
        (dt.date(2026, 11, 23), "2.19", None, True),
        (dt.date(2026, 12, 1), "2.19", None, False),
        (dt.date(2026, 12, 1), "1.99", None, True),
        (dt.date(2026, 12, 1), "1.99", "old shelf label honoured", False),
    ],
)
def test_price_differs_from_the_list_price_valid_on_the_business_date(
    day: dt.date, price: str, override: str | None, differs: bool, push
) -> None:
    till = Till(register="R1", day=day)
    sale = till.sale([(SKU_A, "1", price)])
    sale["data"]["lines"][0]["price_override_reason"] = override

    assert statuses(ok(push(batch([sale])))) == ["accepted"]

    found = list(of_type(Type.PRICE_DIFFERS))
    assert len(found) == int(differs)
    if differs:
        assert found[0].details["sku"] == SKU_A
        assert Decimal(found[0].details["unit_price"]) == Decimal(price)
        assert Decimal(found[0].details["list_price"]) == Decimal(
            "2.19" if day.month == 12 else "1.99"
        )
    assert Sale.objects.get().lines.get().price_override_reason == (override or "")


def test_negative_stock_is_accepted_and_raises_an_exception(push, r1: Till, products) -> None:
    ok(push(batch([r1.adjustment(SKU_B, "1", "receipt")])))
    sale = r1.sale([(SKU_B, "3", "2.50")])

    assert statuses(ok(push(batch([sale])))) == ["accepted"]

    exc = of_type(Type.NEGATIVE_STOCK).get()
    assert exc.details == {"sku": SKU_B, "qty": "-2.000"} or Decimal(exc.details["qty"]) == -2
    assert StockLevel.objects.get(product=products[SKU_B]).qty == Decimal("-2")
    # It names the move that took the level below zero: the sale, on its business date.
    assert str(exc.event_id) == sale["event_id"]
    assert exc.business_date.isoformat() == sale["business_date"]
    assert f"after sale {sale['event_id']}" in exc.message


def test_negative_stock_names_the_last_move_of_the_batch(push, r1: Till, products) -> None:
    first = r1.sale([(SKU_B, "1", "2.50")])
    second = r1.sale([(SKU_B, "2", "2.50")])

    assert statuses(ok(push(batch([first, second])))) == ["accepted", "accepted"]

    exc = of_type(Type.NEGATIVE_STOCK).get()
    assert Decimal(exc.details["qty"]) == -3
    assert str(exc.event_id) == second["event_id"]
    assert f"after sale {second['event_id']}" in exc.message


def test_currency_mismatch_is_accepted(push, r1: Till) -> None:
    sale = simple_sale(r1)
    sale["data"]["currency"] = "USD"

    assert statuses(ok(push(batch([sale])))) == ["accepted"]
    assert of_type(Type.CURRENCY_MISMATCH).exists()


# --- every event type stored in full ----------------------------------------------------------


def test_event_payload_is_canonical_json_and_content_hash_its_sha256(push, r1: Till) -> None:
    sale = simple_sale(r1)
    sale["data"]["note"] = "Café, „Grüße“"  # extra fields are free and kept
    pretty = json.dumps(sale, indent=2, ensure_ascii=True).encode()

    ok(push(raw_batch([pretty])))

    event = Event.objects.get()
    assert event.payload == canonical(sale)
    assert event.content_hash == hashlib.sha256(event.payload.encode()).hexdigest()


def test_sale_is_stored_in_full(push, r1: Till, registers, products) -> None:
    sale = r1.sale([(SKU_A, "2", "1.99"), (SKU_KG, "0.375", "12.90")])
    data = sale["data"]
    data["tenders"] = [
        {"method": "cash", "amount": "5.00", "change": "1.02"},
        {"method": "card", "amount": "4.84", "reference": "AUTH-77", "offline_authorized": True},
    ]

    ok(push(batch([sale])))

    stored = Sale.objects.get(event_id=sale["event_id"])
    assert (stored.type, stored.register_id, stored.seq) == ("sale", registers["R1"].pk, 1)
    assert (stored.receipt_no, stored.basket_id, stored.cashier, stored.session_id) == (
        data["receipt_no"],
        data["basket_id"],
        "C7",
        "sess-1",
    )
    assert stored.currency == "EUR"
    assert (stored.net, stored.tax, stored.gross) == tuple(
        Decimal(data["totals"][k]) for k in ("net", "tax", "gross")
    )
    assert stored.occurred_at == dt.datetime.fromisoformat(sale["occurred_at"])
    assert stored.business_date == dt.date(2026, 11, 23)
    assert stored.original_event is None
    lines = [
        (ln.line_no, ln.sku, ln.qty, ln.unit_price, ln.discount, ln.tax_code, ln.line_total)
        for ln in stored.lines.order_by("line_no")
    ]
    assert lines == [
        (1, SKU_A, Decimal("2"), Decimal("1.99"), Decimal("0"), "STD", Decimal("3.98")),
        (2, SKU_KG, Decimal("0.375"), Decimal("12.90"), Decimal("0"), "STD", Decimal("4.84")),
    ]
    tenders = [
        (t.position, t.method, t.amount, t.change, t.reference, t.offline_authorized)
        for t in stored.tenders.order_by("position")
    ]
    assert tenders == [
        (1, "cash", Decimal("5.00"), Decimal("1.02"), "", False),
        (2, "card", Decimal("4.84"), Decimal("0"), "AUTH-77", True),
    ]
    moves = {
        (m.product_id, m.qty_delta, m.kind, m.line_no)
        for m in StockMove.objects.filter(source_event=sale["event_id"])
    }
    assert moves == {
        (products[SKU_A].pk, Decimal("-2"), "sale", 1),
        (products[SKU_KG].pk, Decimal("-0.375"), "sale", 2),
    }
    assert not of_type(Type.TOTALS_MISMATCH).exists()
    assert not of_type(Type.PRICE_DIFFERS).exists()


def test_return_is_linked_to_its_original_sale(push, r1: Till, products) -> None:
    sale = r1.sale([(SKU_A, "2", "1.99"), (SKU_B, "1", "2.50")])
    ret = r1.return_of(sale, [(SKU_A, "1", "1.99")])

    assert statuses(ok(push(batch([sale, ret])))) == ["accepted", "accepted"]

    stored = Sale.objects.get(event_id=ret["event_id"])
    assert stored.type == "return"
    assert str(stored.original_event) == sale["event_id"]
    line = stored.lines.get()
    assert (line.original_line_no, line.qty, line.line_total) == (1, Decimal("1"), Decimal("1.99"))
    assert stored.gross == Decimal("1.99")  # positive: the type gives the sign
    move = StockMove.objects.get(source_event=ret["event_id"])
    assert (move.kind, move.qty_delta) == ("return", Decimal("1"))
    assert StockLevel.objects.get(product=products[SKU_A]).qty == Decimal("-1")


def test_return_without_receipt(push, r1: Till) -> None:
    ret = r1.return_of(None, [(SKU_B, "1", "2.50")])

    assert statuses(ok(push(batch([ret])))) == ["accepted"]
    stored = Sale.objects.get()
    assert (stored.type, stored.original_event) == ("return", None)
    assert stored.lines.get().original_line_no is None


def test_session_open_and_close_make_a_till_session_with_its_z_report(
    push, r1: Till, registers
) -> None:
    opened = r1.session_open("sess-9")
    sale = r1.sale([(SKU_A, "2", "1.99")], data={"session_id": "sess-9"})
    z_report = {
        "session_id": "sess-9",
        "first_seq": 1,
        "last_seq": 3,
        "sale_count": 1,
        "return_count": 0,
        "gross": "3.98",
        "tax": "0.64",
        "tenders": {"cash": "3.98", "card": "0.00"},
        "counted_cash": "103.90",
    }
    closed = r1._envelope("session_close", z_report)

    assert statuses(ok(push(batch([opened, sale, closed])))) == ["accepted"] * 3

    session = TillSession.objects.get(session_id="sess-9")
    assert (session.store_id, session.register_id) == (registers["R1"].store_id, registers["R1"].pk)
    assert (session.cashier, session.opening_float) == ("C7", Decimal("100.00"))
    assert session.opened_at == dt.datetime.fromisoformat(opened["occurred_at"])
    assert str(session.open_event) == opened["event_id"]
    assert session.business_date == dt.date(2026, 11, 23)
    assert session.closed_at == dt.datetime.fromisoformat(closed["occurred_at"])
    assert str(session.close_event) == closed["event_id"]
    assert (session.first_seq, session.last_seq) == (1, 3)
    assert (session.sale_count, session.return_count) == (1, 0)
    assert (session.gross, session.tax) == (Decimal("3.98"), Decimal("0.64"))
    assert session.tenders == {"cash": "3.98", "card": "0.00"}
    assert session.counted_cash == Decimal("103.90")
    assert Sale.objects.get().session_id == "sess-9"


def test_session_close_before_its_open_arrives(push, r1: Till) -> None:
    opened = r1.session_open("sess-x")
    closed = r1._envelope(
        "session_close",
        {"session_id": "sess-x", "first_seq": 1, "last_seq": 2, "sale_count": 0,
         "return_count": 0, "gross": "0.00", "tax": "0.00", "tenders": {},
         "counted_cash": "100.00"},
    )  # fmt: skip

    ok(push(batch([closed])))
    ok(push(batch([opened])))

    session = TillSession.objects.get()
    assert str(session.open_event) == opened["event_id"]
    assert str(session.close_event) == closed["event_id"]
    assert session.opening_float == Decimal("100.00")
    assert session.counted_cash == Decimal("100.00")


def test_cash_movement_is_stored(push, r1: Till, registers) -> None:
    event = r1._envelope(
        "cash_movement",
        {"session_id": "sess-1", "kind": "pay_out", "amount": "20.00", "reason": "window cleaner"},
    )

    ok(push(batch([event])))

    movement = CashMovement.objects.get(event_id=event["event_id"])
    assert (movement.register_id, movement.session_id, movement.kind) == (
        registers["R1"].pk,
        "sess-1",
        "pay_out",
    )
    assert (movement.amount, movement.reason) == (Decimal("20.00"), "window cleaner")
    assert movement.occurred_at == dt.datetime.fromisoformat(event["occurred_at"])
    assert movement.business_date == dt.date(2026, 11, 23)


def test_stock_adjustment_writes_moves_with_their_reason(push, r1: Till, products) -> None:
    event = r1._envelope(
        "stock_adjustment",
        {
            "lines": [
                {"sku": SKU_B, "qty_delta": "12", "reason": "receipt", "reference": "DN-4711"},
                {"sku": SKU_KG, "qty_delta": "-0.250", "reason": "damage", "reference": None},
            ]
        },
    )

    ok(push(batch([event])))

    moves = {
        (m.product_id, m.qty_delta, m.kind, m.reason, m.reference, m.line_no)
        for m in StockMove.objects.filter(source_event=event["event_id"])
    }
    assert moves == {
        (products[SKU_B].pk, Decimal("12"), "adjustment", "receipt", "DN-4711", 1),
        (products[SKU_KG].pk, Decimal("-0.25"), "adjustment", "damage", "", 2),
    }
    assert StockLevel.objects.get(product=products[SKU_B]).qty == Decimal("12")


def test_stock_count_records_book_stock_variance_and_a_variance_move(
    push, r1: Till, products, location
) -> None:
    received = r1.adjustment(SKU_B, "10", "receipt")
    sold = r1.sale([(SKU_B, "1", "2.50")])
    count = r1.count({SKU_B: "7", SKU_A: "0"})

    assert statuses(ok(push(batch([received, sold, count])))) == ["accepted"] * 3

    stock_count = StockCount.objects.get(source_event=count["event_id"])
    assert stock_count.count_id == count["data"]["count_id"]
    assert stock_count.location_id == location.pk
    assert stock_count.business_date == dt.date(2026, 11, 23)
    assert stock_count.counted_at == dt.datetime.fromisoformat(count["occurred_at"])
    lines = {
        line.product_id: (line.counted_qty, line.book_qty, line.variance)
        for line in stock_count.lines.all()
    }
    assert lines == {
        products[SKU_B].pk: (Decimal("7"), Decimal("9"), Decimal("-2")),  # 10 in, 1 sold
        products[SKU_A].pk: (Decimal("0"), Decimal("0"), Decimal("0")),
    }
    move = StockMove.objects.get(source_event=count["event_id"])
    assert (move.product_id, move.kind, move.qty_delta) == (products[SKU_B].pk, "count", -2)
    assert move.reference == count["data"]["count_id"]
    assert StockLevel.objects.get(product=products[SKU_B]).qty == Decimal("7")


def test_device_status_is_stored(push, r1: Till, registers) -> None:
    event = r1._envelope(
        "device_status",
        {"device": "scale-1", "kind": "scale", "state": "offline", "detail": "no answer on COM3"},
    )

    ok(push(batch([event])))

    report = DeviceReport.objects.get(event_id=event["event_id"])
    assert (report.register_id, report.device, report.kind, report.state, report.detail) == (
        registers["R1"].pk,
        "scale-1",
        "scale",
        "offline",
        "no answer on COM3",
    )
    assert report.occurred_at == dt.datetime.fromisoformat(event["occurred_at"])


# --- held events, released ----------------------------------------------------------------------


def test_held_unknown_sku_applied_when_the_product_is_created(
    push, r1: Till, tax_rate: TaxRate, django_capture_on_commit_callbacks, counts
) -> None:
    sale = r1.sale([("NEW-1", "2", "3.00")])
    ok(push(batch([sale])))

    with django_capture_on_commit_callbacks(execute=True):
        product = product_create(actor=None, sku="NEW-1", name="New thing", tax_rate=tax_rate)

    event = Event.objects.get(event_id=sale["event_id"])
    assert (event.status, event.hold_reason, event.waiting_for) == ("applied", "", "")
    assert event.applied_at is not None
    assert Sale.objects.filter(event_id=sale["event_id"]).exists()
    assert StockMove.objects.get(source_event=sale["event_id"]).product_id == product.pk

    before = counts()
    assert held_events_release(reason="unknown_sku", waiting_for=["NEW-1"]) == 0
    assert held_events_release_for_skus.delay(["NEW-1"]).get() == 0
    assert counts() == before


def test_held_for_two_unknown_skus_waits_for_both_bulk_upsert_releases_it(
    push, r1: Till, tax_rate: TaxRate, django_capture_on_commit_callbacks
) -> None:
    sale = r1.sale([("NEW-1", "1", "3.00"), ("NEW-2", "1", "4.00")])
    ok(push(batch([sale])))

    with django_capture_on_commit_callbacks(execute=True):
        product_create(actor=None, sku="NEW-1", name="One", tax_rate=tax_rate)

    event = Event.objects.get()
    assert (event.status, event.waiting_for) == ("held", "NEW-2")

    with django_capture_on_commit_callbacks(execute=True):
        products_bulk_upsert(actor=None, rows=[{"sku": "NEW-2", "name": "Two", "tax_code": "STD"}])

    event.refresh_from_db()
    assert event.status == "applied"
    assert Sale.objects.get().lines.count() == 2
    assert StockMove.objects.filter(source_event=sale["event_id"]).count() == 2


def test_a_held_event_resent_is_a_duplicate(push, r1: Till) -> None:
    sale = r1.sale([("NEW-1", "1", "3.00")])
    ok(push(batch([sale])))

    assert statuses(ok(push(batch([sale])))) == ["duplicate"]


def test_held_return_applied_when_its_original_sale_arrives_later(
    push, r1: Till, r2: Till, products, django_capture_on_commit_callbacks
) -> None:
    sale = r1.sale([(SKU_A, "3", "1.99")])  # not sent yet
    ret = r2.return_of(sale, [(SKU_A, "1", "1.99")])
    assert statuses(ok(push(batch([ret])))) == ["held"]

    with django_capture_on_commit_callbacks(execute=True):
        assert statuses(ok(push(batch([sale])))) == ["accepted"]

    assert Event.objects.get(event_id=ret["event_id"]).status == "applied"
    stored = Sale.objects.get(event_id=ret["event_id"])
    assert str(stored.original_event) == sale["event_id"]
    assert StockLevel.objects.get(product=products[SKU_A]).qty == Decimal("-2")


def test_held_return_applied_when_its_held_sale_is_released(
    push, r1: Till, tax_rate: TaxRate, django_capture_on_commit_callbacks
) -> None:
    sale = r1.sale([("NEW-9", "2", "1.00")])
    ret = r1.return_of(sale, [("NEW-9", "1", "1.00")])
    body = ok(push(batch([sale, ret])))
    assert [r["code"] for r in body["results"]] == ["unknown_sku", "unknown_sku"]

    with django_capture_on_commit_callbacks(execute=True):
        product_create(actor=None, sku="NEW-9", name="Nine", tax_rate=tax_rate)

    assert set(Event.objects.values_list("status", flat=True)) == {"applied"}
    assert Sale.objects.count() == 2


def test_sweep_applies_held_events(push, r1: Till, tax_rate: TaxRate) -> None:
    sale = r1.sale([("NEW-5", "1", "3.00")])
    ok(push(batch([sale])))
    assert held_events_sweep() == 0  # still unknown
    ProductFactory(sku="NEW-5", tax_rate=tax_rate)  # bypasses the services: no release task

    assert Event.objects.get().status == "held"
    assert held_events_sweep() == 1
    assert held_events_sweep() == 0
    assert Event.objects.get().status == "applied"
    assert Sale.objects.count() == 1
    assert StockMove.objects.count() == 1


# --- dead letters -------------------------------------------------------------------------------


def _broken_sale(till: Till) -> tuple[dict, bytes]:
    """A sale whose qty is a JSON number, spelled with odd spacing and escapes."""
    sale = simple_sale(till)
    text = json.dumps(sale, ensure_ascii=False).replace('"qty": "2"', '"qty" :   2')
    text = text.replace('"cashier": "C7"', '"cashier": "C\\u0037", "memo": "Grüße"')
    return sale, text.encode()


def test_dead_letter_keeps_the_raw_bytes_exactly_as_sent(push, r1: Till) -> None:
    _, raw = _broken_sale(r1)
    body = raw_batch([b"  " + raw + b"\n"])

    result = ok(push(body))

    assert statuses(result) == ["rejected"]
    dead = DeadLetter.objects.get()
    assert bytes(dead.raw) == raw
    assert (dead.position, dead.register_code, dead.seq) == (0, "R1", 1)
    assert str(dead.batch_id) == json.loads(body)["batch_id"]


def test_dead_letter_reapply_with_a_correction_applies_it_and_resolves_the_exception(
    push, r1: Till, staff_client
) -> None:
    sale, raw = _broken_sale(r1)
    ok(push(raw_batch([raw])))
    dead = DeadLetter.objects.get()
    rejected = of_type(Type.REJECTED_EVENT).get()
    corrected = raw.replace(b'"qty" :   2', b'"qty": "2"')

    outcome = dead_letter_reapply(dead_letter=dead, actor=staff_client.user, raw=corrected)

    assert outcome == {"event_id": sale["event_id"], "status": "accepted"}
    assert Event.objects.get(event_id=sale["event_id"]).status == "applied"
    assert Sale.objects.get().lines.get().qty == Decimal("2")
    dead.refresh_from_db()
    assert dead.status == "reapplied"
    assert dead.resolved_by == staff_client.user
    assert bytes(dead.raw) == raw  # what was sent stays as it was sent
    rejected.refresh_from_db()
    assert rejected.status == "resolved"
    assert RegisterSyncState.objects.get().high_water == 1
    # the corrected event, sent again, is a duplicate of what staff applied
    assert statuses(ok(push(raw_batch([corrected])))) == ["duplicate"]


def test_dead_letter_invalid_correction_is_refused_and_changes_nothing(
    push, r1: Till, counts
) -> None:
    _, raw = _broken_sale(r1)
    ok(push(raw_batch([raw])))
    dead = DeadLetter.objects.get()
    before = counts()

    corrections = [
        raw.replace(b'"qty" :   2', b'"qty": "2,0"'),  # still not a decimal
        raw.replace(b'"qty" :   2', b'"qty": "2"')[:-3],  # not JSON
        raw.replace(b'"qty" :   2', b'"qty": 2e999'),  # a number out of range
        b"[" * 5000 + b"]" * 5000,  # too deep to read
        None,  # as received: still invalid
    ]
    for correction in corrections:
        with pytest.raises(ValidationFailed) as caught:
            dead_letter_reapply(dead_letter=dead, actor=None, raw=correction)
        assert caught.value.code == "invalid_event"

    assert counts() == before
    dead.refresh_from_db()
    assert dead.status == "open"
    assert of_type(Type.REJECTED_EVENT).get().status == "open"


def test_dead_letter_void_needs_a_reason(push, r1: Till) -> None:
    _, raw = _broken_sale(r1)
    ok(push(raw_batch([raw])))
    dead = DeadLetter.objects.get()

    for reason in ("", "   "):
        with pytest.raises(ValidationFailed):
            dead_letter_void(dead_letter=dead, actor=None, reason=reason)
    dead.refresh_from_db()
    assert dead.status == "open"

    dead_letter_void(dead_letter=dead, actor=None, reason="Test sale on the training till")

    dead.refresh_from_db()
    assert (dead.status, dead.resolution_note) == ("voided", "Test sale on the training till")
    assert of_type(Type.REJECTED_EVENT).get().status == "resolved"
    assert not Event.objects.exists()


def test_a_voided_dead_letter_above_a_gap_counts_once_the_gap_is_filled(
    push, r1: Till, registers
) -> None:
    """A push whose seqs continue high water skips the lookup of what lies above it; a voided
    dead letter above a gap lies there, so the push that fills the gap must still see it."""
    e1, e2, e3, e4 = _numbered(r1, 4)
    assert ok(push(batch([e1])))["high_water"] == {"R1": 1}
    broken = {**e3, "data": {**e3["data"], "kind": "toaster"}}
    assert ok(push(batch([broken])))["high_water"] == {"R1": 1}
    dead_letter_void(dead_letter=DeadLetter.objects.get(), actor=None, reason="test print")
    assert RegisterSyncState.objects.get().high_water == 1  # seq 2 is still missing

    assert ok(push(batch([e2])))["high_water"] == {"R1": 3}
    assert ok(push(batch([e4])))["high_water"] == {"R1": 4}
    state = RegisterSyncState.objects.get()
    assert (state.high_water, state.max_seq) == (4, 4)
    assert not of_type(Type.SEQ_GAP).exclude(status="resolved").exists()


# --- events at the edges of the schema: never a whole-batch failure ----------------------------


def _with(event: dict, path: tuple, value: Any) -> dict:
    event = copy.deepcopy(event)
    _set(value, *path)(event)
    return event


EDGE_EVENTS: dict[str, tuple[Callable[[Till], dict], tuple, Any]] = {
    "long cashier": (simple_sale, ("data", "cashier"), "C" * 64),
    "long override reason": (
        simple_sale,
        ("data", "lines", 0, "price_override_reason"),
        "r" * 500,
    ),
    "long tender reference": (simple_sale, ("data", "tenders", 0, "reference"), "x" * 500),
    "long cash reason": (
        lambda t: t._envelope("cash_movement", {"kind": "drop", "amount": "1.00"}),
        ("data", "reason"),
        "y" * 500,
    ),
    "long session cashier": (lambda t: t.session_open("s-long"), ("data", "cashier"), "Z" * 64),
    "huge sale_count": (
        lambda t: t._envelope(
            "session_close",
            {
                "session_id": "s",
                "first_seq": 1,
                "last_seq": 1,
                "sale_count": 0,
                "return_count": 0,
                "gross": "0",
                "tax": "0",
                "tenders": {},
                "counted_cash": "0",
            },
        ),
        ("data", "sale_count"),
        2**40,
    ),
    "huge last_seq": (
        lambda t: t._envelope(
            "session_close",
            {
                "session_id": "s",
                "first_seq": 1,
                "last_seq": 1,
                "sale_count": 0,
                "return_count": 0,
                "gross": "0",
                "tax": "0",
                "tenders": {},
                "counted_cash": "0",
            },
        ),
        ("data", "last_seq"),
        2**70,
    ),
    "NUL in cashier": (simple_sale, ("data", "cashier"), "C\x007"),
}


@pytest.mark.parametrize("case", list(EDGE_EVENTS))
def test_an_event_at_the_edge_of_the_schema_gets_a_per_event_answer(
    case: str, push, r1: Till
) -> None:
    """Accepted and stored in full, or rejected (kept as a dead letter): never a whole-batch
    refusal (the batch also carries a good sale) and never a 500."""
    build, path, value = EDGE_EVENTS[case]
    good = simple_sale(r1)
    event = _with(build(r1), path, value)

    body = ok(push(batch([good, event])))

    assert body["results"][0]["status"] == "accepted"
    assert body["results"][1]["status"] in ("accepted", "rejected"), body


def test_cashier_code_at_its_column_width_is_accepted(push, r1: Till) -> None:
    sale = _with(simple_sale(r1), ("data", "cashier"), "C" * 32)

    assert statuses(ok(push(batch([sale])))) == ["accepted"]
    assert Sale.objects.get().cashier == "C" * 32


def test_voiding_a_dead_letter_stops_it_holding_high_water_back(
    push, r1: Till, status, registers
) -> None:
    """ "…void it with a reason; until then it holds high_water back"."""
    e1, e2, e3 = _numbered(r1, 3)
    broken = {**e2, "data": {**e2["data"], "kind": "toaster"}}
    assert ok(push(batch([e1, broken, e3])))["high_water"] == {"R1": 1}
    gap = of_type(Type.SEQ_GAP).get()

    dead_letter_void(dead_letter=DeadLetter.objects.get(), actor=None, reason="test print")

    assert RegisterSyncState.objects.get().high_water == 3
    assert status().json()["registers"]["R1"]["gaps"] == []
    gap.refresh_from_db()
    assert gap.status == "resolved"
    assert ok(push(batch([r1.device()])))["high_water"] == {"R1": 4}
