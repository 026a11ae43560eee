"""Scenery for the books' tests: a store selling through the real push pipeline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from books.models import Account


@pytest.fixture(autouse=True)
def _chart(request: pytest.FixtureRequest) -> None:
    """The default chart and the books' role rights come from a data migration: a
    transactional test's flush removes them, so reload them when missing."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not names & {"db", "transactional_db"}:
        return
    request.getfixturevalue("_migration_data")
    if Account.objects.exists():
        return
    import importlib

    from django.apps import apps

    importlib.import_module("books.migrations.0003_default_chart_and_roles").load(apps, None)


@pytest.fixture
def shop(db: None) -> Callable[..., Any]:
    """``shop(code, timezone)`` → (store, node_key) with products A, B (cost 0.50, 1.00)."""
    from inventory.models import Product, TaxRate
    from stores.services import node_key_issue
    from tests.factories import (
        PriceFactory,
        PriceListFactory,
        ProductFactory,
        RegisterFactory,
        StoreFactory,
        TaxRateFactory,
    )

    def make(code: str = "S01", timezone: str = "Europe/Berlin"):
        TaxRateFactory(code="STD", rate=Decimal("19"), inclusive=True)
        TaxRate.objects.get_or_create(
            code="RED", defaults={"name": "Reduced", "rate": Decimal("7"), "inclusive": True}
        )
        price_list = PriceListFactory()
        store = StoreFactory(code=code, timezone=timezone, price_list=price_list)
        RegisterFactory(store=store, code="R1")
        for sku, cost, price in (("A", "0.50", "1.99"), ("B", "1.00", "3.50")):
            if Product.objects.filter(sku=sku).exists():
                continue  # a second store shares the catalogue and the price list
            product = ProductFactory(sku=sku, cost=Decimal(cost))
            PriceFactory(product=product, price_list=price_list, price=price)
        key, _ = node_key_issue(actor=None, store=store)
        return store, key

    return make


def push(key: Any, events: list[dict[str, Any]]) -> bytes:
    from sync.push.service import batch_push
    from tests.sync.builders import batch

    return batch_push(node_key=key, body=batch(events)).body


LATER = dt.datetime(2027, 1, 15, 12, tzinfo=dt.UTC)
