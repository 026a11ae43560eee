"""The sync admin: what stores sent, read-only; dead letters re-applied, corrected or voided and
exceptions acknowledged or resolved through their services; the sync monitor.

Events get here the way they do in production: built like a till builds them and pushed to
``/api/v1/sync/push`` with the store's node key.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from stores.models import Register, Sale, Store
from stores.services import node_key_issue
from sync.exception_queue import Problem, exceptions_raise
from sync.models import (
    Batch,
    DeadLetter,
    Event,
    EventConflict,
    ReconciliationException,
    RegisterSyncState,
)
from tests.factories import PriceFactory, ProductFactory, RegisterFactory, StoreFactory, UserFactory
from tests.sync.builders import Till, batch

pytestmark = pytest.mark.django_db

Type = ReconciliationException.Type


def url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def signed_in(client: Client, role: str) -> Any:
    user = UserFactory(roles=[role])
    client.force_login(user)
    return user


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


class Shop:
    """Store S01 with registers R1 and R2, a node key, and tills that push over HTTP."""

    def __init__(self) -> None:
        self.store = StoreFactory(code="S01", name="Berlin Mitte")
        self.registers = {
            code: RegisterFactory(store=self.store, code=code) for code in ("R1", "R2")
        }
        self.node_key, self.key = node_key_issue(actor=None, store=self.store, label="till PC")
        self.r1 = Till(register="R1", store_code="S01")
        self.r2 = Till(register="R2", store_code="S01")

    def push(self, *events: dict[str, Any], node_time: str | None = None) -> dict[str, Any]:
        response = Client().post(
            "/api/v1/sync/push",
            data=batch(list(events), node_time=node_time),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.key}",
        )
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture
def shop() -> Shop:
    for sku in ("APPLE", "PEAR"):
        PriceFactory(product=ProductFactory(sku=sku), price=Decimal("1.99"))
    return Shop()


def invalid_sale(till: Till) -> dict[str, Any]:
    """A sale whose quantity is a JSON number: rejected, kept as a dead letter."""
    event = till.sale([("APPLE", "2", "1.99")])
    event["data"]["lines"][0]["qty"] = 2
    return event


@pytest.fixture
def dead_letter(shop: Shop) -> DeadLetter:
    shop.push(shop.r1.sale([("APPLE", "1", "1.99")]))
    results = shop.push(invalid_sale(shop.r1))["results"]
    assert [r["status"] for r in results] == ["rejected"]
    return DeadLetter.objects.get()


def fixed(dead_letter: DeadLetter) -> str:
    event = json.loads(bytes(dead_letter.raw))
    event["data"]["lines"][0]["qty"] = "2"
    return json.dumps(event, indent=2)


def action(client: Client, model: type, name: str, rows: list[Any], **extra: Any) -> Any:
    return client.post(
        url(model, "changelist"),
        {"action": name, "_selected_action": [r.pk for r in rows], **extra},
        follow=True,
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def raise_problem(store: Store, type: str = Type.PRICE_DIFFERS) -> ReconciliationException:
    key = f"test:{uuid.uuid4()}"
    exceptions_raise(
        problems=[
            Problem(
                type=type,
                store_id=store.pk,
                dedup_key=key,
                message="Price differs from the price list.",
                business_date=dt.date(2026, 11, 23),
            )
        ],
        now=timezone.now(),
    )
    return ReconciliationException.objects.get(dedup_key=key)


# --- pages --------------------------------------------------------------------------------------


@pytest.fixture
def received(shop: Shop, dead_letter: DeadLetter) -> dict[type, Any]:
    """One of everything: an event, a conflict (seq 1 taken), a batch, a dead letter, an
    exception."""
    shop.push(shop.r1.sale([("PEAR", "1", "1.99")], seq=1))
    return {
        Event: Event.objects.order_by("pk").first(),
        EventConflict: EventConflict.objects.get(),
        Batch: Batch.objects.order_by("received_at").first(),
        DeadLetter: dead_letter,
        ReconciliationException: ReconciliationException.objects.order_by("pk").first(),
    }


MODELS = [Event, EventConflict, Batch, DeadLetter, ReconciliationException]


@pytest.mark.parametrize("role", ["staff", "finance", "auditor"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_list_and_detail_pages_render_read_only(client, received, role, model):
    signed_in(client, role)
    obj = received[model]

    listing = client.get(url(model, "changelist"))
    detail = client.get(url(model, "change", obj.pk))

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert detail.context["has_change_permission"] is False
    assert 'name="_save"' not in detail.content.decode()
    assert client.get(url(model, "add")).status_code == 403
    assert client.get(url(model, "delete", obj.pk)).status_code == 403


@pytest.mark.parametrize("role", ["staff", "auditor"])
@pytest.mark.parametrize("model", [DeadLetter, ReconciliationException], ids=lambda m: m.__name__)
def test_history_pages_render(client, received, role, model):
    signed_in(client, role)

    assert client.get(url(model, "history", received[model].pk)).status_code == 200


def test_nothing_received_can_be_changed_by_posting(client, received):
    user = signed_in(client, "staff")
    user.is_superuser = True
    user.save()
    event = received[Event]

    response = client.post(url(Event, "change", event.pk), {"seq": "99", "status": "held"})

    assert response.status_code == 403
    event.refresh_from_db()
    assert (event.seq, event.status) == (1, "applied")


def test_event_page_shows_the_canonical_payload_pretty_printed(client, shop, received):
    signed_in(client, "auditor")
    event = received[Event]

    page = text(client.get(url(Event, "change", event.pk)))

    assert '\n  "business_date": "2026-11-23",\n' in page
    assert f'"event_id": "{event.event_id}"' in page


def test_event_list_filters_and_finds_by_event_id(client, shop, received):
    signed_in(client, "staff")
    event = received[Event]

    found = client.get(url(Event, "changelist"), {"q": str(event.event_id)})
    nothing = client.get(url(Event, "changelist"), {"q": "not-a-uuid"})
    held = client.get(url(Event, "changelist"), {"status__exact": "held", "type": "sale"})

    assert [e.pk for e in found.context["cl"].result_list] == [event.pk]
    assert list(nothing.context["cl"].result_list) == []
    assert list(held.context["cl"].result_list) == []


def test_conflict_page_shows_both_events_side_by_side(client, shop, received):
    signed_in(client, "staff")
    conflict = received[EventConflict]

    page = text(client.get(url(EventConflict, "change", conflict.pk)))

    ours = json.loads(conflict.payload)
    theirs = json.loads(Event.objects.get(event_id=conflict.existing_event_id).payload)
    assert ours["data"]["lines"][0]["sku"] == "PEAR"
    assert theirs["data"]["lines"][0]["sku"] == "APPLE"
    assert f'"event_id": "{ours["event_id"]}"' in page
    assert f'"event_id": "{theirs["event_id"]}"' in page
    assert "seq taken" in page


def test_batch_list_loads_no_response_and_its_page_shows_it_decoded(client, shop, received):
    signed_in(client, "auditor")
    batch_row = received[Batch]

    with CaptureQueriesContext(connection) as queries:
        listing = client.get(url(Batch, "changelist"))
    batch_sql = [q["sql"] for q in queries if 'FROM "sync_batch"' in q["sql"]]
    page = text(client.get(url(Batch, "change", batch_row.pk)))

    assert listing.status_code == 200
    assert batch_sql
    assert all('"sync_batch"."response"' not in sql for sql in batch_sql)
    assert '"high_water"' in page
    assert f'"batch_id": "{batch_row.batch_id}"' in page


def test_dead_letter_page_shows_the_raw_event_as_text(client, dead_letter):
    signed_in(client, "auditor")

    page = text(client.get(url(DeadLetter, "change", dead_letter.pk)))

    assert bytes(dead_letter.raw).decode() in page
    assert "Correct and re-apply" not in page  # auditors see no decisions


# --- dead letters: decisions --------------------------------------------------------------------


def test_auditor_cannot_reapply_correct_or_void(client, dead_letter):
    signed_in(client, "auditor")

    action(client, DeadLetter, "reapply_selected", [dead_letter])
    action(client, DeadLetter, "void_selected", [dead_letter], post="yes", text="spam")
    correct = client.post(url(DeadLetter, "correct", dead_letter.pk), {"raw": fixed(dead_letter)})
    void = client.post(url(DeadLetter, "void", dead_letter.pk), {"post": "yes", "text": "x"})

    assert correct.status_code == 403
    assert void.status_code == 403
    assert client.get(url(DeadLetter, "correct", dead_letter.pk)).status_code == 403
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.OPEN
    assert Event.objects.count() == 1


def test_reapplying_as_received_applies_the_event(client, shop):
    # given: a dead letter whose event is valid as received (rejected by an older, stricter
    # version of the rules), stored as ingestion stores it
    event = shop.r1.sale([("APPLE", "2", "1.99")])
    dead_letter = DeadLetter.objects.create(
        store=shop.store,
        batch_id=uuid.uuid4(),
        position=0,
        event_id=event["event_id"],
        register_code="R1",
        seq=1,
        raw=json.dumps(event).encode(),
        code="invalid_event",
        message="The event is not valid.",
        received_at=timezone.now(),
    )
    user = signed_in(client, "staff")

    # when
    response = action(client, DeadLetter, "reapply_selected", [dead_letter])

    # then
    assert "Re-applied 1 dead letter." in messages_of(response)
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.REAPPLIED
    assert dead_letter.resolved_by == user
    assert "accepted" in dead_letter.resolution_note
    assert Sale.objects.filter(event_id=event["event_id"]).exists()
    assert dead_letter.history.latest().history_user == user


def test_reapplying_an_event_still_invalid_changes_nothing(client, dead_letter):
    signed_in(client, "staff")

    response = action(client, DeadLetter, "reapply_selected", [dead_letter])

    [message] = messages_of(response)
    assert message.startswith("Nothing was re-applied")
    assert "qty" in message
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.OPEN
    assert Event.objects.count() == 1


def test_correct_page_is_prefilled_with_the_raw_json(client, dead_letter):
    signed_in(client, "staff")

    response = client.get(url(DeadLetter, "correct", dead_letter.pk))

    assert response.status_code == 200
    assert response.context["form"]["raw"].value() == bytes(dead_letter.raw).decode()


def test_correcting_and_reapplying_applies_the_event_and_moves_high_water(
    client, shop, dead_letter
):
    # given
    user = signed_in(client, "staff")
    register = Register.objects.get(store=shop.store, code="R1")
    assert RegisterSyncState.objects.get(register=register).high_water == 1

    # when
    response = client.post(
        url(DeadLetter, "correct", dead_letter.pk),
        {"raw": fixed(dead_letter), "note": "qty sent as a number"},
        follow=True,
    )

    # then
    assert "Corrected and re-applied: accepted." in messages_of(response)
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.REAPPLIED
    assert dead_letter.resolved_by == user
    assert dead_letter.resolution_note.startswith("qty sent as a number")
    assert Sale.objects.filter(event_id=dead_letter.event_id).exists()
    assert RegisterSyncState.objects.get(register=register).high_water == 2
    rejected = ReconciliationException.objects.get(type=Type.REJECTED_EVENT)
    assert rejected.status == ReconciliationException.Status.RESOLVED


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda raw: raw, id="unchanged"),
        pytest.param(lambda raw: raw.replace('"seq": 2', '"seq": "two"'), id="bad-seq"),
        pytest.param(lambda raw: raw[:-3], id="not-json"),
    ],
)
def test_correcting_with_a_still_invalid_body_shows_the_error_and_changes_nothing(
    client, shop, dead_letter, body
):
    signed_in(client, "staff")
    raw = json.dumps(json.loads(bytes(dead_letter.raw)), indent=2)
    events, batches = Event.objects.count(), Batch.objects.count()
    versions = dead_letter.history.count()

    response = client.post(url(DeadLetter, "correct", dead_letter.pk), {"raw": body(raw)})

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["raw"]
    assert "not valid" in form.errors["raw"][0]
    assert form.errors["raw"][0] in html.unescape(response.content.decode())
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.OPEN
    assert dead_letter.resolution_note == ""
    assert (Event.objects.count(), Batch.objects.count()) == (events, batches)
    assert dead_letter.history.count() == versions


def test_correcting_for_a_register_of_another_store_is_refused(client, shop, dead_letter):
    other = StoreFactory(code="S02")
    RegisterFactory(store=other, code="R9")
    signed_in(client, "staff")
    raw = fixed(dead_letter).replace('"register": "R1"', '"register": "R9"')

    response = client.post(url(DeadLetter, "correct", dead_letter.pk), {"raw": raw})

    assert response.status_code == 200
    assert "R9" in str(response.context["form"].non_field_errors())
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.OPEN


def test_voiding_needs_a_reason_and_records_it(client, dead_letter):
    user = signed_in(client, "staff")
    void_url = url(DeadLetter, "void", dead_letter.pk)

    assert client.get(void_url).status_code == 200
    refused = client.post(void_url, {"post": "yes", "text": "  "})
    assert refused.status_code == 200
    assert refused.context["form"].errors["text"]
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.OPEN

    response = client.post(void_url, {"post": "yes", "text": "Test sale on training till."})

    assert response.status_code == 302
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.VOIDED
    assert dead_letter.resolution_note == "Test sale on training till."
    assert dead_letter.resolved_by == user
    latest = dead_letter.history.latest()
    assert (latest.history_user, latest.history_change_reason) == (user, "voided")
    assert client.get(url(DeadLetter, "correct", dead_letter.pk)).status_code == 302


def test_voiding_by_action_asks_for_a_reason_first(client, dead_letter):
    signed_in(client, "staff")

    asked = client.post(
        url(DeadLetter, "changelist"),
        {"action": "void_selected", "_selected_action": [dead_letter.pk]},
    )
    assert asked.status_code == 200
    assert "reason" in asked.content.decode()
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.OPEN

    response = action(
        client, DeadLetter, "void_selected", [dead_letter], post="yes", text="Duplicate till."
    )

    assert "Voided 1 dead letter." in messages_of(response)
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetter.Status.VOIDED


# --- exceptions: decisions ----------------------------------------------------------------------


def test_exceptions_list_filters_by_type_status_severity_and_store(client, shop):
    signed_in(client, "finance")
    price = raise_problem(shop.store)
    other = raise_problem(StoreFactory(code="S02"), Type.SEQ_GAP)
    changelist = url(ReconciliationException, "changelist")

    def found(**query: Any) -> list[int]:
        return [e.pk for e in client.get(changelist, query).context["cl"].result_list]

    assert found(type__exact="price_differs") == [price.pk]
    assert found(severity__exact="blocking") == [other.pk]
    assert found(store__id__exact=shop.store.pk) == [price.pk]
    assert found(status__exact="open") == [other.pk, price.pk]


def test_acknowledging_and_resolving_with_a_note(client, shop):
    user = signed_in(client, "finance")
    exception = raise_problem(shop.store)

    acknowledged = action(client, ReconciliationException, "acknowledge_selected", [exception])
    assert "Acknowledged 1 reconciliation exception." in messages_of(acknowledged)
    exception.refresh_from_db()
    assert exception.status == ReconciliationException.Status.ACKNOWLEDGED

    asked = client.post(
        url(ReconciliationException, "changelist"),
        {"action": "resolve_selected", "_selected_action": [exception.pk]},
    )
    assert asked.status_code == 200
    assert "note" in asked.content.decode()
    resolved = action(
        client, ReconciliationException, "resolve_selected", [exception], post="yes", text="Fixed."
    )

    assert "Resolved 1 reconciliation exception." in messages_of(resolved)
    exception.refresh_from_db()
    assert exception.status == ReconciliationException.Status.RESOLVED
    assert (exception.resolution_note, exception.resolved_by) == ("Fixed.", user)
    reasons = list(exception.history.values_list("history_change_reason", "history_user"))
    assert reasons[:2] == [("resolved", user.pk), ("acknowledged", user.pk)]


def test_auditor_cannot_acknowledge_or_resolve(client, shop):
    signed_in(client, "auditor")
    exception = raise_problem(shop.store)

    action(client, ReconciliationException, "acknowledge_selected", [exception])
    action(client, ReconciliationException, "resolve_selected", [exception], post="yes", text="x")

    exception.refresh_from_db()
    assert exception.status == ReconciliationException.Status.OPEN
    assert exception.history.count() == 1


# --- the sync monitor ---------------------------------------------------------------------------


def register_row(page: str, code: str) -> str:
    match = re.search(rf'<tr class="register-{code}">(.*?)</tr>', page, re.S)
    assert match, page
    return match.group(1)


def cell(row: str, name: str) -> str:
    match = re.search(rf'<td class="{name}">(.*?)</td>', row, re.S)
    assert match, row
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_monitor_shows_gaps_counts_and_clock_skew_after_a_push(client, shop):
    # given: R1 sends 1, 2, 4, an invalid 5 and 6 with an unknown SKU, and another event as 1
    r1 = shop.r1
    one, two = r1.sale([("APPLE", "1", "1.99")]), r1.sale([("APPLE", "1", "1.99")])
    r1.seq += 1  # 3 is never sent
    four = r1.sale([("PEAR", "1", "1.99")])
    five = invalid_sale(r1)
    six = r1.sale([("UNKNOWN", "1", "1.99")])
    again = Till(register="R1", store_code="S01").sale([("PEAR", "2", "1.99")])
    late = (timezone.now() - dt.timedelta(seconds=300)).isoformat()
    result = shop.push(one, two, four, five, six, again, node_time=late)
    assert [r["status"] for r in result["results"]] == [
        "accepted", "accepted", "accepted", "rejected", "held", "conflict",
    ]  # fmt: skip
    signed_in(client, "auditor")

    # when
    page = text(client.get(reverse("admin:sync_monitor")))

    # then
    row = register_row(page, "R1")
    assert cell(row, "high-water") == "2"
    assert cell(row, "max-seq") == "6"
    assert cell(row, "gaps") == "3, 5"
    assert (cell(row, "held"), cell(row, "conflicts"), cell(row, "rejected")) == ("1", "1", "1")
    idle = register_row(page, "R2")
    assert (cell(idle, "high-water"), cell(idle, "gaps")) == ("0", "-")
    node = re.search(rf'<tr class="node-{shop.node_key.prefix}">(.*?)</tr>', page, re.S)
    assert node
    assert 'class="skew-exceeded"' in node.group(1)
    assert re.search(r"-(29\d|300)\.\d s", node.group(1))


def test_monitor_links_open_the_filtered_lists(client, shop):
    r1 = shop.r1
    shop.push(r1.sale([("APPLE", "1", "1.99")]), r1.sale([("UNKNOWN", "1", "1.99")]))
    shop.push(invalid_sale(r1), Till(register="R1", store_code="S01").sale([("PEAR", "1", "1")]))
    shop.push(shop.r2.sale([("APPLE", "1", "1.99")]))
    signed_in(client, "staff")
    page = client.get(reverse("admin:sync_monitor"))
    [entry] = page.context["overview"]
    r1_row = next(row for row in entry["registers"] if row["code"] == "R1")

    def listed(link: str) -> list[Any]:
        response = client.get(link)
        assert response.status_code == 200, link  # an unknown filter would redirect (?e=1)
        return list(response.context["cl"].result_list)

    held = listed(r1_row["held_url"])
    assert [(e.register.code, e.seq, e.status) for e in held] == [("R1", 2, "held")]
    assert len(listed(r1_row["events_url"])) == 2
    [conflict] = listed(r1_row["conflicts_url"])
    assert (conflict.register.code, conflict.seq) == ("R1", 1)
    [dead] = listed(r1_row["rejected_url"])
    assert dead.register_code == "R1"
    assert listed(entry["open_exceptions_url"])


def test_monitor_is_linked_from_the_sync_app_index_and_needs_view_rights(client, shop):
    signed_in(client, "auditor")

    index = client.get(reverse("admin:app_list", args=["sync"]))

    assert reverse("admin:sync_monitor") in index.content.decode()
    client.force_login(UserFactory(roles=[]))
    assert client.get(reverse("admin:sync_monitor")).status_code == 403
