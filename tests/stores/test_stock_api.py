"""Stock on hand through the HQ API: per location and SKU, valued at the product's cost,
filtered by store (the location the store sells from), location and SKU; read-only."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.ledger import Move, stock_moves_record
from inventory.models import StockLevel, StockLocation
from stores.services import node_key_issue
from tests.factories import ProductFactory, RegisterFactory, StockLocationFactory, StoreFactory
from tests.sync.builders import Till, batch

pytestmark = pytest.mark.django_db

URL = "/api/v1/stock/"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    return body["error"]


def push(store, *events: dict[str, Any]) -> None:
    key = node_key_issue(actor=None, store=store)[1]
    response = Client().post(
        "/api/v1/sync/push",
        data=batch(list(events)),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200, response.content
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}


def receive(location: StockLocation, product, qty: str) -> None:
    """Warehouse stock (no till sends it): written through the ledger like any move."""
    stock_moves_record(
        moves=[
            Move(
                location_id=location.pk,
                product_id=product.pk,
                qty_delta=Decimal(qty),
                kind="adjustment",
                business_date=dt.date(2026, 11, 23),
                source_event=uuid.uuid4(),
                line_no=1,
                reason="receipt",
            )
        ],
        now=timezone.now(),
    )


def rows(response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.fixture
def estate() -> dict[str, Any]:
    apple = ProductFactory(sku="APPLE", name="Apple", cost=Decimal("0.4000"))
    cheese = ProductFactory(
        sku="CHEESE", name="Cheese", unit="kg", weighed=True, cost=Decimal("12.3456")
    )
    s01, s02 = StoreFactory(code="S01"), StoreFactory(code="S02")
    for store in (s01, s02):
        RegisterFactory(store=store, code="R1")
    warehouse = StockLocationFactory(code="WH1", kind=StockLocation.Kind.WAREHOUSE)
    till = Till(register="R1", store_code="S01")
    push(
        s01,
        till.adjustment("APPLE", "10", reason="receipt"),
        till.adjustment("CHEESE", "5.000", reason="receipt"),
        till.sale([("APPLE", "3", "0.99"), ("CHEESE", "0.375", "19.90")]),
    )
    push(s02, Till(register="R1", store_code="S02").adjustment("APPLE", "4", reason="receipt"))
    receive(warehouse, apple, "100")
    return {"s01": s01, "s02": s02, "warehouse": warehouse, "apple": apple, "cheese": cheese}


def test_on_hand_per_location_and_sku_with_value_at_cost(staff_client, estate):
    # when
    found = rows(staff_client.get(URL))

    # then
    assert [(r["store"], r["location"], r["sku"]) for r in found] == [
        ("S01", "S01", "APPLE"),
        ("S01", "S01", "CHEESE"),
        ("S02", "S02", "APPLE"),
        (None, "WH1", "APPLE"),
    ]
    apple, cheese = found[0], found[1]
    assert apple["qty"] == "7.000"
    assert apple["cost"] == "0.4000"
    assert apple["value"] == "2.8000"
    assert apple["name"] == "Apple"
    assert apple["unit"] == "each"
    # 4.625 kg × 12.3456 = 57.09840, half-up to the money precision
    assert cheese["qty"] == "4.625"
    assert cheese["unit"] == "kg"
    assert cheese["value"] == "57.0984"
    assert found[3]["value"] == "40.0000"
    for row in found:
        for name in ("qty", "cost", "value"):
            assert isinstance(row[name], str)


def test_value_rounds_half_up_to_the_money_precision(staff_client, estate):
    product = ProductFactory(sku="NUTS", cost=Decimal("0.0005"))
    receive(estate["warehouse"], product, "0.500")  # 0.00025 exactly

    [row] = rows(staff_client.get(URL, {"sku": "NUTS"}))

    assert row["value"] == "0.0003"


def test_stock_filters_by_store_location_and_sku(auditor_client, estate):
    def found(**query: str) -> list[tuple[str, str]]:
        return [(r["location"], r["sku"]) for r in rows(auditor_client.get(URL, query))]

    assert found(store="S01") == [("S01", "APPLE"), ("S01", "CHEESE")]
    assert found(store="S02") == [("S02", "APPLE")]
    assert found(store="S01", sku="CHEESE") == [("S01", "CHEESE")]
    assert found(sku="APPLE") == [("S01", "APPLE"), ("S02", "APPLE"), ("WH1", "APPLE")]
    assert found(location="WH1") == [("WH1", "APPLE")]
    assert found(store="WH1") == []  # a warehouse is not a store
    assert found(store="S99") == []
    assert found(sku="NOPE") == []


def test_a_store_is_found_by_its_code_even_when_its_location_is_named_otherwise(
    staff_client, estate
):
    location = StockLocationFactory(code="FLOOR-7", kind=StockLocation.Kind.STORE)
    store = StoreFactory(code="S07", stock_location=location)
    receive(location, estate["apple"], "2")

    [row] = rows(staff_client.get(URL, {"store": store.code}))

    assert (row["store"], row["location"], row["qty"]) == ("S07", "FLOOR-7", "2.000")


def query_count(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def test_the_list_takes_the_same_number_of_queries_for_3_or_30_levels(staff_client, db):
    stores = [StoreFactory(code=f"S{n}") for n in range(3)]
    products = [ProductFactory() for _ in range(10)]
    for store in stores:
        receive(store.stock_location, products[0], "1")
    few = query_count(staff_client, URL)
    for store in stores:
        for product in products[1:]:
            receive(store.stock_location, product, "1")

    assert StockLevel.objects.count() == 30
    assert query_count(staff_client, URL) == few


@pytest.mark.parametrize("role", ["staff", "finance", "auditor"])
def test_every_role_may_read_stock(make_client, estate, role):
    assert len(rows(make_client(role).get(URL))) == 4


def test_reading_stock_needs_a_role_and_a_sign_in(make_client, estate):
    assert_error(make_client().get(URL), 403, "forbidden")
    assert_error(APIClient().get(URL), 401, "unauthenticated")


def test_stock_is_read_only(make_client, estate):
    client = make_client(superuser=True)

    response = client.post(URL, {"sku": "APPLE", "qty": "1"}, format="json")

    assert_error(response, 405, "method_not_allowed")
    assert StockLevel.objects.get(location__code="WH1").qty == Decimal("100")
