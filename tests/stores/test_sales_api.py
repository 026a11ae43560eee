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


def test_each_sale_of_a_page_across_stores_and_days_reads_with_its_own_lines_and_tenders(
    staff_client, s01, s02
):
    # given: sales of two stores on two days, so that the lines and tenders query names both
    # stores and both days and must still give each sale only its own
    r1, other = s01.tills["R1"], s02.tills["R1"]
    first = r1.sale([("APPLE", "1", "1.99"), ("PEAR", "2", "1.99")])
    r1.day = DAY + dt.timedelta(days=1)
    second = r1.sale([("PEAR", "3", "1.99")])
    elsewhere = other.sale([("APPLE", "4", "1.99")])
    s01.push(first, second)
    s02.push(elsewhere)

    # when
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(URL)

    # then
    rows = response.json()["results"]
    assert len(rows) == 3
    # Lines and tenders have no index on the sale alone: their queries name the sales'
    # stores and days, so that (store, business date, sale) finds them.
    details = [
        q["sql"]
        for q in queries
        if '"stores_saleline"' in q["sql"] or '"stores_tender"' in q["sql"]
    ]
    assert len(details) == 2
    for sql in details:  # one (store, day, sales) group for each of the 3 store-days
        assert sql.count('"business_date" = ') == 3, sql
        assert sql.count('"store_id" = ') == 3, sql
    by_id = {row["event_id"]: row for row in rows}
    for sent in (first, second, elsewhere):
        row = by_id[sent["event_id"]]
        assert [(li["sku"], Decimal(li["qty"])) for li in row["lines"]] == [
            (li["sku"], Decimal(li["qty"])) for li in sent["data"]["lines"]
        ]
        assert [Decimal(t["amount"]) for t in row["tenders"]] == [
            Decimal(t["amount"]) for t in sent["data"]["tenders"]
        ]
        detail = staff_client.get(f"{URL}{sent['event_id']}/").json()
        assert detail["lines"] == row["lines"]
        assert detail["tenders"] == row["tenders"]


@pytest.mark.postgres
def test_a_pages_lines_and_tenders_are_found_through_the_store_day_sale_index(
    staff_client, s01, s02
):
    # given: sales of two stores on two days, and 20,000 more lines and tenders on each of
    # S01's two days (with statistics), so that the plan is the one real days get
    till, other = s01.tills["R1"], s02.tills["R1"]
    sales = [till.sale([("APPLE", "1", "1.99")]), other.sale([("PEAR", "1", "1.99")])]
    till.day = DAY + dt.timedelta(days=1)
    sales.append(till.sale([("PEAR", "2", "1.99")]))
    s01.push(sales[0], sales[2])
    s02.push(sales[1])
    with connection.cursor() as cursor:
        for table, values in (
            ("stores_saleline", "(sale_id, line_no, sku, qty, unit_price, discount, tax_code, "
             "line_total, price_override_reason, store_id, business_date) SELECT "
             "gen_random_uuid(), 1, 'APPLE', 1, 1.99, 0, 'STD', 1.99, '', %s, %s"),
            ("stores_tender", "(sale_id, position, method, amount, change, reference, "
             "offline_authorized, store_id, business_date) SELECT "
             "gen_random_uuid(), 0, 'cash', 1.99, 0, '', false, %s, %s"),
        ):  # fmt: skip
            for day in (DAY, till.day):
                cursor.execute(
                    f"INSERT INTO {table} {values} FROM generate_series(1, 20000)",
                    [s01.store.pk, day],
                )
            cursor.execute(f"ANALYZE {table}")

    # when
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(URL)

    # then: the index finds each store-day's sales' rows, not all the rows of their days
    assert response.status_code == 200
    assert response.json()["count"] == 3
    details = [
        q["sql"]
        for q in queries
        if '"stores_saleline"' in q["sql"] or '"stores_tender"' in q["sql"]
    ]
    assert len(details) == 2
    with connection.cursor() as cursor:
        for sql in details:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "_store_date_sale" in plan, plan
            conditions = [line for line in plan.splitlines() if "Index Cond" in line]
            assert conditions, plan
            assert all("sale_id" in line for line in conditions), plan


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
