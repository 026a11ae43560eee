"""Scenery for the push tests: store S01 (Europe/Berlin) with registers R1 and R2, a price
list, a few products, a node key, and ``push``/``status`` helpers that talk HTTP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client

from inventory.models import Product, StockLocation, TaxRate
from stores.models import NodeKey, Register, Store
from stores.services import node_key_issue
from tests.factories import (
    PriceFactory,
    ProductFactory,
    RegisterFactory,
    StoreFactory,
    TaxRateFactory,
)
from tests.sync.builders import Till

PUSH_URL = "/api/v1/sync/push"
STATUS_URL = "/api/v1/sync/status"

# SKU -> (list price from 2026-01-01, weighed)
SKU_A = "4006381333931"
SKU_B = "SKU-B"
SKU_KG = "CHEESE-KG"
PRICES = {SKU_A: Decimal("1.99"), SKU_B: Decimal("2.50"), SKU_KG: Decimal("12.90")}

COUNTED_TABLES = (
    "sync_event",
    "sync_batch",
    "sync_eventconflict",
    "sync_deadletter",
    "stores_sale",
    "stores_saleline",
    "stores_tender",
    "stores_tillsession",
    "stores_cashmovement",
    "stores_devicereport",
    "inventory_stockmove",
    "inventory_stocklevel",
    "inventory_stockcount",
)


def table_counts() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in COUNTED_TABLES:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    return counts


@pytest.fixture
def counts(db: None) -> Callable[[], dict[str, int]]:
    """Row counts of the tables a push writes (sync_event, stores_sale, stock moves, …)."""
    return table_counts


@pytest.fixture
def tax_rate(db: None) -> TaxRate:
    return TaxRateFactory(code="STD", rate=Decimal("19.0000"), inclusive=True)


@pytest.fixture
def store(db: None, tax_rate: TaxRate) -> Store:
    return StoreFactory(code="S01", name="Berlin Mitte", timezone="Europe/Berlin")


@pytest.fixture
def registers(store: Store) -> dict[str, Register]:
    return {code: RegisterFactory(store=store, code=code) for code in ("R1", "R2")}


@pytest.fixture
def other_store(db: None, tax_rate: TaxRate) -> Store:
    """Another store, with register R9 that S01's key must not push for."""
    other = StoreFactory(code="S02", name="Hamburg", timezone="Europe/Berlin")
    RegisterFactory(store=other, code="R9")
    return other


@pytest.fixture
def products(store: Store, tax_rate: TaxRate) -> dict[str, Product]:
    made = {}
    for sku, price in PRICES.items():
        weighed = sku == SKU_KG
        product = ProductFactory(
            sku=sku,
            name=f"Product {sku}",
            tax_rate=tax_rate,
            unit="kg" if weighed else "each",
            weighed=weighed,
        )
        PriceFactory(
            price_list=store.price_list,
            product=product,
            price=price,
            valid_from=dt.date(2026, 1, 1),
        )
        made[sku] = product
    return made


@pytest.fixture
def location(store: Store) -> StockLocation:
    return store.stock_location


@pytest.fixture
def node_key(store: Store, registers: dict[str, Register]) -> tuple[NodeKey, str]:
    return node_key_issue(actor=None, store=store, label="till node")


@pytest.fixture
def key(node_key: tuple[NodeKey, str]) -> str:
    return node_key[1]


@pytest.fixture
def push(key: str, products: dict[str, Product]) -> Callable[..., HttpResponse]:
    """POST a body to the push endpoint with S01's node key (or ``auth=`` header value)."""
    client = Client()

    def send(
        body: bytes | str,
        *,
        auth: str | None = None,
        content_type: str = "application/json",
        **extra: Any,
    ) -> HttpResponse:
        headers = {"HTTP_AUTHORIZATION": auth if auth is not None else f"Bearer {key}"}
        if auth == "":
            headers = {}
        return client.post(
            PUSH_URL,
            data=body.encode() if isinstance(body, str) else body,
            content_type=content_type,
            **headers,
            **extra,
        )

    return send


@pytest.fixture
def status(key: str) -> Callable[..., HttpResponse]:
    client = Client()

    def get(*, auth: str | None = None) -> HttpResponse:
        return client.get(STATUS_URL, HTTP_AUTHORIZATION=auth or f"Bearer {key}")

    return get


@pytest.fixture
def r1() -> Till:
    return Till(register="R1")


@pytest.fixture
def r2() -> Till:
    return Till(register="R2")
