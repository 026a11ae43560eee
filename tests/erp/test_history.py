"""Who changed what and why: every master-data write leaves a history row naming its author.

django-simple-history keeps the rows (``history_type`` ``+`` created, ``~`` changed, ``-``
deleted, ``history_user``, ``history_change_reason``). Writes through the API carry the
reason ``api``, bulk upserts ``bulk upsert``; bulk writes bypass the ORM's signals, so they are
checked to write history themselves.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from django.utils import timezone
from rest_framework.test import APIClient

from inventory import services as inventory_services
from inventory.models import Barcode, Price, PriceList, Product, StockLocation, TaxRate
from stores import services as store_services
from stores.models import NodeKey, Register, Store
from tests.factories import (
    BarcodeFactory,
    PriceFactory,
    PriceListFactory,
    ProductFactory,
    StoreFactory,
    TaxRateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

API = "/api/v1"


def history(model: type[models.Model], **filters: Any) -> list[tuple[str, Any, str | None]]:
    """(type, user, reason) of the matching history rows, oldest first."""
    rows = model.history.filter(**filters).order_by("history_id")  # type: ignore[attr-defined]
    return [(h.history_type, h.history_user, h.history_change_reason) for h in rows]


@pytest.fixture
def staff(make_client) -> APIClient:
    return make_client("staff")


@pytest.fixture
def tax_rate() -> TaxRate:
    return TaxRateFactory(code="STD")


# --- single writes through the API ---------------------------------------------------------------


def test_api_create_records_the_user_and_reason_api(staff: APIClient, tax_rate) -> None:
    response = staff.post(
        f"{API}/products/",
        {"sku": "MILK-1L", "name": "Milk", "tax_code": "STD", "barcodes": ["4006381333931"]},
    )
    assert response.status_code == 201, response.content

    assert history(Product, sku="MILK-1L") == [("+", staff.user, "api")]
    assert [(t, u) for t, u, _ in history(Barcode, code="4006381333931")] == [("+", staff.user)]


def test_api_create_gives_the_barcodes_reason_api_too(staff: APIClient, tax_rate) -> None:
    staff.post(
        f"{API}/products/",
        {"sku": "MILK-1L", "name": "Milk", "tax_code": "STD", "barcodes": ["4006381333931"]},
    )

    assert history(Barcode, code="4006381333931") == [("+", staff.user, "api")]


def test_api_update_records_the_user_and_reason_api(staff: APIClient) -> None:
    product = ProductFactory(sku="MILK-1L", name="Milk")

    response = staff.patch(f"{API}/products/MILK-1L/", {"name": "Milk 1 l"})
    assert response.status_code == 200, response.content

    changes = history(Product, id=product.pk)
    assert changes[-1] == ("~", staff.user, "api")
    assert len(changes) == 2  # the factory's "+" and this one
    assert product.history.latest().name == "Milk 1 l"


def test_api_update_of_each_resource_records_the_user(staff: APIClient) -> None:
    price_list = PriceListFactory(code="DE")
    StoreFactory(code="BER", price_list=price_list)
    product = ProductFactory(sku="MILK-1L")
    PriceFactory(price_list=price_list, product=product, valid_from=dt.date(2026, 1, 1))

    for path, body in [
        (f"{API}/tax-rates/STD/", {"name": "Standard"}),
        (f"{API}/price-lists/DE/", {"name": "Deutschland"}),
        (f"{API}/price-lists/DE/prices/MILK-1L/2026-01-01/", {"price": "2.49"}),
        (f"{API}/stock-locations/BER/", {"name": "Berlin floor"}),
        (f"{API}/stores/BER/", {"name": "Berlin Mitte"}),
    ]:
        assert staff.patch(path, body).status_code == 200, path

    for model, filters in [
        (TaxRate, {"code": "STD"}),
        (PriceList, {"code": "DE"}),
        (Price, {"product_id": product.pk}),
        (StockLocation, {"code": "BER"}),
        (Store, {"code": "BER"}),
    ]:
        assert history(model, **filters)[-1] == ("~", staff.user, "api"), model


def test_api_delete_records_the_user(staff: APIClient) -> None:
    product = ProductFactory(sku="MILK-1L")
    BarcodeFactory(product=product, code="4006381333931")

    response = staff.delete(f"{API}/products/MILK-1L/")
    assert response.status_code == 204, response.content

    assert not Product.objects.filter(pk=product.pk).exists()
    assert [(t, u) for t, u, _ in history(Product, id=product.pk)][-1] == ("-", staff.user)
    assert [(t, u) for t, u, _ in history(Barcode, code="4006381333931")][-1] == (
        "-",
        staff.user,
    )


def test_api_delete_records_reason_api(staff: APIClient) -> None:
    product = ProductFactory(sku="MILK-1L")

    staff.delete(f"{API}/products/MILK-1L/")

    assert history(Product, id=product.pk)[-1] == ("-", staff.user, "api")


def test_api_delete_of_a_used_product_records_its_deactivation(
    staff: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing protects a product yet (stock moves and sale lines will): stand in for them by
    # making the product's delete report InUse, as a protected foreign key would.
    from erp.errors import InUse

    product = ProductFactory(sku="MILK-1L")
    delete = inventory_services.record_delete

    def protected(*, instance, actor=None, reason=None):
        if isinstance(instance, Product):
            raise InUse("in use")
        return delete(instance=instance, actor=actor, reason=reason)

    monkeypatch.setattr(inventory_services, "record_delete", protected)

    response = staff.delete(f"{API}/products/MILK-1L/")

    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert history(Product, id=product.pk)[-1] == ("~", staff.user, "deactivated: in use")


# --- bulk upserts --------------------------------------------------------------------------------


def test_products_bulk_writes_one_row_per_created_or_updated_product_and_none_for_unchanged(
    staff: APIClient, tax_rate
) -> None:
    # given: two products, one of which will change
    changed = ProductFactory(sku="CHANGED", name="Old name", tax_rate=tax_rate)
    same = ProductFactory(sku="SAME", name="Same", tax_rate=tax_rate)
    BarcodeFactory(product=same, code="5901234123457")
    before = {sku: len(history(Product, sku=sku)) for sku in ("CHANGED", "SAME")}
    barcodes_before = Barcode.history.count()

    # when
    response = staff.post(
        f"{API}/products/bulk",
        [
            {"sku": "NEW", "name": "New", "tax_code": "STD", "barcodes": ["4006381333931"]},
            {"sku": "CHANGED", "name": "New name"},
            {"sku": "SAME", "name": "Same", "barcodes": ["5901234123457"]},
        ],
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1
    assert response.json()["updated"] == 1
    assert response.json()["unchanged"] == 1
    assert history(Product, sku="NEW") == [("+", staff.user, "bulk upsert")]
    assert history(Product, sku="CHANGED")[before["CHANGED"] :] == [
        ("~", staff.user, "bulk upsert")
    ]
    assert Product.history.filter(sku="CHANGED").latest().name == "New name"
    assert len(history(Product, sku="SAME")) == before["SAME"]
    assert history(Barcode, code="4006381333931") == [("+", staff.user, "bulk upsert")]
    assert Barcode.history.count() == barcodes_before + 1
    assert changed.pk != same.pk


def test_products_bulk_records_moved_barcodes(staff: APIClient, tax_rate) -> None:
    # given: a barcode on OLD that a bulk upsert moves to NEW, and one that OLD gains
    old = ProductFactory(sku="OLD", tax_rate=tax_rate)
    BarcodeFactory(product=old, code="5901234123457")
    product_rows_before = Product.history.count()

    # when
    response = staff.post(
        f"{API}/products/bulk",
        [
            {"sku": "OLD", "barcodes": ["4006381333931"]},
            {"sku": "NEW", "name": "New", "tax_code": "STD", "barcodes": ["5901234123457"]},
        ],
        format="json",
    )

    # then
    assert response.status_code == 200, response.content
    moved = history(Barcode, code="5901234123457")
    assert moved[-2:] == [("-", staff.user, "bulk upsert"), ("+", staff.user, "bulk upsert")]
    # and the history reads back in time order: as of now the code belongs to NEW
    as_of_now = Barcode.history.as_of(timezone.now())
    assert as_of_now.get(code="5901234123457").product_id == Product.objects.get(sku="NEW").pk
    assert history(Barcode, code="4006381333931") == [("+", staff.user, "bulk upsert")]
    # OLD's own fields did not change: only NEW gets a product row
    assert Product.history.count() == product_rows_before + 1


def test_products_bulk_with_nothing_to_change_writes_no_history(staff: APIClient, tax_rate) -> None:
    product = ProductFactory(sku="SAME", name="Same", tax_rate=tax_rate)
    BarcodeFactory(product=product, code="5901234123457")
    counts = (Product.history.count(), Barcode.history.count())

    response = staff.post(
        f"{API}/products/bulk",
        [{"sku": "SAME", "name": "Same", "tax_code": "STD", "barcodes": ["5901234123457"]}],
        format="json",
    )

    assert response.json()["unchanged"] == 1
    assert (Product.history.count(), Barcode.history.count()) == counts


def test_refused_bulk_writes_no_history(staff: APIClient, tax_rate) -> None:
    counts = (Product.history.count(), Barcode.history.count())

    response = staff.post(
        f"{API}/products/bulk",
        [
            {"sku": "GOOD", "name": "Good", "tax_code": "STD", "barcodes": ["4006381333931"]},
            {"sku": "BAD", "name": "Bad", "tax_code": "NOPE"},
        ],
        format="json",
    )

    assert response.status_code == 400
    assert (Product.history.count(), Barcode.history.count()) == counts


def test_prices_bulk_writes_one_row_per_created_or_updated_price(staff: APIClient) -> None:
    price_list = PriceListFactory(code="DE")
    product = ProductFactory(sku="MILK-1L")
    changed = PriceFactory(
        price_list=price_list,
        product=product,
        price=Decimal("0.99"),
        valid_from=dt.date(2026, 1, 1),
        valid_to=dt.date(2026, 1, 31),
    )
    same = PriceFactory(
        price_list=price_list,
        product=product,
        price=Decimal("1.09"),
        valid_from=dt.date(2026, 2, 1),
        valid_to=dt.date(2026, 2, 28),
    )

    response = staff.post(
        f"{API}/price-lists/DE/prices/bulk",
        [
            {
                "sku": "MILK-1L",
                "price": "1.19",
                "valid_from": "2026-01-01",
                "valid_to": "2026-01-31",
            },
            {
                "sku": "MILK-1L",
                "price": "1.09",
                "valid_from": "2026-02-01",
                "valid_to": "2026-02-28",
            },
            {"sku": "MILK-1L", "price": "1.29", "valid_from": "2026-03-01"},
        ],
        format="json",
    )

    assert response.status_code == 200, response.content
    assert history(Price, id=changed.pk)[1:] == [("~", staff.user, "bulk upsert")]
    assert len(history(Price, id=same.pk)) == 1  # the factory's row only
    new = Price.objects.get(valid_from=dt.date(2026, 3, 1))
    assert history(Price, id=new.pk) == [("+", staff.user, "bulk upsert")]


# --- services called directly --------------------------------------------------------------------


def test_services_record_the_actor_they_are_given(tax_rate) -> None:
    actor = UserFactory(roles=["staff"])

    store = store_services.store_create(
        actor=actor,
        code="BER",
        name="Berlin",
        timezone="Europe/Berlin",
        currency_id="EUR",
        price_list=PriceListFactory(code="DE"),
        reason="opening",
    )
    register = store_services.register_create(actor=actor, store=store, code="R1")
    product = inventory_services.product_create(
        actor=actor, sku="MILK-1L", name="Milk", tax_rate=tax_rate, barcodes=["4006381333931"]
    )
    inventory_services.product_update(
        product=product, actor=actor, changes={"name": "Milk 1 l"}, reason="typo"
    )
    node_key, _plain = store_services.node_key_issue(actor=actor, store=store)
    store_services.node_key_revoke(node_key=node_key, actor=actor)

    assert history(Store, id=store.pk) == [("+", actor, "opening")]
    assert history(StockLocation, id=store.stock_location_id) == [("+", actor, "opening")]
    assert history(Register, id=register.pk) == [("+", actor, None)]
    assert history(Product, id=product.pk) == [("+", actor, None), ("~", actor, "typo")]
    assert [(t, u) for t, u, _ in history(Barcode, product_id=product.pk)] == [("+", actor)]
    assert history(NodeKey, id=node_key.pk) == [("+", actor, "issued"), ("~", actor, "revoked")]
    node_key.refresh_from_db()
    assert (node_key.created_by, node_key.revoked_by) == (actor, actor)


def test_services_without_an_actor_record_no_user(tax_rate) -> None:
    product = inventory_services.product_create(
        actor=None, sku="MILK-1L", name="Milk", tax_rate=tax_rate, reason="import"
    )

    assert history(Product, id=product.pk) == [("+", None, "import")]


def test_node_key_use_is_not_history(tax_rate) -> None:
    store = StoreFactory()
    _node_key, plain = store_services.node_key_issue(actor=None, store=store)
    rows = NodeKey.history.count()

    assert store_services.node_key_authenticate(key=plain) is not None

    assert NodeKey.history.count() == rows
