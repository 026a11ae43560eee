"""``GET /api/v1/sync/pull`` through HTTP: who may pull, page sizes, paging and re-pulls, ETags,
cursors that are not the server's, what deletes and deactivations look like, what a fresh node
receives, and the exact shape of every entity (``sync-protocol.md``, "Pull").
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.core import signing
from django.utils import timezone

from inventory.models import Currency, Product, TaxRate
from inventory.services import (
    price_delete,
    price_update,
    product_delete,
    product_update,
    products_bulk_upsert,
    tax_rate_update,
)
from stores.models import Cashier, Register
from stores.services import (
    cashier_store_remove,
    node_key_revoke,
    register_delete,
    store_update,
)
from sync.models import NodeSyncState
from tests.sync.feed import scenery
from tests.sync.feed.nodes import diff, hq_state, pull_db
from tests.sync.feed.scenery import JAN_1, Shop

pytestmark = pull_db

CURSOR_SALT = "tillbook.sync.pull.cursor"


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    """The protocol's error body, exactly: {"error": {"code", "message", "details"}}."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"].strip()
    return body["error"]


def by_key(changes: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["entity"], c["key"]): c for c in changes}


@pytest.fixture
def stocked(berlin: Shop, std_rate: TaxRate) -> Shop:
    """Berlin with seven priced products and a cashier."""
    for n in range(7):
        item = scenery.product(f"P{n}", barcodes=n % 2)
        scenery.price(berlin.price_list, item, f"{n}.99")
    scenery.cashier("C1", berlin.store)
    return berlin


# --- who may pull --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    ["", "Bearer", "Bearer nope", "Bearer tbk_00000000_forged", "Token abc", "Bearer a b"],
    ids=["none", "empty", "garbage", "forged", "user-token", "three-words"],
)
def test_a_pull_without_a_valid_node_key_is_refused(stocked: Shop, auth: str) -> None:
    response = stocked.node().get(auth=auth)

    assert_error(response, 401, "unauthenticated")
    assert "changes" not in response.json()


def test_a_revoked_key_can_no_longer_pull(stocked: Shop) -> None:
    # given: the key works
    node = stocked.node()
    assert node.get().status_code == 200

    # when
    node_key_revoke(node_key=stocked.node_key, actor=None)

    # then
    assert_error(node.get(), 401, "unauthenticated")
    assert_error(node.get(cursor=node.cursor), 401, "unauthenticated")


def test_a_deactivated_stores_key_can_no_longer_pull(stocked: Shop) -> None:
    store_update(store=stocked.store, actor=None, changes={"active": False})

    assert_error(stocked.node().get(), 401, "unauthenticated")


# --- page size -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit", ["0", "5001", "-1", "abc", "1.5", "10 ", "1e3", "+5", "99999999999999999999999"]
)
def test_a_limit_that_is_not_1_to_5000_is_validation_failed(stocked: Shop, limit: str) -> None:
    error = assert_error(stocked.node().get(limit=limit), 400, "validation_failed")

    assert set(error["details"]) == {"limit"}


@pytest.mark.parametrize("limit", ["²", "５", "٣"], ids=["superscript", "fullwidth", "arabic"])
def test_a_non_ascii_digit_limit_is_validation_failed_not_a_500(stocked: Shop, limit: str) -> None:
    # str.isdigit() is true for these; int() refuses the first
    assert_error(stocked.node().get(limit=limit), 400, "validation_failed")


def test_limits_1_and_5000_are_accepted_and_500_is_the_default(
    berlin: Shop, std_rate: TaxRate
) -> None:
    # given: more than 500 changes for Berlin
    products_bulk_upsert(
        actor=None,
        rows=[{"sku": f"B{n:04d}", "name": f"Bulk {n}", "tax_code": "STD"} for n in range(520)],
    )
    node = berlin.node()
    total = len(berlin.node().sync(limit=5000))
    assert total == 520 + 1 + 1 + 2  # products, tax rate, configuration, two registers

    # then
    assert len(node.get(limit="1").json()["changes"]) == 1
    default = node.get().json()
    assert (len(default["changes"]), default["has_more"]) == (500, True)
    everything = node.get(limit="5000").json()
    assert (len(everything["changes"]), everything["has_more"]) == (total, False)


