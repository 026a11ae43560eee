"""The catalogue admin: pages by role, writes through the services, errors on the form."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inventory import models as inventory_models
from inventory.models import Barcode, Currency, Price, PriceList, Product, StockLocation, TaxRate
from tests.factories import (
    BarcodeFactory,
    PriceFactory,
    PriceListFactory,
    ProductFactory,
    StockLocationFactory,
    TaxRateFactory,
    UserFactory,
    ean13,
)

pytestmark = pytest.mark.django_db


def signed_in(client: Client, role: str) -> Any:
    user = UserFactory(roles=[role])
    client.force_login(user)
    return user


def url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def inline_rows(prefix: str, rows: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    """POST data for an inline formset: the management form and ``rows`` (existing first)."""
    data: dict[str, Any] = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def product_data(product: Product, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": product.name,
        "unit": product.unit,
        "tax_rate": product.tax_rate_id,
        "cost": str(product.cost),
        "active": "on",
    }
    data.update(overrides)
    return data


@pytest.fixture
def catalogue() -> dict[type, Any]:
    product = ProductFactory()
    return {
        TaxRate: product.tax_rate,
        Product: product,
        Barcode: BarcodeFactory(product=product),
        PriceList: PriceListFactory(),
        Price: PriceFactory(product=product),
        StockLocation: StockLocationFactory(),
        Currency: Currency.objects.get(code="EUR"),
    }


# --- pages by role ------------------------------------------------------------------------------

MODELS = [TaxRate, Product, Barcode, PriceList, Price, StockLocation, Currency]
HISTORY_MODELS = [m for m in MODELS if m is not Currency]


@pytest.mark.parametrize("role", ["staff", "auditor", "finance"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_list_and_change_pages_render_for_every_role(client, catalogue, role, model):
    signed_in(client, role)
    obj = catalogue[model]

    assert client.get(url(model, "changelist")).status_code == 200
    assert client.get(url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("role", ["staff", "auditor"])
@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_history_pages_render_for_staff_and_auditor(client, catalogue, role, model):
    signed_in(client, role)
    obj = catalogue[model]
    version = obj.history.latest()

    assert client.get(url(model, "history", obj.pk)).status_code == 200
    assert client.get(url(model, "simple_history", obj.pk, version.pk)).status_code == 200


@pytest.mark.parametrize("model", HISTORY_MODELS, ids=lambda m: m.__name__)
def test_staff_can_open_add_pages(client, model):
    signed_in(client, "staff")

    assert client.get(url(model, "add")).status_code == 200


def test_currencies_are_read_only_even_for_staff(client):
    signed_in(client, "staff")
    eur = Currency.objects.get(code="EUR")

    assert client.get(url(Currency, "add")).status_code == 403
    response = client.post(url(Currency, "change", "EUR"), {"name": "Euro!", "minor_units": 3})
    assert response.status_code == 403
    assert client.post(url(Currency, "delete", "EUR"), {"post": "yes"}).status_code == 403
    eur.refresh_from_db()
    assert (eur.name, eur.minor_units) == ("Euro", 2)


@pytest.mark.parametrize("role", ["auditor", "finance"])
def test_read_only_roles_cannot_add_change_or_delete(client, catalogue, role):
    signed_in(client, role)
    product = catalogue[Product]
    versions = product.history.count()

    assert client.get(url(Product, "add")).status_code == 403
    response = client.post(
        url(Product, "change", product.pk),
        {
            **product_data(product, name="Renamed"),
            **inline_rows("barcodes", []),
            **inline_rows("prices", []),
        },
    )
    assert response.status_code == 403
    assert client.post(url(Product, "delete", product.pk), {"post": "yes"}).status_code == 403
    response = client.post(
        url(Product, "changelist"),
        {"action": "delete_selected", "_selected_action": [product.pk], "post": "yes"},
    )
    assert response.status_code == 200  # the list again: the action is not offered to them
    product.refresh_from_db()
    assert product.name != "Renamed"
    assert product.history.count() == versions
    assert Product.objects.filter(pk=product.pk).exists()


def test_changelist_offers_no_write_actions_to_the_auditor(client, catalogue):
    signed_in(client, "auditor")

    response = client.get(url(Product, "changelist"))

    assert response.status_code == 200
    assert response.context["action_form"] is None or not [
        name for name, _ in response.context["action_form"].fields["action"].choices if name
    ]


@pytest.mark.parametrize("role", ["staff", "auditor"])
def test_history_versions_cannot_be_reverted_from_the_admin(client, catalogue, role):
    # django-simple-history would save this POST for anyone who may view history.
    signed_in(client, role)
    product = catalogue[Product]
    first = product.history.earliest()
    product.name = "Changed later"
    product.save()

    response = client.post(
        url(Product, "simple_history", product.pk, first.pk),
        {**product_data(product, name=first.name, sku=product.sku)},
    )

    assert response.status_code == 403
    product.refresh_from_db()
    assert product.name == "Changed later"


# --- products -----------------------------------------------------------------------------------


def test_staff_adds_a_product_with_barcodes_and_history_names_them(client):
    user = signed_in(client, "staff")
    tax = TaxRateFactory()
    codes = [ean13(101), ean13(102)]

    response = client.post(
        url(Product, "add"),
        {
            "sku": "TEA-1",
            "name": "Green tea",
            "unit": "each",
            "tax_rate": tax.pk,
            "cost": "0.80",
            "active": "on",
            **inline_rows("barcodes", [{"code": codes[0]}, {"code": codes[1]}]),
            **inline_rows("prices", []),
        },
    )

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    product = Product.objects.get(sku="TEA-1")
    assert sorted(product.barcodes.values_list("code", flat=True)) == codes
    (created,) = Product.history.filter(sku="TEA-1")
    assert created.history_type == "+"
    assert created.history_user == user
    assert created.history_change_reason == "admin"
    barcode_versions = Barcode.history.filter(product_id=product.pk)
    assert sorted(v.code for v in barcode_versions) == codes
    assert {(v.history_type, v.history_user) for v in barcode_versions} == {("+", user)}


def test_staff_adds_a_product_with_a_price_in_the_inline(client):
    user = signed_in(client, "staff")
    tax = TaxRateFactory()
    price_list = PriceListFactory()

    response = client.post(
        url(Product, "add"),
        {
            "sku": "TEA-2",
            "name": "Black tea",
            "unit": "each",
            "tax_rate": tax.pk,
            "cost": "0.80",
            "active": "on",
            **inline_rows("barcodes", []),
            **inline_rows(
                "prices",
                [{"price_list": price_list.pk, "price": "2.49", "valid_from": "2026-03-01"}],
            ),
        },
    )

    assert response.status_code == 302
    (price,) = Price.objects.filter(product__sku="TEA-2")
    assert (price.price, price.valid_from, price.valid_to) == (
        Decimal("2.49"),
        dt.date(2026, 3, 1),
        None,
    )
    assert price.history.get().history_user == user


def test_changing_a_product_replaces_a_barcode_and_keeps_the_sku(client, catalogue):
    user = signed_in(client, "staff")
    product, old = catalogue[Product], catalogue[Barcode]
    price = catalogue[Price]
    new_code = ean13(777)

    response = client.post(
        url(Product, "change", product.pk),
        {
            **product_data(product, name="Renamed", sku="HACKED"),
            **inline_rows(
                "barcodes",
                [{"id": old.pk, "code": old.code, "DELETE": "on"}, {"code": new_code}],
                initial=1,
            ),
            **inline_rows(
                "prices",
                [
                    {
                        "id": price.pk,
                        "price_list": price.price_list_id,
                        "price": str(price.price),
                        "valid_from": price.valid_from.isoformat(),
                        "valid_to": "",
                    }
                ],
                initial=1,
            ),
        },
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.sku, product.name) == (catalogue[Product].sku, "Renamed")
    assert list(product.barcodes.values_list("code", flat=True)) == [new_code]
    assert product.history.latest().history_user == user
    assert Barcode.history.filter(code=old.code, history_type="-").get().history_user == user
    assert price.history.count() == 1  # unchanged rows are not rewritten


def test_a_barcode_of_another_product_is_refused_on_the_row(client, catalogue):
    signed_in(client, "staff")
    taken = catalogue[Barcode]
    other = ProductFactory()
    versions = Barcode.history.count()

    response = client.post(
        url(Product, "change", other.pk),
        {
            **product_data(other),
            **inline_rows("barcodes", [{"code": taken.code}]),
            **inline_rows("prices", []),
        },
    )

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Barcode.history.count() == versions


def test_product_search_finds_by_sku_name_and_barcode(client, catalogue):
    signed_in(client, "staff")
    product, barcode = catalogue[Product], catalogue[Barcode]
    ProductFactory(name="Something else")

    for term in (product.sku, product.name, barcode.code):
        response = client.get(url(Product, "changelist"), {"q": term})
        assert list(response.context["cl"].result_list) == [product], term


def test_deleting_an_unused_product_deletes_it_with_history(client, catalogue):
    user = signed_in(client, "staff")
    product = catalogue[Product]

    response = client.post(url(Product, "delete", product.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Product.objects.filter(pk=product.pk).exists()
    assert product.history.filter(history_type="-").get().history_user == user
    assert LogEntry.objects.get(object_id=str(product.pk), action_flag=DELETION).user == user


def _put_in_use(product: Product) -> None:
    """Give ``product`` a row that PROTECTs it (the stock ledger is the first such model)."""
    stock_move = getattr(inventory_models, "StockMove", None)
    if stock_move is None:
        pytest.skip("nothing in the schema PROTECTs a product yet")
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


def test_deleting_a_used_product_deactivates_it_and_says_so(client, catalogue):
    user = signed_in(client, "staff")
    product = catalogue[Product]
    _put_in_use(product)

    confirm = client.get(url(Product, "delete", product.pk))
    response = client.post(url(Product, "delete", product.pk), {"post": "yes"}, follow=True)

    assert confirm.status_code == 200
    assert "Cannot delete" not in confirm.content.decode()
    assert "will be deactivated instead of deleted" in confirm.content.decode()
    assert response.status_code == 200
    assert "in use, so it was deactivated instead of deleted" in response.content.decode()
    product.refresh_from_db()
    assert product.active is False
    assert product.barcodes.count() == 1
    latest = product.history.latest()
    assert (latest.history_type, latest.history_user, latest.active) == ("~", user, False)
    assert not LogEntry.objects.filter(object_id=str(product.pk), action_flag=DELETION).exists()


def test_delete_selected_deletes_unused_products_and_deactivates_used_ones(client):
    signed_in(client, "staff")
    used, unused = ProductFactory.create_batch(2)
    _put_in_use(used)

    response = client.post(
        url(Product, "changelist"),
        {"action": "delete_selected", "_selected_action": [used.pk, unused.pk], "post": "yes"},
        follow=True,
    )

    page = response.content.decode()
    assert "Deleted 1 product." in page
    assert "1 product in use, so deactivated instead of deleted." in page
    assert list(Product.objects.values_list("pk", "active")) == [(used.pk, False)]


def test_delete_selected_deletes_through_the_service(client):
    user = signed_in(client, "staff")
    products = ProductFactory.create_batch(2)

    response = client.post(
        url(Product, "changelist"),
        {"action": "delete_selected", "_selected_action": [p.pk for p in products], "post": "yes"},
        follow=True,
    )

    assert "Deleted 2 products." in response.content.decode()
    assert not Product.objects.filter(pk__in=[p.pk for p in products]).exists()
    assert {v.history_user for v in Product.history.filter(history_type="-")} == {user}


def test_a_tax_rate_in_use_is_not_deleted(client, catalogue):
    signed_in(client, "staff")
    tax = catalogue[TaxRate]

    single = client.post(url(TaxRate, "delete", tax.pk), {"post": "yes"})
    bulk = client.post(
        url(TaxRate, "changelist"),
        {"action": "delete_selected", "_selected_action": [tax.pk], "post": "yes"},
    )

    assert single.status_code == bulk.status_code == 200
    assert "Cannot delete" in single.content.decode()
    assert "Cannot delete" in bulk.content.decode()
    assert TaxRate.objects.filter(pk=tax.pk).exists()


def test_deactivate_action_goes_through_the_service(client):
    user = signed_in(client, "staff")
    product = ProductFactory()

    client.post(
        url(Product, "changelist"),
        {"action": "deactivate_selected", "_selected_action": [product.pk]},
    )

    product.refresh_from_db()
    assert product.active is False
    assert product.history.latest().history_user == user


# --- prices -------------------------------------------------------------------------------------


def test_an_overlapping_price_shows_the_error_and_writes_nothing(client, catalogue):
    signed_in(client, "staff")
    existing = catalogue[Price]  # 2026-01-01, open-ended
    versions = Price.history.count()

    response = client.post(
        url(Price, "add"),
        {
            "price_list": existing.price_list_id,
            "product": existing.product_id,
            "price": "2.99",
            "valid_from": "2026-06-01",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Overlaps the price valid from 2026-01-01" in str(errors["valid_from"])
    assert list(Price.objects.all()) == [existing]
    assert Price.history.count() == versions


def test_an_overlapping_price_in_the_product_inline_is_shown_on_its_row(client, catalogue):
    signed_in(client, "staff")
    product, existing = catalogue[Product], catalogue[Price]
    barcode = catalogue[Barcode]
    versions = Price.history.count() + Product.history.count()

    response = client.post(
        url(Product, "change", product.pk),
        {
            **product_data(product, name="Renamed"),
            **inline_rows("barcodes", [{"id": barcode.pk, "code": barcode.code}], initial=1),
            **inline_rows(
                "prices",
                [
                    {
                        "id": existing.pk,
                        "price_list": existing.price_list_id,
                        "price": str(existing.price),
                        "valid_from": "2026-01-01",
                    },
                    {
                        "price_list": existing.price_list_id,
                        "price": "2.99",
                        "valid_from": "2026-06-01",
                    },
                ],
                initial=1,
            ),
        },
    )

    assert response.status_code == 200
    (price_formset,) = [
        fs for fs in response.context["inline_admin_formsets"] if fs.formset.prefix == "prices"
    ]
    assert "Overlaps the price valid from 2026-01-01" in str(
        price_formset.formset.forms[1].errors["valid_from"]
    )
    product.refresh_from_db()
    assert product.name != "Renamed"  # the product's own change was rolled back too
    assert Price.objects.count() == 1
    assert Price.history.count() + Product.history.count() == versions


def test_a_price_with_more_decimals_than_its_currency_is_refused(client, catalogue):
    signed_in(client, "staff")
    product = ProductFactory()

    response = client.post(
        url(Price, "add"),
        {
            "price_list": catalogue[PriceList].pk,
            "product": product.pk,
            "price": "1.999",
            "valid_from": "2026-01-01",
        },
    )

    assert response.status_code == 200
    assert "EUR amounts have at most 2 decimals" in str(
        response.context["adminform"].form.errors["price"]
    )
    assert not Price.objects.filter(product=product).exists()


def test_the_price_list_links_to_its_prices(client, catalogue):
    signed_in(client, "staff")
    price_list = catalogue[Price].price_list

    page = client.get(url(PriceList, "change", price_list.pk)).content.decode()
    prices = client.get(url(Price, "changelist"), {"price_list__id__exact": price_list.pk})

    assert f"?price_list__id__exact={price_list.pk}" in page
    assert list(prices.context["cl"].result_list) == [catalogue[Price]]


# --- query counts -------------------------------------------------------------------------------


def _queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def _make_products(n: int, price_list: PriceList) -> None:
    for _ in range(n):
        product = ProductFactory()
        BarcodeFactory(product=product)
        BarcodeFactory(product=product)
        PriceFactory(product=product, price_list=price_list)


@pytest.mark.parametrize(
    "model", [Product, Barcode, Price, TaxRate, PriceList], ids=lambda m: m.__name__
)
def test_list_pages_make_the_same_number_of_queries_for_3_or_30_products(
    client, model, django_assert_max_num_queries
):
    signed_in(client, "staff")
    price_list = PriceListFactory()
    _make_products(3, price_list)
    path = url(model, "changelist")
    client.get(path)  # warm per-process caches (content types, permissions)

    few = _queries(client, path)
    _make_products(27, price_list)
    with django_assert_max_num_queries(12):
        many = _queries(client, path)

    assert many == few
