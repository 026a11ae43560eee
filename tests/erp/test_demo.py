from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from erp.demo import demo_products
from inventory.barcodes import barcode_symbology
from inventory.models import Barcode, Price, PriceList, Product, StockLocation, TaxRate, Unit
from stores.models import Register, Store
from tests.factories import StockLocationFactory


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def database_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table Django knows, history and auth included, in a stable order."""
    snapshot = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f.attname for f in model._meta.concrete_fields]
        rows = model._base_manager.values_list(*fields)
        snapshot[model._meta.label] = sorted(rows, key=repr)
    return snapshot


@pytest.fixture
def demo(db: None) -> str:
    return load_demo()


def test_demo_loads_stores_registers_catalogue_and_prices(demo: str) -> None:
    assert Store.objects.count() == 3
    assert Register.objects.count() == 6
    assert Product.objects.count() == 500
    assert TaxRate.objects.count() == 3
    assert PriceList.objects.count() == 3
    assert Price.objects.count() >= 1500
    weighed = Product.objects.filter(weighed=True)
    assert 35 <= weighed.count() <= 45
    assert set(weighed.values_list("unit", flat=True)) == {Unit.KG}
    assert set(weighed.values_list("tax_rate__code", flat=True)) == {"RED"}
    assert sorted(TaxRate.objects.values_list("code", "rate", "inclusive")) == [
        ("RED", Decimal("7"), True),
        ("STD", Decimal("19"), True),
        ("ZERO", Decimal("0"), True),
    ]


def test_demo_stores_sell_in_the_currency_of_their_price_list(demo: str) -> None:
    stores = {
        s.code: (s.name, s.timezone, s.currency_id, s.price_list.code, s.price_list.currency_id)
        for s in Store.objects.select_related("price_list")
    }
    assert stores == {
        "BER1": ("Berlin Mitte", "Europe/Berlin", "EUR", "DE", "EUR"),
        "NYC1": ("New York SoHo", "America/New_York", "USD", "US", "USD"),
        "SYD1": ("Sydney CBD", "Australia/Sydney", "AUD", "AU", "AUD"),
    }
    for store in Store.objects.all():
        assert sorted(store.registers.values_list("code", flat=True)) == ["R1", "R2"]
        assert store.stock_location.kind == StockLocation.Kind.STORE


def test_every_demo_barcode_is_a_valid_ean13(demo: str) -> None:
    codes = list(Barcode.objects.values_list("code", flat=True))
    assert len(codes) > 500  # every product has one, some have two
    assert all(barcode_symbology(code) == "EAN-13" for code in codes)
    assert all(400 <= int(code[:3]) <= 440 for code in codes)
    assert not Product.objects.filter(barcodes__isnull=True).exists()
    assert Product.objects.filter(barcodes__code__isnull=False).count() > 500


def test_every_product_has_a_price_in_every_list_with_two_decimals(demo: str) -> None:
    january = dt.date(2026, 1, 1)
    for price_list in PriceList.objects.all():
        current = Price.objects.filter(price_list=price_list, valid_from=january)
        assert current.count() == 500
    for price in Price.objects.all():
        assert price.price == price.price.quantize(Decimal("0.01"))
        assert price.price > 0


def test_some_products_have_a_forward_price_from_2027(demo: str) -> None:
    future = Price.objects.filter(valid_from=dt.date(2027, 1, 1), valid_to=None)
    changing = set(future.values_list("product_id", flat=True))
    assert 15 <= len(changing) <= 25
    assert future.count() == 3 * len(changing)
    earlier = Price.objects.filter(product_id__in=changing, valid_from=dt.date(2026, 1, 1))
    assert set(earlier.values_list("valid_to", flat=True)) == {dt.date(2026, 12, 31)}
    for price in future:
        before = earlier.get(price_list=price.price_list, product=price.product)
        assert price.price > before.price


def test_second_run_leaves_the_database_exactly_as_the_first(db: None) -> None:
    # given
    load_demo()
    first = database_snapshot()
    # when
    output = load_demo()
    # then
    second = database_snapshot()
    assert len(first["inventory.HistoricalProduct"]) == 500  # history is in the snapshot
    assert first["auth.User"]
    assert first.keys() == second.keys()
    for label in first:
        assert first[label] == second[label], label
    assert "created" not in output
    assert "updated" not in output


def test_demo_catalogue_is_generated_the_same_every_time() -> None:
    first = demo_products()
    demo_products.cache_clear()
    assert demo_products() == first
    assert len({p.sku for p in first}) == len({p.name for p in first}) == 500
    assert all(re.fullmatch(r"1\d{5}", p.sku) for p in first)


def test_summary_names_the_admin_url_user_password_and_api_docs(
    demo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "http://127.0.0.1:8000/admin/" in demo
    assert "admin" in demo
    assert "tillbook-demo" in demo
    assert "/api/docs/" in demo
    assert User.objects.get(username="admin").check_password("tillbook-demo")


def test_admin_password_comes_from_the_environment_and_is_only_set_when_different(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "s3cret-demo")
    output = load_demo()
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password("s3cret-demo")
    assert "s3cret-demo" not in output
    stored_hash = admin.password

    load_demo()
    assert User.objects.get(username="admin").password == stored_hash  # not re-hashed

    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "another-demo")
    load_demo()
    assert User.objects.get(username="admin").check_password("another-demo")


def test_application_error_is_a_one_line_command_error_and_nothing_is_loaded(db: None) -> None:
    # given: a warehouse already holds the stock-location code the first demo store needs
    StockLocationFactory(code="BER1")
    # when
    with pytest.raises(CommandError) as raised:
        load_demo()
    # then
    message = str(raised.value)
    assert message.startswith("conflict: ")
    assert "\n" not in message
    assert not TaxRate.objects.exists()
    assert not Product.objects.exists()
    assert not User.objects.filter(username="admin").exists()