# --- paging --------------------------------------------------------------------------------------


def test_pages_follow_the_cursor_until_has_more_is_false(stocked: Shop) -> None:
    # given
    node = stocked.node()

    # when: pages of three
    bodies = []
    while not bodies or bodies[-1]["has_more"]:
        bodies.append(node.pull(limit=3))
        assert len(bodies) < 50

    # then: full pages while has_more, each change once, oldest first, HQ's state at the end
    assert all(len(b["changes"]) == 3 for b in bodies[:-1])
    assert [b["has_more"] for b in bodies] == [True] * (len(bodies) - 1) + [False]
    changes = [c for b in bodies for c in b["changes"]]
    assert len({(c["entity"], c["key"]) for c in changes}) == len(changes)
    assert [c["version"] for c in changes] == sorted(c["version"] for c in changes)
    assert node.state == hq_state(stocked.store), diff(node.state, hq_state(stocked.store))
    # and afterwards: nothing new, the same cursor back
    idle = node.get(cursor=node.cursor).json()
    assert idle == {"changes": [], "cursor": node.cursor, "has_more": False}


def test_has_more_is_false_only_when_the_node_holds_hqs_current_state(stocked: Shop) -> None:
    # given: a fresh node starts paging
    node = stocked.node()
    node.pull(limit=2)

    # when: HQ adds a register while the node pages, and the node follows has_more
    scenery.register(stocked.store, "R3")
    node.sync(limit=2)

    # then
    assert node.state == hq_state(stocked.store), diff(node.state, hq_state(stocked.store))


def test_changes_made_while_a_node_pages_arrive_in_its_next_poll(stocked: Shop) -> None:
    # given: a fresh node starts paging
    node = stocked.node()
    node.pull(limit=2)

    # when: HQ changes things while it pages; it finishes, and goes on polling
    scenery.register(stocked.store, "R3")
    price_delete(price=Product.objects.get(sku="P6").prices.get(), actor=None)
    node.sync(limit=2)
    node.catch_up(limit=2)

    # then: what was committed meanwhile arrived, the delete included
    latest = by_key(node.received)
    assert latest[("register", "R3")]["op"] == "upsert"
    assert latest[("price", "P6@2026-01-01")]["op"] == "delete"
    assert node.state == hq_state(stocked.store), diff(node.state, hq_state(stocked.store))


def test_a_page_pulled_again_with_the_same_cursor_is_the_same_answer(stocked: Shop) -> None:
    # given: a node that has taken two pages
    node = stocked.node()
    node.pull(limit=4)
    second_cursor = node.cursor
    second = node.get(cursor=second_cursor, limit=4)
    assert second.status_code == 200

    # when: the answer to page two is lost and the node asks again (twice)
    again = node.get(cursor=second_cursor, limit=4)
    and_again = node.get(cursor=second_cursor, limit=4)

    # then: byte for byte the same answer, and applying it twice changes nothing
    assert again.content == second.content == and_again.content
    for change in second.json()["changes"] + again.json()["changes"]:
        node.apply(change)
    node.cursor = again.json()["cursor"]
    node.sync(limit=4)
    assert node.state == hq_state(stocked.store)


def test_a_repull_after_a_change_brings_the_change_and_nothing_is_lost(stocked: Shop) -> None:
    # given: a node in sync, and the cursor it held one poll ago
    node = stocked.node()
    node.sync()
    old_cursor = node.cursor

    # when: a product changes, the node pulls, loses the answer, and pulls from the old cursor
    product_update(product=Product.objects.get(sku="P3"), actor=None, changes={"name": "Renamed"})
    first = node.get(cursor=old_cursor).json()
    second = node.get(cursor=old_cursor).json()

    # then: both answers carry the change
    assert [c["key"] for c in first["changes"]] == ["P3"]
    assert first["changes"] == second["changes"]
    assert first["changes"][0]["data"]["name"] == "Renamed"


