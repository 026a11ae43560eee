"""Stores, their registers and node keys through the HQ API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import Currency, StockLocation
from stores import services
from stores.models import NodeKey, Register, Store
from tests.factories import (
    PriceListFactory,
    RegisterFactory,
    StockLocationFactory,
    StoreFactory,
)

pytestmark = pytest.mark.django_db

OFFLINE_RULES = ("offline_card_limit", "offline_warn_hours", "supervisor_operations")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"].strip()
    return body["error"]


def query_count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def store_body(**overrides: object) -> dict:
    body = {
        "code": "S1",
        "name": "Berlin Mitte",
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "price_list": "DE",
    }
    body.update(overrides)
    return body


# --- stores -------------------------------------------------------------------------------------


def test_creating_a_store_creates_its_stock_location(staff_client):
    PriceListFactory(code="DE")

    response = staff_client.post("/api/v1/stores/", store_body())

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "S1"
    assert body["stock_location"] == "S1"
    assert body["registers"] == []
    store = Store.objects.get(code="S1")
    assert store.stock_location.kind == StockLocation.Kind.STORE
    assert store.stock_location.code == "S1"
    assert store.price_list.code == "DE"


def test_store_can_sell_from_a_named_existing_location(staff_client):
    PriceListFactory(code="DE")
    StockLocationFactory(code="BACKROOM")

    response = staff_client.post("/api/v1/stores/", store_body(stock_location="BACKROOM"))

    assert response.status_code == 201, response.content
    assert Store.objects.get(code="S1").stock_location.code == "BACKROOM"
    assert not StockLocation.objects.filter(code="S1").exists()


def test_store_whose_code_is_taken_by_a_location_is_refused(staff_client):
    PriceListFactory(code="DE")
    StockLocationFactory(code="S1")

    response = staff_client.post("/api/v1/stores/", store_body())

    assert_error(response, 409, "conflict")
    assert not Store.objects.exists()


def test_store_price_list_in_another_currency_is_refused_and_nothing_is_created(staff_client):
    PriceListFactory(code="DE")

    response = staff_client.post("/api/v1/stores/", store_body(currency="CHF"))

    error = assert_error(response, 400, "validation_failed")
    assert "price_list" in error["details"]
    assert not Store.objects.exists()
    assert not StockLocation.objects.exists()


def test_store_with_an_unknown_time_zone_is_refused(staff_client):
    PriceListFactory(code="DE")

    response = staff_client.post("/api/v1/stores/", store_body(timezone="Europe/Atlantis"))

    error = assert_error(response, 400, "validation_failed")
    assert "timezone" in error["details"]
    assert not Store.objects.exists()
    assert not StockLocation.objects.exists()


def test_store_is_read_and_changed_by_code(staff_client):
    StoreFactory(code="S1", name="Old name")

    read = staff_client.get("/api/v1/stores/S1/")
    changed = staff_client.patch(
        "/api/v1/stores/S1/", {"name": "New name", "timezone": "Europe/Vienna"}
    )

    assert read.status_code == 200
    assert read.json()["currency"] == "EUR"
    assert changed.status_code == 200, changed.content
    store = Store.objects.get(code="S1")
    assert (store.name, store.timezone) == ("New name", "Europe/Vienna")


def test_store_time_zone_change_to_an_invalid_zone_is_refused(staff_client):
    StoreFactory(code="S1")

    response = staff_client.patch("/api/v1/stores/S1/", {"timezone": "CEST"})

    assert_error(response, 400, "validation_failed")
    assert Store.objects.get(code="S1").timezone == "Europe/Berlin"


def test_store_code_cannot_change(staff_client):
    StoreFactory(code="S1")

    response = staff_client.patch("/api/v1/stores/S1/", {"code": "S2"})

    error = assert_error(response, 400, "validation_failed")
    assert "code" in error["details"]
    assert Store.objects.filter(code="S1").exists()
    assert not Store.objects.filter(code="S2").exists()


def test_store_moved_to_a_price_list_in_another_currency_is_refused(staff_client):
    StoreFactory(code="S1")
    PriceListFactory(code="CH", currency=Currency.objects.get(code="CHF"))

    response = staff_client.patch("/api/v1/stores/S1/", {"price_list": "CH"})

    assert_error(response, 400, "validation_failed")
    assert Store.objects.get(code="S1").price_list.code == "DE"


def test_deleting_a_store_removes_it_and_its_stock_location(staff_client):
    StoreFactory(code="S1")

    response = staff_client.delete("/api/v1/stores/S1/")

    assert response.status_code == 204
    assert not Store.objects.filter(code="S1").exists()
    assert not StockLocation.objects.filter(code="S1").exists()


def test_store_with_registers_cannot_be_deleted(staff_client):
    RegisterFactory(store=StoreFactory(code="S1"))

    response = staff_client.delete("/api/v1/stores/S1/")

    assert_error(response, 409, "in_use")
    assert Store.objects.filter(code="S1").exists()


def test_stores_are_filtered_by_active_and_paginated(staff_client):
    for n in range(3):
        StoreFactory(code=f"S{n}")
    StoreFactory(code="OLD", active=False)

    active = staff_client.get("/api/v1/stores/?active=true&page_size=2").json()
    inactive = staff_client.get("/api/v1/stores/?active=false").json()

    assert active["count"] == 3
    assert [row["code"] for row in active["results"]] == ["S0", "S1"]
    assert active["next"] is not None
    assert active["previous"] is None
    assert [row["code"] for row in inactive["results"]] == ["OLD"]


def test_store_list_query_count_does_not_grow_with_rows(staff_client, django_assert_num_queries):
    def add(start: int, stop: int) -> None:
        for n in range(start, stop):
            RegisterFactory(store=StoreFactory(code=f"S{n:02d}"), code="R1")

    add(0, 3)
    with_three = query_count(staff_client, "/api/v1/stores/")
    add(3, 30)

    with django_assert_num_queries(with_three):
        response = staff_client.get("/api/v1/stores/")
    assert response.json()["count"] == 30
    assert all(row["registers"] == ["R1"] for row in response.json()["results"])


# --- registers ----------------------------------------------------------------------------------


def test_register_is_created_read_changed_and_deleted_by_code(staff_client):
    StoreFactory(code="S1")
    url = "/api/v1/stores/S1/registers/"

    created = staff_client.post(url, {"code": "R1", "name": "Front"})
    assert created.status_code == 201, created.content
    assert created.json()["code"] == "R1"
    assert staff_client.get(f"{url}R1/").json()["name"] == "Front"

    changed = staff_client.patch(f"{url}R1/", {"active": False})
    assert changed.status_code == 200
    assert Register.objects.get(code="R1").active is False

    assert staff_client.delete(f"{url}R1/").status_code == 204
    assert not Register.objects.exists()


def test_register_code_is_unique_within_a_store(staff_client):
    RegisterFactory(store=StoreFactory(code="S1"), code="R1")

    response = staff_client.post("/api/v1/stores/S1/registers/", {"code": "R1"})

    assert_error(response, 400, "validation_failed")
    assert Register.objects.count() == 1


def test_same_register_code_in_two_stores_is_allowed(staff_client):
    RegisterFactory(store=StoreFactory(code="S1"), code="R1")
    StoreFactory(code="S2")

    response = staff_client.post("/api/v1/stores/S2/registers/", {"code": "R1"})

    assert response.status_code == 201, response.content
    assert sorted(Register.objects.values_list("store__code", "code")) == [
        ("S1", "R1"),
        ("S2", "R1"),
    ]


def test_registers_are_listed_per_store(staff_client):
    RegisterFactory(store=StoreFactory(code="S1"), code="R1")
    RegisterFactory(store=StoreFactory(code="S2"), code="R9")

    response = staff_client.get("/api/v1/stores/S1/registers/").json()

    assert [row["code"] for row in response["results"]] == ["R1"]
    assert_error(staff_client.get("/api/v1/stores/S1/registers/R9/"), 404, "not_found")


def test_registers_of_an_unknown_store_are_not_found(staff_client):
    assert_error(staff_client.get("/api/v1/stores/NOPE/registers/"), 404, "not_found")
    assert_error(
        staff_client.post("/api/v1/stores/NOPE/registers/", {"code": "R1"}), 404, "not_found"
    )
    assert not Register.objects.exists()


def test_register_list_query_count_does_not_grow_with_rows(staff_client, django_assert_num_queries):
    store = StoreFactory(code="S1")
    for n in range(3):
        RegisterFactory(store=store, code=f"R{n:02d}")
    with_three = query_count(staff_client, "/api/v1/stores/S1/registers/")
    for n in range(3, 30):
        RegisterFactory(store=store, code=f"R{n:02d}")

    with django_assert_num_queries(with_three):
        response = staff_client.get("/api/v1/stores/S1/registers/")
    assert response.json()["count"] == 30


# --- node keys ----------------------------------------------------------------------------------


def test_issuing_a_node_key_returns_the_key_once(staff_client):
    StoreFactory(code="S1")

    response = staff_client.post("/api/v1/stores/S1/node-keys/", {"label": "till server"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"].startswith(f"tbk_{body['prefix']}_")
    assert body["store"] == "S1"
    assert body["active"] is True
    assert body["created_by"] == staff_client.user.username
    node_key = NodeKey.objects.get(prefix=body["prefix"])
    assert body["key"] not in node_key.digest
    assert services.node_key_authenticate(key=body["key"]) == node_key


def test_node_key_list_never_shows_the_key_or_its_digest(staff_client):
    StoreFactory(code="S1")
    issued = staff_client.post("/api/v1/stores/S1/node-keys/", {}).json()
    digest = NodeKey.objects.get(prefix=issued["prefix"]).digest

    listed = staff_client.get("/api/v1/stores/S1/node-keys/")
    one = staff_client.get(f"/api/v1/stores/S1/node-keys/{issued['prefix']}/")

    assert listed.status_code == 200
    assert [row["prefix"] for row in listed.json()["results"]] == [issued["prefix"]]
    for response in (listed, one):
        text = response.content.decode()
        assert issued["key"] not in text
        assert digest not in text
        assert '"key"' not in text
        assert '"digest"' not in text


def test_revoking_a_node_key_stops_it_authenticating(staff_client):
    StoreFactory(code="S1")
    issued = staff_client.post("/api/v1/stores/S1/node-keys/", {}).json()
    assert services.node_key_authenticate(key=issued["key"]) is not None

    response = staff_client.delete(f"/api/v1/stores/S1/node-keys/{issued['prefix']}/")

    assert response.status_code == 204
    node_key = NodeKey.objects.get(prefix=issued["prefix"])
    assert node_key.revoked_at is not None
    assert node_key.revoked_by == staff_client.user
    assert services.node_key_authenticate(key=issued["key"]) is None
    listed = staff_client.get("/api/v1/stores/S1/node-keys/").json()["results"]
    assert listed[0]["active"] is False


def test_node_key_whose_secret_contains_underscores_authenticates(staff_client, monkeypatch):
    # URL-safe base64 secrets contain "_" in about half of all keys.
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: "a_b_c-d" * 6)
    StoreFactory(code="S1")

    issued = staff_client.post("/api/v1/stores/S1/node-keys/", {}).json()

    assert issued["key"].count("_") > 2
    assert services.node_key_authenticate(key=issued["key"]).prefix == issued["prefix"]


def test_revoking_one_key_leaves_the_others_of_the_store_working(staff_client):
    StoreFactory(code="S1")
    old = staff_client.post("/api/v1/stores/S1/node-keys/", {}).json()
    new = staff_client.post("/api/v1/stores/S1/node-keys/", {}).json()

    staff_client.delete(f"/api/v1/stores/S1/node-keys/{old['prefix']}/")

    assert services.node_key_authenticate(key=old["key"]) is None
    assert services.node_key_authenticate(key=new["key"]).prefix == new["prefix"]


def test_node_key_of_another_store_cannot_be_revoked_through_this_one(staff_client):
    StoreFactory(code="S1")
    StoreFactory(code="S2")
    issued = staff_client.post("/api/v1/stores/S2/node-keys/", {}).json()

    response = staff_client.delete(f"/api/v1/stores/S1/node-keys/{issued['prefix']}/")

    assert_error(response, 404, "not_found")
    assert NodeKey.objects.get(prefix=issued["prefix"]).revoked_at is None


def test_node_key_for_an_inactive_store_is_refused(staff_client):
    StoreFactory(code="S1", active=False)

    response = staff_client.post("/api/v1/stores/S1/node-keys/", {})

    assert_error(response, 400, "validation_failed")
    assert not NodeKey.objects.exists()


def test_auditor_sees_node_keys_but_cannot_issue_or_revoke(staff_client, auditor_client):
    StoreFactory(code="S1")
    issued = staff_client.post("/api/v1/stores/S1/node-keys/", {}).json()

    assert auditor_client.get("/api/v1/stores/S1/node-keys/").status_code == 200
    assert_error(auditor_client.post("/api/v1/stores/S1/node-keys/", {}), 403, "forbidden")
    assert_error(
        auditor_client.delete(f"/api/v1/stores/S1/node-keys/{issued['prefix']}/"),
        403,
        "forbidden",
    )
    assert NodeKey.objects.count() == 1
    assert NodeKey.objects.get().revoked_at is None


def test_node_key_list_query_count_does_not_grow_with_rows(staff_client, django_assert_num_queries):
    store = StoreFactory(code="S1")
    for _ in range(3):
        services.node_key_issue(actor=staff_client.user, store=store)
    with_three = query_count(staff_client, "/api/v1/stores/S1/node-keys/")
    for _ in range(27):
        services.node_key_issue(actor=staff_client.user, store=store)

    with django_assert_num_queries(with_three):
        response = staff_client.get("/api/v1/stores/S1/node-keys/")
    assert response.json()["count"] == 30


# --- offline rules ------------------------------------------------------------------------------


def test_store_offline_rules_have_defaults_and_the_limit_has_the_currencys_decimals(staff_client):
    PriceListFactory(code="DE")
    PriceListFactory(code="JP", currency=Currency.objects.get(code="JPY"))

    euro = staff_client.post("/api/v1/stores/", store_body()).json()
    yen = staff_client.post(
        "/api/v1/stores/", store_body(code="TYO", currency="JPY", price_list="JP")
    ).json()

    assert euro["offline_card_limit"] == "50.00"
    assert yen["offline_card_limit"] == "50"
    assert euro["offline_warn_hours"] == 4
    assert euro["supervisor_operations"] == [
        "price_override",
        "line_discount",
        "basket_discount",
        "return_without_receipt",
        "cash_pay_out",
    ]


def test_store_offline_rules_are_set_and_changed(staff_client):
    PriceListFactory(code="DE")

    created = staff_client.post(
        "/api/v1/stores/",
        store_body(
            offline_card_limit="120.5",
            offline_warn_hours=12,
            supervisor_operations=["void_basket", "reprint"],
        ),
    )
    changed = staff_client.patch(
        "/api/v1/stores/S1/", {"offline_card_limit": "0", "supervisor_operations": []}
    )

    assert created.status_code == 201, created.content
    assert created.json()["offline_card_limit"] == "120.50"
    assert changed.status_code == 200, changed.content
    assert changed.json()["offline_card_limit"] == "0.00"
    store = Store.objects.get(code="S1")
    assert (store.offline_card_limit, store.offline_warn_hours) == (Decimal("0"), 12)
    assert store.supervisor_operations == []
    assert store.history.latest().history_change_reason == "api"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("offline_card_limit", "-1"),
        ("offline_card_limit", 50),  # a JSON number: amounts are strings
        ("offline_card_limit", "50.005"),  # more decimals than EUR has
        ("offline_card_limit", "fifty"),
        ("offline_warn_hours", 0),
        ("offline_warn_hours", 721),
        ("supervisor_operations", ["open_drawer"]),
        ("supervisor_operations", ["reprint", "reprint"]),
        ("supervisor_operations", "reprint"),
    ],
)
def test_bad_offline_rules_are_refused_and_change_nothing(staff_client, field, value):
    StoreFactory(code="S1")
    before = Store.objects.values(*OFFLINE_RULES).get(code="S1")

    response = staff_client.patch("/api/v1/stores/S1/", {field: value})

    error = assert_error(response, 400, "validation_failed")
    assert field in error["details"]
    assert Store.objects.values(*OFFLINE_RULES).get(code="S1") == before


def test_a_store_moving_to_a_currency_without_decimals_must_bring_a_whole_limit(staff_client):
    StoreFactory(code="S1", offline_card_limit=Decimal("50.50"))
    PriceListFactory(code="JP", currency=Currency.objects.get(code="JPY"))

    refused = staff_client.patch("/api/v1/stores/S1/", {"currency": "JPY", "price_list": "JP"})
    moved = staff_client.patch(
        "/api/v1/stores/S1/",
        {"currency": "JPY", "price_list": "JP", "offline_card_limit": "7000"},
    )

    assert "offline_card_limit" in assert_error(refused, 400, "validation_failed")["details"]
    assert moved.status_code == 200, moved.content
    assert moved.json()["offline_card_limit"] == "7000"
