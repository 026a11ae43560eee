"""Sales and returns through the HQ API, as pushed by the tills: keyed by event id, with lines
and tenders, amounts as decimal strings, filtered by store, business date, type and register."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from stores.models import Sale
from stores.services import node_key_issue
from tests.factories import PriceFactory, ProductFactory, RegisterFactory, StoreFactory
from tests.sync.builders import Till, batch

pytestmark = pytest.mark.django_db

URL = "/api/v1/sales/"
DAY = dt.date(2026, 11, 23)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    return body["error"]


class Shop:
    """A store with registers R1 and R2 and a node key, pushing through the sync API."""

    def __init__(self, code: str) -> None:
        self.store = StoreFactory(code=code)
        for register in ("R1", "R2"):
            RegisterFactory(store=self.store, code=register)
        self.key = node_key_issue(actor=None, store=self.store)[1]
        self.tills = {r: Till(register=r, store_code=code) for r in ("R1", "R2")}

    def push(self, *events: dict[str, Any]) -> list[str]:
        response = Client().post(
            "/api/v1/sync/push",
            data=batch(list(events)),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.key}",
        )
        assert response.status_code == 200, response.content
        return [result["status"] for result in response.json()["results"]]


@pytest.fixture
def skus() -> list[str]:
    products = [ProductFactory(sku="APPLE"), ProductFactory(sku="PEAR")]
    for product in products:
        PriceFactory(product=product, price=Decimal("1.99"))
    return [p.sku for p in products]


@pytest.fixture
def s01(skus: list[str]) -> Shop:
    return Shop("S01")


@pytest.fixture
def s02(skus: list[str]) -> Shop:
    return Shop("S02")


def event_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["event_id"] for row in response.json()["results"]]


# --- reading ------------------------------------------------------------------------------------


def test_a_sale_reads_with_its_lines_and_tenders_and_decimal_strings(staff_client, s01):
    # given
    sale = s01.tills["R1"].sale([("APPLE", "2", "1.99"), ("PEAR", "0.5", "1.99")])
    assert s01.push(sale) == ["accepted"]

    # when
    response = staff_client.get(URL, {"store": "S01", "business_date": "2026-11-23"})

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["event_id"] == sale["event_id"]
    assert (row["type"], row["store"], row["register"], row["seq"]) == ("sale", "S01", "R1", 1)
    assert row["receipt_no"] == sale["data"]["receipt_no"]
    assert row["business_date"] == "2026-11-23"
    assert row["original_event_id"] is None
    for name in ("net", "tax", "gross"):
        assert isinstance(row[name], str)
        assert Decimal(row[name]) == Decimal(sale["data"]["totals"][name])
    assert [line["sku"] for line in row["lines"]] == ["APPLE", "PEAR"]
    first = row["lines"][0]
    assert first["line_no"] == 1
    assert isinstance(first["qty"], str)
    assert Decimal(first["qty"]) == 2
    assert Decimal(first["unit_price"]) == Decimal("1.99")
    assert Decimal(first["line_total"]) == Decimal("3.98")
    assert Decimal(row["lines"][1]["qty"]) == Decimal("0.5")
    assert len(row["tenders"]) == 1
    tender = row["tenders"][0]
    assert tender["method"] == "cash"
    assert isinstance(tender["amount"], str)
    assert Decimal(tender["amount"]) == Decimal(row["gross"])
    assert tender["offline_authorized"] is False

    detail = staff_client.get(f"{URL}{sale['event_id']}/")
    assert detail.status_code == 200
    assert detail.json() == row


def test_a_return_names_its_original_sale(auditor_client, s01):
    till = s01.tills["R1"]
    sale = till.sale([("APPLE", "2", "1.99")])
    returned = till.return_of(sale, [("APPLE", "1", "1.99")])
    assert s01.push(sale, returned) == ["accepted", "accepted"]

    row = auditor_client.get(f"{URL}{returned['event_id']}/").json()

    assert row["type"] == "return"
    assert row["original_event_id"] == sale["event_id"]
    assert row["lines"][0]["original_line_no"] == 1
    assert Decimal(row["gross"]) == Decimal("1.99")  # positive: the type gives the sign


def test_sales_filter_by_store_business_date_type_and_register(finance_client, s01, s02):
    # given
    r1, r2 = s01.tills["R1"], s01.tills["R2"]
    sale_r1 = r1.sale([("APPLE", "1", "1.99")])
    return_r1 = r1.return_of(sale_r1, [("APPLE", "1", "1.99")])
    sale_r2 = r2.sale([("PEAR", "3", "1.99")])
    r2.day = DAY + dt.timedelta(days=1)
    next_day_r2 = r2.sale([("PEAR", "1", "1.99")])
    elsewhere = s02.tills["R1"].sale([("APPLE", "1", "1.99")])
    s01.push(sale_r1, return_r1, sale_r2, next_day_r2)
    s02.push(elsewhere)

    def found(**query: str) -> set[str]:
        return set(event_ids(finance_client.get(URL, query)))

    # then
    everything = [sale_r1, return_r1, sale_r2, next_day_r2, elsewhere]
    assert found() == {e["event_id"] for e in everything}
    s01_day = {sale_r1["event_id"], return_r1["event_id"], sale_r2["event_id"]}
    assert found(store="S01", business_date="2026-11-23") == s01_day
    assert found(store="S01", business_date="2026-11-24") == {next_day_r2["event_id"]}
    assert found(store="S02") == {elsewhere["event_id"]}
    assert found(store="S01", type="return") == {return_r1["event_id"]}
    assert found(store="S01", type="sale", register="R2") == {
        sale_r2["event_id"],
        next_day_r2["event_id"],
    }
    assert found(register="R1", business_date="2026-11-23") == {
        sale_r1["event_id"],
        return_r1["event_id"],
        elsewhere["event_id"],
    }
    assert found(store="S09") == set()
    assert_error(finance_client.get(URL, {"type": "refund"}), 400, "validation_failed")
    assert_error(finance_client.get(URL, {"business_date": "yesterday"}), 400, "validation_failed")


def test_sales_list_in_register_and_seq_order(staff_client, s01):
    r1, r2 = s01.tills["R1"], s01.tills["R2"]
    events = [r2.sale([("APPLE", "1", "1.99")]), r1.sale([("APPLE", "1", "1.99")])]
    events.append(r1.sale([("PEAR", "1", "1.99")]))
    s01.push(*events)

    rows = staff_client.get(URL, {"store": "S01"}).json()["results"]

    assert [(row["register"], row["seq"]) for row in rows] == [("R1", 1), ("R1", 2), ("R2", 1)]


def test_an_unknown_or_malformed_event_id_is_not_found(staff_client, s01):
    assert_error(staff_client.get(f"{URL}{uuid.uuid4()}/"), 404, "not_found")
    assert_error(staff_client.get(f"{URL}not-a-uuid/"), 404, "not_found")


# --- queries and roles --------------------------------------------------------------------------


def query_count(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def test_the_list_takes_the_same_number_of_queries_for_3_or_30_sales(staff_client, s01):
    till = s01.tills["R1"]
    s01.push(*[till.sale([("APPLE", "1", "1.99"), ("PEAR", "2", "1.99")]) for _ in range(3)])
    few = query_count(staff_client, f"{URL}?store=S01")
    s01.push(*[till.sale([("APPLE", "1", "1.99"), ("PEAR", "2", "1.99")]) for _ in range(27)])

    assert Sale.objects.count() == 30
    assert query_count(staff_client, f"{URL}?store=S01") == few


@pytest.mark.parametrize("role", ["staff", "finance", "auditor"])
def test_every_role_may_read_sales(make_client, s01, role):
    s01.push(s01.tills["R1"].sale([("APPLE", "1", "1.99")]))

    assert make_client(role).get(URL).json()["count"] == 1


def test_reading_sales_needs_a_role_and_a_sign_in(make_client, s01):
    assert_error(make_client().get(URL), 403, "forbidden")
    assert_error(APIClient().get(URL), 401, "unauthenticated")


def test_sales_are_read_only(make_client, s01):
    sale = s01.tills["R1"].sale([("APPLE", "1", "1.99")])
    s01.push(sale)
    client = make_client(superuser=True)

    assert_error(client.post(URL, {"type": "sale"}, format="json"), 405, "method_not_allowed")
    assert_error(client.delete(f"{URL}{sale['event_id']}/"), 405, "method_not_allowed")
    assert_error(make_client("staff").post(URL, {}, format="json"), 403, "forbidden")
    assert Sale.objects.count() == 1
