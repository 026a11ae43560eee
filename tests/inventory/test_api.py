"""The catalogue through the HQ API: tax rates, products, price lists, prices, stock locations.

Resources are addressed by business key; writes go through the services, so every test here
checks the answer a client gets and the rows that end up in the database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import models as inventory_models
from inventory.models import Barcode, Currency, Price, PriceList, Product, StockLocation, TaxRate
from tests.factories import (
    BarcodeFactory,
    PriceFactory,
    PriceListFactory,
    ProductFactory,
    StockLocationFactory,
    StoreFactory,
    TaxRateFactory,
    ean13,
)

pytestmark = pytest.mark.django_db


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


# --- tax rates ----------------------------------------------------------------------------------


def test_tax_rate_is_created_read_changed_and_deleted_by_code(staff_client):
    # when
    created = staff_client.post(
        "/api/v1/tax-rates/",
        {"code": "RED", "name": "Reduced rate", "rate": "7.0000", "inclusive": True},
    )
    # then
    assert created.status_code == 201, created.content
    assert created.json() == {
        "code": "RED",
        "name": "Reduced rate",
        "rate": "7.0000",
        "inclusive": True,
        "active": True,
    }
    assert staff_client.get("/api/v1/tax-rates/RED/").json()["rate"] == "7.0000"

    changed = staff_client.patch("/api/v1/tax-rates/RED/", {"rate": "7.5000"})
    assert changed.status_code == 200, changed.content
    assert TaxRate.objects.get(code="RED").rate == Decimal("7.5")

    deleted = staff_client.delete("/api/v1/tax-rates/RED/")
    assert deleted.status_code == 204
    assert not TaxRate.objects.filter(code="RED").exists()


def test_tax_rate_sent_as_a_json_number_is_refused(staff_client):
    response = staff_client.post(
        "/api/v1/tax-rates/", {"code": "RED", "name": "Reduced", "rate": 7.0}
    )

    error = assert_error(response, 400, "validation_failed")
    assert "rate" in error["details"]
    assert not TaxRate.objects.filter(code="RED").exists()


def test_tax_rate_code_cannot_change(staff_client):
    TaxRateFactory(code="RED", rate=Decimal("7"))

    response = staff_client.patch("/api/v1/tax-rates/RED/", {"code": "RED2"})

    error = assert_error(response, 400, "validation_failed")
    assert "code" in error["details"]
    assert TaxRate.objects.filter(code="RED").exists()


def test_tax_rate_list_is_filtered_by_active(staff_client):
    TaxRateFactory(code="STD")
    TaxRateFactory(code="OLD", active=False)

    response = staff_client.get("/api/v1/tax-rates/?active=false")

    assert [row["code"] for row in response.json()["results"]] == ["OLD"]


# --- products -----------------------------------------------------------------------------------


def test_product_is_created_with_barcodes_and_read_back_by_sku(staff_client):
    TaxRateFactory(code="STD")
    codes = [ean13(1), ean13(2)]

    created = staff_client.post(
        "/api/v1/products/",
        {
            "sku": "MILK-1L",
            "name": "Milk 1 l",
            "tax_code": "STD",
            "cost": "0.61",
            "barcodes": codes,
        },
    )

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["sku"] == "MILK-1L"
    assert body["tax_code"] == "STD"
    assert body["barcodes"] == sorted(codes)
    assert Decimal(body["cost"]) == Decimal("0.61")
    product = Product.objects.get(sku="MILK-1L")
    assert sorted(product.barcodes.values_list("code", flat=True)) == sorted(codes)
    read = staff_client.get("/api/v1/products/MILK-1L/").json()
    assert read["barcodes"] == sorted(codes)
    assert read["name"] == "Milk 1 l"


def test_product_create_is_audited_with_the_user(staff_client):
    TaxRateFactory(code="STD")

    staff_client.post("/api/v1/products/", {"sku": "A1", "name": "A", "tax_code": "STD"})

    record = Product.history.get(sku="A1")
    assert record.history_type == "+"
    assert record.history_user == staff_client.user


def test_product_with_a_bad_barcode_check_digit_is_refused_and_not_created(staff_client):
    TaxRateFactory(code="STD")
    bad = ean13(7)[:-1] + str((int(ean13(7)[-1]) + 1) % 10)

    response = staff_client.post(
        "/api/v1/products/", {"sku": "A1", "name": "A", "tax_code": "STD", "barcodes": [bad]}
    )

    error = assert_error(response, 400, "validation_failed")
    assert "barcodes" in error["details"]
    assert not Product.objects.filter(sku="A1").exists()
    assert not Barcode.objects.exists()


def test_product_with_a_barcode_of_another_product_is_refused(staff_client):
    owner = BarcodeFactory(code=ean13(5)).product

    response = staff_client.post(
        "/api/v1/products/",
        {"sku": "A1", "name": "A", "tax_code": owner.tax_rate.code, "barcodes": [ean13(5)]},
    )

    error = assert_error(response, 400, "validation_failed")
    assert owner.sku in error["details"]["barcodes"][0]
    assert not Product.objects.filter(sku="A1").exists()


def test_product_with_a_duplicate_sku_is_refused(staff_client):
    ProductFactory(sku="A1")

    response = staff_client.post(
        "/api/v1/products/", {"sku": "A1", "name": "Again", "tax_code": "STD"}
    )

    assert_error(response, 400, "validation_failed")
    assert Product.objects.get(sku="A1").name != "Again"


def test_product_patch_changes_the_given_fields_and_replaces_barcodes(staff_client):
    product = ProductFactory(sku="A1", name="Old name")
    BarcodeFactory(product=product, code=ean13(1))

    response = staff_client.patch(
        "/api/v1/products/A1/", {"name": "New name", "barcodes": [ean13(2)]}
    )

    assert response.status_code == 200, response.content
    assert response.json()["name"] == "New name"
    assert response.json()["barcodes"] == [ean13(2)]
    product.refresh_from_db()
    assert product.name == "New name"
    assert list(product.barcodes.values_list("code", flat=True)) == [ean13(2)]


def test_product_patch_without_barcodes_keeps_them(staff_client):
    product = ProductFactory(sku="A1")
    BarcodeFactory(product=product, code=ean13(1))

    response = staff_client.patch("/api/v1/products/A1/", {"active": False})

    assert response.status_code == 200, response.content
    assert response.json()["barcodes"] == [ean13(1)]
    assert response.json()["active"] is False


def test_product_put_replaces_the_resource(staff_client):
    ProductFactory(sku="A1", name="Old", cost=Decimal("1"))
    TaxRateFactory(code="RED", rate=Decimal("7"))

    response = staff_client.put(
        "/api/v1/products/A1/",
        {"sku": "A1", "name": "Loose apples", "tax_code": "RED", "unit": "kg", "weighed": True},
    )

    assert response.status_code == 200, response.content
    product = Product.objects.get(sku="A1")
    assert (product.name, product.tax_rate.code, product.unit, product.weighed) == (
        "Loose apples",
        "RED",
        "kg",
        True,
    )


def test_product_put_without_required_fields_is_refused(staff_client):
    ProductFactory(sku="A1", name="Old")

    response = staff_client.put("/api/v1/products/A1/", {"sku": "A1"})

    error = assert_error(response, 400, "validation_failed")
    assert {"name", "tax_code"} <= set(error["details"])
    assert Product.objects.get(sku="A1").name == "Old"


def test_product_sku_cannot_change(staff_client):
    ProductFactory(sku="A1")

    response = staff_client.patch("/api/v1/products/A1/", {"sku": "B1"})

    assert_error(response, 400, "validation_failed")
    assert Product.objects.filter(sku="A1").exists()
    assert not Product.objects.filter(sku="B1").exists()


def test_weighed_product_must_be_sold_in_kg(staff_client):
    TaxRateFactory(code="STD")

    response = staff_client.post(
        "/api/v1/products/",
        {"sku": "A1", "name": "A", "tax_code": "STD", "unit": "each", "weighed": True},
    )

    error = assert_error(response, 400, "validation_failed")
    assert "weighed" in error["details"]
    assert not Product.objects.exists()


def test_deleting_an_unused_product_removes_it_and_its_barcodes(staff_client):
    product = ProductFactory(sku="A1")
    BarcodeFactory(product=product, code=ean13(1))

    response = staff_client.delete("/api/v1/products/A1/")

    assert response.status_code == 204
    assert not Product.objects.filter(sku="A1").exists()
    assert not Barcode.objects.filter(code=ean13(1)).exists()
    assert staff_client.get("/api/v1/products/A1/").status_code == 404


def test_deleting_a_used_product_deactivates_it_and_keeps_its_barcodes(staff_client):
    # "Used" is something PROTECTing the row; the stock ledger is the first such model.
    stock_move = getattr(inventory_models, "StockMove", None)
    if stock_move is None:
        pytest.skip("nothing in the schema PROTECTs a product yet")
    product = ProductFactory(sku="A1")
    BarcodeFactory(product=product, code=ean13(1))
    stock_move.objects.create(
        location=StockLocationFactory(),
        product=product,
        qty_delta=Decimal("-1"),
        kind="sale",
        business_date=dt.date(2026, 11, 30),
        source_event=uuid.uuid4(),
        line_no=1,
        created_at=timezone.now(),
    )

    response = staff_client.delete("/api/v1/products/A1/")

    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert response.json()["barcodes"] == [ean13(1)]
    product.refresh_from_db()
    assert product.active is False
    assert list(product.barcodes.values_list("code", flat=True)) == [ean13(1)]
    assert product.history.first().history_change_reason == "deactivated: in use"


def test_unknown_sku_is_not_found(staff_client):
    assert_error(staff_client.get("/api/v1/products/NOPE/"), 404, "not_found")


def test_products_are_filtered_by_barcode(staff_client):
    BarcodeFactory(product=ProductFactory(sku="A1"), code=ean13(1))
    BarcodeFactory(product=ProductFactory(sku="B1"), code=ean13(2))

    response = staff_client.get(f"/api/v1/products/?barcode={ean13(2)}")

    assert [row["sku"] for row in response.json()["results"]] == ["B1"]


def test_products_are_filtered_by_active(staff_client):
    ProductFactory(sku="A1")
    ProductFactory(sku="B1", active=False)

    inactive = staff_client.get("/api/v1/products/?active=false").json()
    active = staff_client.get("/api/v1/products/?active=true").json()

    assert [row["sku"] for row in inactive["results"]] == ["B1"]
    assert [row["sku"] for row in active["results"]] == ["A1"]


def test_product_search_matches_sku_name_or_barcode_once_each(staff_client):
    apple = ProductFactory(sku="APL-1", name="Apple")
    BarcodeFactory(product=apple, code=ean13(1))
    BarcodeFactory(product=apple, code=ean13(2))
    ProductFactory(sku="PEAR-1", name="Pear")
    ProductFactory(sku="X-9", name="Pineapple juice")

    by_name = staff_client.get("/api/v1/products/?search=apple").json()
    by_barcode = staff_client.get(f"/api/v1/products/?search={ean13(2)}").json()

    assert sorted(row["sku"] for row in by_name["results"]) == ["APL-1", "X-9"]
    assert [row["sku"] for row in by_barcode["results"]] == ["APL-1"]
    assert by_barcode["count"] == 1


def test_product_list_pages_with_count_next_and_previous(staff_client):
    for n in range(5):
        ProductFactory(sku=f"P{n}")

    first = staff_client.get("/api/v1/products/?page_size=2").json()
    second = staff_client.get(first["next"]).json()
    last = staff_client.get("/api/v1/products/?page_size=2&page=3").json()

    assert first["count"] == 5
    assert [row["sku"] for row in first["results"]] == ["P0", "P1"]
    assert first["previous"] is None
    assert [row["sku"] for row in second["results"]] == ["P2", "P3"]
    assert second["previous"] is not None
    assert [row["sku"] for row in last["results"]] == ["P4"]
    assert last["next"] is None


def test_page_size_is_bounded_by_the_maximum(staff_client):
    tax_rate = TaxRateFactory(code="STD")
    total = settings.API_MAX_PAGE_SIZE + 1
    Product.objects.bulk_create(
        Product(sku=f"P{n:05d}", name=f"P{n}", tax_rate=tax_rate) for n in range(total)
    )

    response = staff_client.get(f"/api/v1/products/?page_size={total * 10}")

    body = response.json()
    assert body["count"] == total
    assert len(body["results"]) == settings.API_MAX_PAGE_SIZE
    assert body["next"] is not None


def test_product_list_query_count_does_not_grow_with_rows(staff_client, django_assert_num_queries):
    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            BarcodeFactory(product=ProductFactory(sku=f"P{i:03d}"), code=ean13(i))

    add(3, 0)
    with_three = query_count(staff_client, "/api/v1/products/")
    add(27, 3)

    with django_assert_num_queries(with_three):
        response = staff_client.get("/api/v1/products/")
    assert response.json()["count"] == 30
    assert all(row["barcodes"] for row in response.json()["results"])


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/api/v1/tax-rates/", lambda i: TaxRateFactory(code=f"T{i}")),
        ("/api/v1/price-lists/", lambda i: PriceListFactory(code=f"L{i}")),
        ("/api/v1/stock-locations/", lambda i: StockLocationFactory(code=f"W{i}")),
    ],
    ids=["tax-rates", "price-lists", "stock-locations"],
)
def test_other_catalogue_lists_query_count_does_not_grow_with_rows(
    staff_client, django_assert_num_queries, url, make
):
    for i in range(3):
        make(i)
    with_three = query_count(staff_client, url)
    for i in range(3, 30):
        make(i)

    with django_assert_num_queries(with_three):
        response = staff_client.get(url)
    assert response.json()["count"] >= 30


# --- price lists --------------------------------------------------------------------------------


def test_price_list_is_created_read_changed_and_deleted_by_code(staff_client):
    created = staff_client.post(
        "/api/v1/price-lists/", {"code": "CH", "name": "Switzerland", "currency": "CHF"}
    )
    assert created.status_code == 201, created.content
    assert created.json() == {
        "code": "CH",
        "name": "Switzerland",
        "currency": "CHF",
        "active": True,
    }

    assert staff_client.get("/api/v1/price-lists/CH/").json()["currency"] == "CHF"

    changed = staff_client.patch("/api/v1/price-lists/CH/", {"name": "Schweiz"})
    assert changed.status_code == 200, changed.content
    assert PriceList.objects.get(code="CH").name == "Schweiz"

    assert staff_client.delete("/api/v1/price-lists/CH/").status_code == 204
    assert not PriceList.objects.filter(code="CH").exists()


def test_price_list_with_an_unknown_currency_is_refused(staff_client):
    response = staff_client.post(
        "/api/v1/price-lists/", {"code": "XX", "name": "Nowhere", "currency": "XXX"}
    )

    error = assert_error(response, 400, "validation_failed")
    assert "currency" in error["details"]
    assert not PriceList.objects.filter(code="XX").exists()


def test_currency_of_a_price_list_with_prices_cannot_change(staff_client):
    PriceFactory(price_list=PriceListFactory(code="DE"))

    response = staff_client.patch("/api/v1/price-lists/DE/", {"currency": "USD"})

    error = assert_error(response, 400, "validation_failed")
    assert "currency" in error["details"]
    assert PriceList.objects.get(code="DE").currency_id == "EUR"


# --- prices -------------------------------------------------------------------------------------

PRICES = "/api/v1/price-lists/DE/prices/"


def test_price_is_created_read_changed_and_deleted_by_sku_and_valid_from(staff_client):
    PriceListFactory(code="DE")
    ProductFactory(sku="A1")

    created = staff_client.post(PRICES, {"sku": "A1", "price": "1.99", "valid_from": "2026-01-01"})
    assert created.status_code == 201, created.content
    assert created.json()["price"] == "1.99"
    assert created.json()["currency"] == "EUR"
    assert created.json()["valid_to"] is None

    read = staff_client.get(f"{PRICES}A1/2026-01-01/")
    assert read.status_code == 200
    assert read.json()["price"] == "1.99"

    changed = staff_client.patch(f"{PRICES}A1/2026-01-01/", {"valid_to": "2026-06-30"})
    assert changed.status_code == 200, changed.content
    assert changed.json()["valid_to"] == "2026-06-30"
    assert Price.objects.get().valid_to == dt.date(2026, 6, 30)

    deleted = staff_client.delete(f"{PRICES}A1/2026-01-01/")
    assert deleted.status_code == 204
    assert not Price.objects.exists()


def test_price_amount_is_rendered_with_the_currency_decimals(staff_client):
    PriceFactory(
        price_list=PriceListFactory(code="JP", currency=Currency.objects.get(code="JPY")),
        product=ProductFactory(sku="A1"),
        price=Decimal("199"),
    )
    PriceFactory(
        price_list=PriceListFactory(code="DE"), product=ProductFactory(sku="B1"), price=Decimal("2")
    )

    jpy = staff_client.get("/api/v1/price-lists/JP/prices/A1/2026-01-01/").json()
    eur = staff_client.get(f"{PRICES}B1/2026-01-01/").json()

    assert jpy["price"] == "199"
    assert eur["price"] == "2.00"


@pytest.mark.parametrize(
    ("list_code", "currency", "amount"),
    [("DE", "EUR", "1.999"), ("JP", "JPY", "199.5")],
)
def test_price_with_more_decimals_than_the_currency_is_refused(
    staff_client, list_code, currency, amount
):
    PriceListFactory(code=list_code, currency=Currency.objects.get(code=currency))
    ProductFactory(sku="A1")

    response = staff_client.post(
        f"/api/v1/price-lists/{list_code}/prices/",
        {"sku": "A1", "price": amount, "valid_from": "2026-01-01"},
    )

    error = assert_error(response, 400, "validation_failed")
    assert "price" in error["details"]
    assert not Price.objects.exists()


def test_overlapping_price_is_refused_and_nothing_is_written(staff_client):
    PriceFactory(
        price_list=PriceListFactory(code="DE"),
        product=ProductFactory(sku="A1"),
        valid_from=dt.date(2026, 1, 1),
        valid_to=dt.date(2026, 12, 31),
    )
    history_before = Price.history.count()

    response = staff_client.post(PRICES, {"sku": "A1", "price": "2.49", "valid_from": "2026-06-01"})

    error = assert_error(response, 400, "validation_failed")
    assert "valid_from" in error["details"]
    assert Price.objects.count() == 1
    assert Price.history.count() == history_before


def test_extending_a_price_into_the_next_one_is_refused(staff_client):
    price_list, product = PriceListFactory(code="DE"), ProductFactory(sku="A1")
    PriceFactory(price_list=price_list, product=product, valid_to=dt.date(2026, 6, 30))
    PriceFactory(price_list=price_list, product=product, valid_from=dt.date(2026, 7, 1))

    response = staff_client.patch(f"{PRICES}A1/2026-01-01/", {"valid_to": "2026-07-15"})

    assert_error(response, 400, "validation_failed")
    assert Price.objects.get(valid_from=dt.date(2026, 1, 1)).valid_to == dt.date(2026, 6, 30)


def test_price_valid_to_before_valid_from_is_refused(staff_client):
    PriceListFactory(code="DE")
    ProductFactory(sku="A1")

    response = staff_client.post(
        PRICES,
        {"sku": "A1", "price": "1.00", "valid_from": "2026-06-01", "valid_to": "2026-05-31"},
    )

    assert_error(response, 400, "validation_failed")
    assert not Price.objects.exists()


def test_price_of_an_unknown_list_or_key_is_not_found(staff_client):
    PriceListFactory(code="DE")

    assert_error(staff_client.get("/api/v1/price-lists/NOPE/prices/"), 404, "not_found")
    assert_error(staff_client.get(f"{PRICES}A1/2026-01-01/"), 404, "not_found")
    assert_error(staff_client.get(f"{PRICES}A1/not-a-date/"), 404, "not_found")


def test_prices_are_filtered_by_the_day_they_are_valid_on(staff_client):
    price_list, product = PriceListFactory(code="DE"), ProductFactory(sku="A1")
    PriceFactory(
        price_list=price_list, product=product, price=Decimal("1"), valid_to=dt.date(2026, 6, 30)
    )
    PriceFactory(
        price_list=price_list, product=product, price=Decimal("2"), valid_from=dt.date(2026, 7, 1)
    )

    june = staff_client.get(f"{PRICES}?valid_on=2026-06-30").json()
    july = staff_client.get(f"{PRICES}?valid_on=2026-07-01").json()
    before = staff_client.get(f"{PRICES}?valid_on=2025-12-31").json()

    assert [row["price"] for row in june["results"]] == ["1.00"]
    assert [row["price"] for row in july["results"]] == ["2.00"]
    assert before["count"] == 0


def test_prices_of_one_list_do_not_show_in_another(staff_client):
    product = ProductFactory(sku="A1")
    PriceFactory(price_list=PriceListFactory(code="DE"), product=product)
    PriceFactory(
        price_list=PriceListFactory(code="CH", currency=Currency.objects.get(code="CHF")),
        product=product,
        price=Decimal("2.20"),
    )

    response = staff_client.get(PRICES).json()

    assert response["count"] == 1
    assert response["results"][0]["currency"] == "EUR"


def test_price_list_query_count_does_not_grow_with_rows(staff_client, django_assert_num_queries):
    price_list = PriceListFactory(code="DE")
    for i in range(3):
        PriceFactory(price_list=price_list, product=ProductFactory(sku=f"P{i:02d}"))
    with_three = query_count(staff_client, PRICES)
    for i in range(3, 30):
        PriceFactory(price_list=price_list, product=ProductFactory(sku=f"P{i:02d}"))

    with django_assert_num_queries(with_three):
        response = staff_client.get(PRICES)
    assert response.json()["count"] == 30


# --- stock locations ----------------------------------------------------------------------------


def test_stock_location_is_created_read_changed_and_deleted_by_code(staff_client):
    created = staff_client.post(
        "/api/v1/stock-locations/", {"code": "WH1", "name": "Central", "kind": "warehouse"}
    )
    assert created.status_code == 201, created.content
    assert created.json() == {"code": "WH1", "name": "Central", "kind": "warehouse", "active": True}

    assert staff_client.get("/api/v1/stock-locations/WH1/").json()["name"] == "Central"

    changed = staff_client.patch("/api/v1/stock-locations/WH1/", {"active": False})
    assert changed.status_code == 200
    assert StockLocation.objects.get(code="WH1").active is False

    assert staff_client.delete("/api/v1/stock-locations/WH1/").status_code == 204
    assert not StockLocation.objects.filter(code="WH1").exists()


def test_stock_location_of_a_store_cannot_be_deleted(staff_client):
    store = StoreFactory(code="S1")

    response = staff_client.delete("/api/v1/stock-locations/S1/")

    assert_error(response, 409, "in_use")
    assert StockLocation.objects.filter(pk=store.stock_location_id).exists()


def test_stock_locations_are_filtered_by_kind(staff_client):
    StoreFactory(code="S1")
    StockLocationFactory(code="WH1")

    response = staff_client.get("/api/v1/stock-locations/?kind=warehouse").json()

    assert [row["code"] for row in response["results"]] == ["WH1"]


# --- roles --------------------------------------------------------------------------------------


def test_auditor_reads_the_catalogue_but_cannot_change_it(auditor_client):
    ProductFactory(sku="A1")

    assert auditor_client.get("/api/v1/products/A1/").status_code == 200
    assert_error(auditor_client.patch("/api/v1/products/A1/", {"name": "X"}), 403, "forbidden")
    assert_error(auditor_client.delete("/api/v1/products/A1/"), 403, "forbidden")
    assert Product.objects.filter(sku="A1").exists()
