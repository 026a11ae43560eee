"""Cases a review found: a seq far ahead, sessions of two stores, problems that come back,
held events whose blocker arrived behind their back, counts of never-stocked products."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import StockLevel, StockMove
from stores.models import TillSession
from stores.services import node_key_issue
from sync.held import held_events_sweep
from sync.models import Event, ReconciliationException
from tests.factories import ProductFactory
from tests.sync.builders import Till, batch
from tests.sync.conftest import SKU_A

pytestmark = pytest.mark.django_db


def test_a_seq_far_ahead_is_answered_at_once_with_one_gap(push, status, r1: Till) -> None:
    # given: a till that jumps from seq 1 to seq 10**15 (a timestamp used as seq, say)
    first = r1.sale([(SKU_A, "1", "1.99")])
    r1.seq = 10**15 - 1
    far = r1.sale([(SKU_A, "1", "1.99")])

    # when
    response = push(batch([first, far]))

    # then: the batch is applied, high water stops at 1, and the gap is one range
    assert response.status_code == 200, response.content
    assert response.json()["high_water"]["R1"] == 1
    registers = status().json()["registers"]
    assert registers["R1"]["gaps"] == [[2, 10**15 - 1]]
    gap = ReconciliationException.objects.get(type="seq_gap")
    assert gap.details == {"from": 2, "to": 10**15 - 1}


def test_two_stores_may_name_their_sessions_alike(push, store, other_store, products) -> None:
    # given: both stores' nodes call their shift "sess-1"
    other_key = node_key_issue(actor=None, store=other_store)[1]
    mine, theirs = Till(register="R1"), Till(register="R9", store_code="S02")

    # when
    assert push(batch([mine.session_open("sess-1")])).status_code == 200
    other = push(batch([theirs.session_open("sess-1")]), auth=f"Bearer {other_key}")

    # then: two sessions, each its store's; neither overwrote the other
    assert other.status_code == 200, other.content
    sessions = {s.store.code: s for s in TillSession.objects.select_related("store")}
    assert set(sessions) == {"S01", "S02"}
    assert sessions["S01"].register.code == "R1"
    assert sessions["S02"].register.code == "R9"


def test_a_problem_that_comes_back_reopens_its_exception(push, r1: Till) -> None:
    # given: a node whose clock is 10 minutes fast; the exception is raised, then resolved
    fast = (timezone.now() + dt.timedelta(minutes=10)).isoformat()
    assert push(batch([r1.sale([(SKU_A, "1", "1.99")])], node_time=fast)).status_code == 200
    assert push(batch([r1.sale([(SKU_A, "1", "1.99")])])).status_code == 200
    skew = ReconciliationException.objects.get(type="clock_skew")
    assert skew.status == "resolved"

    # when: the clock drifts off again the same day
    assert push(batch([r1.sale([(SKU_A, "1", "1.99")])], node_time=fast)).status_code == 200

    # then: the same exception is open again, with history of each step
    skew.refresh_from_db()
    assert skew.status == "open"
    assert skew.resolved_at is None
    assert skew.history.count() >= 3


def test_the_sweep_applies_exactly_the_events_whose_blocker_arrived(push, tax_rate, r1) -> None:
    # given: two sales held for two unknown SKUs
    waits = r1.sale([("LATER", "1", "2.00")])
    never = r1.sale([("NEVER", "1", "2.00")])
    assert push(batch([waits, never])).status_code == 200
    # one product appears without telling anyone (a raw write: no release task is sent)
    ProductFactory(sku="LATER", tax_rate=tax_rate)

    # when
    applied = held_events_sweep()

    # then
    assert applied == 1
    assert Event.objects.get(event_id=waits["event_id"]).status == "applied"
    assert Event.objects.get(event_id=never["event_id"]).status == "held"
    assert held_events_sweep() == 0


def test_a_count_of_a_never_stocked_product_books_the_whole_count(
    push, products, location, r1: Till
) -> None:
    # when: the first thing ever known of SKU_A's stock here is a count of 7
    response = push(batch([r1.count({SKU_A: "7"})]))

    # then: book stock was 0, the variance is 7, and the level is what was counted
    assert response.status_code == 200
    assert json.loads(response.content)["results"][0]["status"] == "accepted"
    level = StockLevel.objects.get(location=location, product=products[SKU_A])
    assert level.qty == Decimal("7")
    move = StockMove.objects.get(kind="count")
    assert move.qty_delta == Decimal("7")


def test_a_register_of_another_store_cannot_be_reached_by_an_invalid_event(
    push, other_store, r1: Till, counts
) -> None:
    # an event naming S02's register is refused with the whole batch even when malformed
    before = counts()
    broken = {"register": "R9", "seq": "one"}
    response = push(batch([r1.sale([(SKU_A, "1", "1.99")]), broken]))
    assert response.status_code == 403
    assert counts() == before