def test_an_unchanged_answer_is_304_with_its_etag_and_200_after_a_change(stocked: Shop) -> None:
    # given: a node in sync, polling with its cursor
    node = stocked.node()
    node.sync()
    first = node.get(cursor=node.cursor)
    assert first.status_code == 200
    etag = first["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')

    # when: it polls again with the ETag
    unchanged = node.get(cursor=node.cursor, etag=etag)

    # then: 304, no body, the same ETag
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == etag

    # when: something changes for the store
    register_delete(register=Register.objects.get(store=stocked.store, code="R2"), actor=None)
    changed = node.get(cursor=node.cursor, etag=etag)

    # then: 200 with the change and a new ETag
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert [(c["entity"], c["key"], c["op"]) for c in changed.json()["changes"]] == [
        ("register", "R2", "delete")
    ]


def test_an_idle_node_still_gets_304_a_minute_later(stocked: Shop) -> None:
    # given: a node in sync, and the ETag of its idle poll
    node = stocked.node()
    node.sync()
    etag = node.get(cursor=node.cursor)["ETag"]

    # when: it polls again later (the cursor must not carry the time it was signed)
    with mock.patch("time.time", return_value=time.time() + 61):
        later = node.get(cursor=node.cursor, etag=etag)

    # then
    assert later.status_code == 304


def test_pulls_are_recorded_every_30_seconds_and_reaching_the_end_is_noted(
    stocked: Shop,
) -> None:
    # given: a node that pages part of the way, then to the end of the feed
    node = stocked.node()
    started = timezone.now()
    node.pull(limit=2)
    state = NodeSyncState.objects.get(store=stocked.store)
    assert state.last_pull_at >= started
    assert state.pull_current_at is None
    node.sync()
    state.refresh_from_db()
    assert state.pull_current_at is not None
    first = (state.last_pull_at, state.pull_current_at)

    # when: it polls again within the resolution, then 31 s later
    node.pull()
    state.refresh_from_db()
    unchanged = (state.last_pull_at, state.pull_current_at)
    later = timezone.now() + dt.timedelta(seconds=31)
    with mock.patch("django.utils.timezone.now", return_value=later):
        node.pull()
    state.refresh_from_db()

    # then: the quick poll wrote nothing; the later one moved both times
    assert unchanged == first
    assert state.last_pull_at == later
    assert state.pull_current_at == later


def test_an_etag_of_another_answer_does_not_give_304(stocked: Shop) -> None:
    node = stocked.node()
    page = node.get(limit=2)

    response = node.get(cursor=page.json()["cursor"], limit=2, etag=page["ETag"])

    assert response.status_code == 200
    assert response.json()["changes"]


# --- cursors that are not the server's -----------------------------------------------------------


def _flip(token: str, at: int) -> str:
    replacement = "B" if token[at] == "A" else "A"
    return token[:at] + replacement + token[at + 1 :]


def _signed(payload: Any, **kwargs: Any) -> str:
    salt = kwargs.pop("salt", CURSOR_SALT)
    return signing.Signer(salt=salt, **kwargs).sign_object(payload, compress=True)


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "truncated",
        "flipped-in-payload",
        "flipped-in-signature",
        "other-store",
        "other-secret",
        "other-salt",
        "other-protocol-version",
        "not-a-dict",
        "huge",
        "just-over-the-length-limit",
        "nul-and-emoji",
        "colons",
    ],
)
def test_a_cursor_the_server_did_not_issue_for_this_store_is_invalid_cursor(
    stocked: Shop, zurich: Shop, bad: str
) -> None:
    # given: a genuine cursor of Berlin's, mid-delta, and one of Zurich's
    node = stocked.node()
    node.pull(limit=2)
    genuine = node.cursor
    assert genuine
    theirs = zurich.node()
    theirs.pull(limit=1)
    mine = {"v": 1, "s": stocked.store.pk, "a": None, "u": None, "p": None, "i": False}
    cursor = {
        "garbage": "not-a-cursor",
        "truncated": genuine[:-3],
        "flipped-in-payload": _flip(genuine, len(genuine) // 3),
        "flipped-in-signature": _flip(genuine, len(genuine) - 5),
        "other-store": theirs.cursor,
        "other-secret": _signed(mine, key="other"),
        "other-salt": _signed(mine, salt="tillbook.something.else"),
        "other-protocol-version": _signed({**mine, "v": 2}),
        "not-a-dict": _signed([1, stocked.store.pk]),
        "huge": "x" * 100_000,
        "just-over-the-length-limit": genuine + "A" * (4097 - len(genuine)),
        "nul-and-emoji": genuine[:10] + "\x00🙂" + genuine[10:],
        "colons": ":::",
    }[bad]

    # when
    response = node.get(cursor=cursor, limit=2)

    # then: 400 invalid_cursor, never a 500, and the genuine cursor still works
    assert_error(response, 400, "invalid_cursor")
    assert node.get(cursor=genuine, limit=2).status_code == 200


def test_an_empty_cursor_is_a_pull_from_nothing(stocked: Shop) -> None:
    node = stocked.node()

    response = node.client.get(
        "/api/v1/sync/pull?cursor=&limit=500", HTTP_AUTHORIZATION=f"Bearer {node.key}"
    )

    assert response.status_code == 200
    assert len(response.json()["changes"]) == len(hq_state(stocked.store))


# --- deletes, deactivations, tombstones ----------------------------------------------------------


def test_deletes_and_deactivations_are_sent_as_such(stocked: Shop) -> None:
    # given: a node in sync
    node = stocked.node()
    node.sync()
    p1 = Product.objects.get(sku="P1")
    p2 = Product.objects.get(sku="P2")
    person = Cashier.objects.get(code="C1")

    # when
    product_update(product=p1, actor=None, changes={"active": False})
    price_delete(price=p2.prices.get(), actor=None)
    assert product_delete(product=Product.objects.get(sku="P4"), actor=None)
    register_delete(register=Register.objects.get(store=stocked.store, code="R1"), actor=None)
    cashier_store_remove(cashier=person, store=stocked.store, actor=None)
    changes = by_key(node.sync())

    # then: a deactivated product is an upsert saying so; the rest are deletes without data
    assert changes[("product", "P1")]["op"] == "upsert"
    assert changes[("product", "P1")]["data"]["active"] is False
    for entry in [
        ("price", "P2@2026-01-01"),
        ("product", "P4"),
        ("price", "P4@2026-01-01"),
        ("register", "R1"),
        ("cashier", "C1"),
    ]:
        assert (changes[entry]["op"], changes[entry]["data"]) == ("delete", None), entry
    assert ("product", "P2") not in changes  # only its price went
    assert node.state == hq_state(stocked.store), diff(node.state, hq_state(stocked.store))


def test_a_fresh_node_receives_no_tombstones(stocked: Shop) -> None:
    # given: history full of deletes
    for n in (1, 3):
        assert product_delete(product=Product.objects.get(sku=f"P{n}"), actor=None)
    price_delete(price=Product.objects.get(sku="P2").prices.get(), actor=None)
    register_delete(register=Register.objects.get(store=stocked.store, code="R2"), actor=None)
    cashier_store_remove(cashier=Cashier.objects.get(code="C1"), store=stocked.store, actor=None)
    price_update(
        price=Product.objects.get(sku="P5").prices.get(),
        actor=None,
        changes={"valid_from": dt.date(2026, 2, 1)},
    )

    # when: a new node pulls everything, in small pages
    node = stocked.node()
    changes = node.sync(limit=2)

    # then: only upserts, and exactly HQ's state
    assert {c["op"] for c in changes} == {"upsert"}
    assert node.state == hq_state(stocked.store), diff(node.state, hq_state(stocked.store))


@pytest.fixture
def switched(stocked: Shop) -> Shop:
    """Berlin moved from list DE to list PROMO (EUR), which prices P0-P2 from January."""
    promo = scenery.price_list("PROMO", "EUR")
    for n in range(3):
        scenery.price(promo, Product.objects.get(sku=f"P{n}"), f"{n}.49")
    store_update(store=stocked.store, actor=None, changes={"price_list": promo})
    return stocked.refresh()


def test_a_node_following_a_list_switch_ends_with_the_new_lists_prices(stocked: Shop) -> None:
    # given: a node in sync on list DE
    node = stocked.node()
    node.sync()
    promo = scenery.price_list("PROMO", "EUR")
    scenery.price(promo, Product.objects.get(sku="P0"), "0.49")

    # when: the store switches, then the new list changes
    store_update(store=stocked.store, actor=None, changes={"price_list": promo})
    node.sync(limit=3)
    scenery.price(promo, Product.objects.get(sku="P6"), "6.49", valid_from=JAN_1)
    node.sync(limit=3)

    # then
    prices = {k for (e, k) in node.state if e == "price"}
    assert prices == {"P0@2026-01-01", "P6@2026-01-01"}
    assert node.state == hq_state(stocked.store), diff(node.state, hq_state(stocked.store))
    assert node.state[("store_config", "S01")]["price_list"] == "PROMO"


def test_a_fresh_node_after_a_list_switch_receives_no_tombstones(switched: Shop) -> None:
    # given: after the switch, one of the new list's prices is deleted
    price_delete(price=switched.price_list.prices.get(product__sku="P1"), actor=None)

    # when
    changes = switched.node().sync(limit=2)

    # then
    assert {c["op"] for c in changes} == {"upsert"}, [c for c in changes if c["op"] != "upsert"]


def test_a_fresh_node_after_a_list_switch_holds_no_phantom_price(switched: Shop) -> None:
    # given: after the switch, a price of the new list moves to another start date
    price_update(
        price=switched.price_list.prices.get(product__sku="P1"),
        actor=None,
        changes={"valid_from": dt.date(2026, 2, 1)},
    )

    # when
    node = switched.node()
    for change in node.get(limit=5000).json()["changes"]:  # applied without the key check
        entry = (change["entity"], change["key"])
        if change["op"] == "delete":
            node.entries.pop(entry, None)
        else:
            node.entries[entry] = (change["version"], change["data"])

    # then: exactly HQ's prices, each under the key its data names
    assert node.state == hq_state(switched.store), diff(node.state, hq_state(switched.store))


# --- future prices -------------------------------------------------------------------------------


def test_a_price_valid_from_tomorrow_is_sent_ahead_with_its_valid_from(stocked: Shop) -> None:
    # given: a node in sync; the store's local dates
    node = stocked.node()
    node.sync()
    today = timezone.localdate(timezone=stocked.store.tzinfo)
    tomorrow = today + dt.timedelta(days=1)
    p0 = Product.objects.get(sku="P0")
    current = p0.prices.get()

    # when: today's price ends today and a new one starts tomorrow
    price_update(price=current, actor=None, changes={"valid_to": today})
    scenery.price(stocked.price_list, p0, "0.89", valid_from=tomorrow)
    changes = by_key(node.sync())

    # then: both, today's with its end and tomorrow's with its start, before tomorrow comes
    assert changes[("price", "P0@2026-01-01")]["data"]["valid_to"] == today.isoformat()
    ahead = changes[("price", f"P0@{tomorrow.isoformat()}")]
    assert ahead["op"] == "upsert"
    assert ahead["data"] == {
        "sku": "P0",
        "price": "0.89",
        "valid_from": tomorrow.isoformat(),
        "valid_to": None,
    }
    assert node.state == hq_state(stocked.store)


def test_a_currency_whose_decimals_change_is_sent_again_with_its_prices(stocked: Shop) -> None:
    # given: a node in sync on an EUR store (two decimals)
    node = stocked.node()
    node.sync()

    # when: ISO 4217 gives the euro three decimals (a migration's plain UPDATE)
    Currency.objects.filter(code="EUR").update(minor_units=3)
    try:
        changes = by_key(node.sync())
    finally:
        Currency.objects.filter(code="EUR").update(minor_units=2)

    # then: the store's configuration and every price of its list come again, re-quantized
    assert changes[("store_config", "S01")]["data"]["currency_minor_units"] == 3
    prices = {key: c["data"]["price"] for (entity, key), c in changes.items() if entity == "price"}
    assert prices == {f"P{n}@2026-01-01": f"{n}.990" for n in range(7)}


# --- what each entity carries --------------------------------------------------------------------


def test_each_entity_carries_the_fields_the_protocol_names(
    berlin: Shop, tokyo: Shop, std_rate: TaxRate
) -> None:
    # given
    item = scenery.product("CHEESE", unit="kg", weighed=True, barcodes=2)
    codes = sorted(item.barcodes.values_list("code", flat=True))
    scenery.price(berlin.price_list, item, "12.9")
    scenery.price(tokyo.price_list, item, "1290")
    person = scenery.cashier("C9", berlin.store, tokyo.store, role="supervisor", pin="4711")
    store_update(
        store=tokyo.store,
        actor=None,
        changes={"offline_card_limit": Decimal("5000"), "supervisor_operations": ["reprint"]},
    )

    # when
    mine = by_key(berlin.node().sync())
    theirs = by_key(tokyo.node().sync())

    # then
    assert mine[("product", "CHEESE")]["data"] == {
        "sku": "CHEESE",
        "name": "Product CHEESE",
        "barcodes": codes,
        "unit": "kg",
        "tax_code": "STD",
        "active": True,
        "weighed": True,
    }
    assert mine[("price", "CHEESE@2026-01-01")]["data"] == {
        "sku": "CHEESE",
        "price": "12.90",
        "valid_from": "2026-01-01",
        "valid_to": None,
    }
    assert theirs[("price", "CHEESE@2026-01-01")]["data"]["price"] == "1290"
    assert mine[("tax_rate", "STD")]["data"] == {
        "code": "STD",
        "name": "Rate STD",
        "rate": "19.0000",
        "inclusive": True,
        "active": True,
    }
    assert theirs[("store_config", "S03")]["data"] == {
        "code": "S03",
        "name": "Store S03",
        "timezone": "Asia/Tokyo",
        "currency": "JPY",
        "currency_minor_units": 0,
        "price_list": "JP",
        "active": True,
        "offline": {"card_limit": "5000", "warn_after_hours": 4},
        "supervisor_operations": ["reprint"],
    }
    assert mine[("register", "R1")]["data"] == {"code": "R1", "name": "Till R1", "active": True}
    cashier = mine[("cashier", "C9")]["data"]
    assert cashier == {
        "code": "C9",
        "name": "Cashier C9",
        "role": "supervisor",
        "pin_hash": person.pin_hash,
        "active": True,
    }
    assert "4711" not in cashier["pin_hash"]
    assert theirs[("cashier", "C9")]["data"] == cashier


@pytest.mark.parametrize(
    ("percent", "wire"),
    [("19", "19.0000"), ("20", "20.0000"), ("10", "10.0000"), ("8.875", "8.8750"), ("0", "0.0000")],
)
def test_a_tax_rate_is_sent_as_stored_never_in_exponent_notation(
    berlin: Shop, percent: str, wire: str
) -> None:
    scenery.rate("VAT", percent)

    changes = by_key(berlin.node().sync())

    assert changes[("tax_rate", "VAT")]["data"]["rate"] == wire


def test_a_following_node_holds_hqs_state_after_every_kind_of_change(stocked: Shop) -> None:
    # given
    node = stocked.node()
    node.sync(limit=4)

    # when: one change of each kind, each followed by a poll
    steps = [
        lambda: scenery.product("NEW", barcodes=2),
        lambda: scenery.price(
            stocked.price_list, Product.objects.get(sku="NEW"), "5", valid_from=JAN_1
        ),
        lambda: tax_rate_update(
            tax_rate=TaxRate.objects.get(code="STD"), actor=None, changes={"inclusive": False}
        ),
        lambda: store_update(store=stocked.store, actor=None, changes={"offline_warn_hours": 9}),
        lambda: scenery.register(stocked.store, "R3"),
        lambda: scenery.cashier("C2", stocked.store),
        lambda: product_update(
            product=Product.objects.get(sku="NEW"), actor=None, changes={}, barcodes=[]
        ),
    ]
    for step in steps:
        step()
        node.sync(limit=2)
        # then: after each poll
        assert node.state == hq_state(stocked.store), diff(node.state, hq_state(stocked.store))
