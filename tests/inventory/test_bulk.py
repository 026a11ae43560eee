"""Bulk upserts: up to 10,000 rows per request, all or nothing, bad rows named by index."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings

from inventory.models import Barcode, Currency, Price, PriceList, Product
from tests.factories import (
    BarcodeFactory,
    PriceFactory,
    PriceListFactory,
    ProductFactory,
    TaxRateFactory,
    ean13,
)

pytestmark = pytest.mark.django_db

PRODUCTS_BULK = "/api/v1/products/bulk"
PRICES_BULK = "/api/v1/price-lists/DE/prices/bulk"


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:2000]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body["error"]["message"]
    assert body["error"]["message"].strip()
    return body["error"]


def bad_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def product_rows(n: int, *, start: int = 0) -> list[dict]:
    return [
        {
            "sku": f"SKU{i:06d}",
            "name": f"Product {i}",
            "tax_code": "STD",
            "cost": "0.50",
            "barcodes": [ean13(i, prefix="20")],
        }
        for i in range(start, start + n)
    ]


def history_rows() -> int:
    return Product.history.count() + Barcode.history.count()


# --- products -----------------------------------------------------------------------------------


def test_ten_thousand_products_are_created_with_barcodes_in_one_request(staff_client):
    TaxRateFactory(code="STD")
    rows = product_rows(settings.BULK_MAX_ROWS)

    response = staff_client.post(PRODUCTS_BULK, rows)

    assert response.status_code == 200, response.content[:2000]
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (10_000, 0, 0)
    assert {row["status"] for row in body["rows"]} == {"created"}
    assert Product.objects.count() == 10_000
    assert Barcode.objects.count() == 10_000
    product = Product.objects.get(sku="SKU004711")
    assert product.name == "Product 4711"
    assert product.tax_rate.code == "STD"
    assert product.cost == Decimal("0.50")
    assert list(product.barcodes.values_list("code", flat=True)) == [ean13(4711, prefix="20")]
    assert Product.history.filter(history_type="+").count() == 10_000


def test_reposting_the_same_rows_changes_nothing(staff_client):
    TaxRateFactory(code="STD")
    rows = product_rows(settings.BULK_MAX_ROWS)
    assert staff_client.post(PRODUCTS_BULK, rows).status_code == 200
    history_before = history_rows()

    response = staff_client.post(PRODUCTS_BULK, rows)

    assert response.status_code == 200, response.content[:2000]
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 0, 10_000)
    assert {row["status"] for row in body["rows"]} == {"unchanged"}
    assert history_rows() == history_before
    assert Product.objects.count() == 10_000


def test_bulk_updates_changed_rows_and_moves_barcodes(staff_client):
    TaxRateFactory(code="STD")
    TaxRateFactory(code="RED", rate=Decimal("7"))
    staff_client.post(PRODUCTS_BULK, product_rows(3))
    code_of_1 = ean13(1, prefix="20")

    response = staff_client.post(
        PRODUCTS_BULK,
        [
            {"sku": "SKU000000", "tax_code": "RED"},
            {"sku": "SKU000001", "barcodes": []},
            {"sku": "SKU000002", "barcodes": [ean13(2, prefix="20"), code_of_1]},
            {"sku": "NEW", "name": "New", "tax_code": "STD"},
        ],
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert [row["status"] for row in body["rows"]] == ["updated", "updated", "updated", "created"]
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 3, 0)
    assert Product.objects.get(sku="SKU000000").tax_rate.code == "RED"
    assert Barcode.objects.get(code=code_of_1).product.sku == "SKU000002"
    assert not Barcode.objects.filter(product__sku="SKU000001").exists()


def test_bad_rows_among_ten_thousand_are_all_named_and_nothing_is_written(staff_client):
    TaxRateFactory(code="STD")
    owner = ProductFactory(sku="OWNER")
    BarcodeFactory(product=owner, code=ean13(1, prefix="99"))
    rows = product_rows(settings.BULK_MAX_ROWS)
    rows[17]["tax_code"] = "NOPE"
    rows[4_242]["barcodes"] = [bad_check_digit(rows[4_242]["barcodes"][0])]
    rows[6_000]["sku"] = rows[5_999]["sku"]
    rows[9_999]["barcodes"] = [ean13(1, prefix="99")]
    products_before, history_before = Product.objects.count(), history_rows()

    response = staff_client.post(PRODUCTS_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    bad = {row["index"]: row["errors"] for row in error["details"]["rows"]}
    assert sorted(bad) == [17, 4_242, 6_000, 9_999]
    assert set(bad[17]) == {"tax_code"}
    assert set(bad[4_242]) == {"barcodes"}
    assert set(bad[6_000]) == {"sku"}
    assert "5999" in bad[6_000]["sku"][0]
    assert set(bad[9_999]) == {"barcodes"}
    assert "OWNER" in bad[9_999]["barcodes"][0]
    assert "row 17" in error["message"]
    assert Product.objects.count() == products_before
    assert history_rows() == history_before
    assert Barcode.objects.count() == 1


def test_two_rows_claiming_one_barcode_are_refused(staff_client):
    TaxRateFactory(code="STD")
    rows = product_rows(2)
    rows[1]["barcodes"] = rows[0]["barcodes"]

    response = staff_client.post(PRODUCTS_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    assert [row["index"] for row in error["details"]["rows"]] == [1]
    assert not Product.objects.exists()


def test_new_product_without_a_tax_code_is_refused(staff_client):
    TaxRateFactory(code="STD")

    response = staff_client.post(PRODUCTS_BULK, [{"sku": "A1", "name": "A"}])

    error = assert_error(response, 400, "invalid_rows")
    assert error["details"]["rows"] == [
        {"index": 0, "errors": {"tax_code": ["This field is required for a new product."]}}
    ]
    assert not Product.objects.exists()


def test_new_product_without_a_name_is_refused(staff_client):
    TaxRateFactory(code="STD")

    response = staff_client.post(PRODUCTS_BULK, [{"sku": "A1", "tax_code": "STD"}])

    error = assert_error(response, 400, "invalid_rows")
    assert [row["index"] for row in error["details"]["rows"]] == [0]
    assert "name" in error["details"]["rows"][0]["errors"]
    assert not Product.objects.exists()


def test_malformed_and_inconsistent_rows_are_named_together(staff_client):
    TaxRateFactory(code="STD")
    rows = product_rows(3)
    rows[0]["cost"] = "not a number"
    rows[2]["tax_code"] = "NOPE"

    response = staff_client.post(PRODUCTS_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    assert [row["index"] for row in error["details"]["rows"]] == [0, 2]


def test_more_rows_than_the_limit_is_too_large(staff_client):
    TaxRateFactory(code="STD")

    response = staff_client.post(PRODUCTS_BULK, product_rows(settings.BULK_MAX_ROWS + 1))

    error = assert_error(response, 413, "too_many_rows")
    assert str(settings.BULK_MAX_ROWS) in error["message"].replace(",", "")
    assert not Product.objects.exists()


@pytest.mark.parametrize("body", [{"sku": "A1"}, "A1", 42, None, []])
def test_bulk_body_that_is_not_a_list_of_rows_is_refused(staff_client, body):
    response = staff_client.post(PRODUCTS_BULK, body)

    assert_error(response, 400, "invalid_body")
    assert not Product.objects.exists()


def test_rows_with_unknown_fields_are_refused_naming_the_row(staff_client):
    TaxRateFactory(code="STD")
    rows = product_rows(5)
    rows[3]["colour"] = "red"

    response = staff_client.post(PRODUCTS_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    assert error["details"]["rows"] == [{"index": 3, "errors": {"colour": ["Unknown field."]}}]
    assert "row 3" in error["message"]
    assert "colour" in error["message"]
    assert not Product.objects.exists()


def test_row_that_is_not_an_object_is_refused_naming_the_row(staff_client):
    TaxRateFactory(code="STD")
    rows: list = product_rows(3)
    rows[1] = "SKU000001"

    response = staff_client.post(PRODUCTS_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    assert [row["index"] for row in error["details"]["rows"]] == [1]
    assert not Product.objects.exists()


def test_auditor_cannot_bulk_upsert(auditor_client):
    TaxRateFactory(code="STD")

    response = auditor_client.post(PRODUCTS_BULK, product_rows(2))

    assert_error(response, 403, "forbidden")
    assert not Product.objects.exists()


# --- prices -------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(db) -> list[Product]:
    """The DE price list (EUR) and 10,000 products, made directly: they are the scenery."""
    PriceListFactory(code="DE")
    tax_rate = TaxRateFactory(code="STD")
    return Product.objects.bulk_create(
        Product(sku=f"SKU{i:06d}", name=f"Product {i}", tax_rate=tax_rate)
        for i in range(settings.BULK_MAX_ROWS)
    )


def price_rows(n: int) -> list[dict]:
    return [
        {"sku": f"SKU{i:06d}", "price": f"{1 + i % 100}.99", "valid_from": "2026-01-01"}
        for i in range(n)
    ]


def price_history_rows() -> int:
    return Price.history.count()


def test_ten_thousand_prices_are_created_in_one_request(staff_client, catalogue):
    response = staff_client.post(PRICES_BULK, price_rows(settings.BULK_MAX_ROWS))

    assert response.status_code == 200, response.content[:2000]
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (10_000, 0, 0)
    assert Price.objects.count() == 10_000
    price = Price.objects.get(product__sku="SKU000042")
    assert (price.price, price.valid_from, price.valid_to) == (
        Decimal("43.99"),
        dt.date(2026, 1, 1),
        None,
    )


def test_reposting_the_same_prices_changes_nothing(staff_client, catalogue):
    rows = price_rows(1_000)
    assert staff_client.post(PRICES_BULK, rows).status_code == 200
    history_before = price_history_rows()

    response = staff_client.post(PRICES_BULK, rows)

    assert response.status_code == 200, response.content[:2000]
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 0, 1_000)
    assert price_history_rows() == history_before


def test_bad_price_rows_are_all_named_and_nothing_is_written(staff_client, catalogue):
    PriceFactory(
        price_list=PriceList.objects.get(code="DE"),
        product=catalogue[500],
        valid_from=dt.date(2025, 1, 1),
        valid_to=None,
    )
    rows = price_rows(settings.BULK_MAX_ROWS)
    rows[3]["sku"] = "NOPE"
    rows[10]["price"] = "1.999"
    rows[20]["valid_to"] = "2025-12-31"
    rows[9_999] = {"sku": "SKU000040", "price": "1.00", "valid_from": "2026-06-01"}
    # row 500 overlaps the stored open-ended price from 2025-01-01
    prices_before, history_before = Price.objects.count(), price_history_rows()

    response = staff_client.post(PRICES_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    bad = {row["index"]: row["errors"] for row in error["details"]["rows"]}
    assert sorted(bad) == [3, 10, 20, 500, 9_999]
    assert set(bad[3]) == {"sku"}
    assert set(bad[10]) == {"price"}
    assert "EUR" in bad[10]["price"][0]
    assert set(bad[20]) == {"valid_to"}
    assert set(bad[500]) == {"valid_from"}
    assert "2025-01-01" in bad[500]["valid_from"][0]
    assert set(bad[9_999]) == {"valid_from"}
    assert Price.objects.count() == prices_before
    assert price_history_rows() == history_before


def test_overlapping_rows_within_one_request_are_refused(staff_client, catalogue):
    rows = [
        {"sku": "SKU000001", "price": "1.00", "valid_from": "2026-01-01", "valid_to": "2026-06-30"},
        {"sku": "SKU000002", "price": "1.00", "valid_from": "2026-01-01"},
        {"sku": "SKU000001", "price": "2.00", "valid_from": "2026-06-01"},
    ]

    response = staff_client.post(PRICES_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    assert [row["index"] for row in error["details"]["rows"]] == [2]
    assert not Price.objects.exists()


def test_same_sku_and_start_twice_in_one_request_is_refused(staff_client, catalogue):
    rows = [
        {"sku": "SKU000001", "price": "1.00", "valid_from": "2026-01-01"},
        {"sku": "SKU000001", "price": "2.00", "valid_from": "2026-01-01"},
    ]

    response = staff_client.post(PRICES_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    assert [row["index"] for row in error["details"]["rows"]] == [1]
    assert not Price.objects.exists()


def test_price_with_more_decimals_than_a_zero_decimal_currency_is_refused(staff_client):
    PriceListFactory(code="JP", currency=Currency.objects.get(code="JPY"))
    ProductFactory(sku="A1")

    response = staff_client.post(
        "/api/v1/price-lists/JP/prices/bulk",
        [{"sku": "A1", "price": "199.50", "valid_from": "2026-01-01"}],
    )

    error = assert_error(response, 400, "invalid_rows")
    assert set(error["details"]["rows"][0]["errors"]) == {"price"}
    assert not Price.objects.exists()


def test_range_shift_closes_the_open_price_and_opens_the_next_in_one_request(
    staff_client, on_postgres
):
    # On PostgreSQL the exclusion constraint is deferred to the commit; on SQLite the rows
    # are written in an order its row-level trigger accepts. Either way one request suffices.
    price_list = PriceListFactory(code="DE")
    product = ProductFactory(sku="A1")
    PriceFactory(price_list=price_list, product=product, price=Decimal("1.99"))
    history_before = price_history_rows()

    response = staff_client.post(
        PRICES_BULK,
        [
            {"sku": "A1", "price": "2.49", "valid_from": "2027-01-01"},
            {"sku": "A1", "price": "1.99", "valid_from": "2026-01-01", "valid_to": "2026-12-31"},
        ],
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 1, 0)
    assert list(
        Price.objects.filter(product=product)
        .order_by("valid_from")
        .values_list("price", "valid_from", "valid_to")
    ) == [
        (Decimal("1.99"), dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        (Decimal("2.49"), dt.date(2027, 1, 1), None),
    ]
    assert price_history_rows() == history_before + 2
    on_day = staff_client.get("/api/v1/price-lists/DE/prices/?valid_on=2027-01-01").json()
    assert [row["price"] for row in on_day["results"]] == ["2.49"]


def test_bulk_prices_of_an_unknown_list_are_not_found(staff_client):
    ProductFactory(sku="A1")

    response = staff_client.post(
        "/api/v1/price-lists/NOPE/prices/bulk",
        [{"sku": "A1", "price": "1.00", "valid_from": "2026-01-01"}],
    )

    assert_error(response, 404, "not_found")
    assert not Price.objects.exists()


def test_more_price_rows_than_the_limit_is_too_large(staff_client):
    PriceListFactory(code="DE")

    response = staff_client.post(PRICES_BULK, price_rows(settings.BULK_MAX_ROWS + 1))

    assert_error(response, 413, "too_many_rows")
    assert not Price.objects.exists()


@pytest.mark.parametrize("body", [{"sku": "A1"}, "rows", None, []])
def test_price_bulk_body_that_is_not_a_list_of_rows_is_refused(staff_client, body):
    PriceListFactory(code="DE")

    response = staff_client.post(PRICES_BULK, body)

    assert_error(response, 400, "invalid_body")


def test_price_rows_with_unknown_fields_are_refused_naming_the_row(staff_client, catalogue):
    rows = price_rows(4)
    rows[2]["currency"] = "EUR"

    response = staff_client.post(PRICES_BULK, rows)

    error = assert_error(response, 400, "invalid_rows")
    assert error["details"]["rows"] == [{"index": 2, "errors": {"currency": ["Unknown field."]}}]
    assert not Price.objects.exists()
