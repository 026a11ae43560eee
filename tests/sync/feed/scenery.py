"""Master data for the feed tests, written through the services as head office writes it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from inventory.models import Currency, Price, PriceList, Product, TaxRate
from inventory.services import (
    price_create,
    price_list_create,
    product_create,
    tax_rate_create,
)
from stores.models import Cashier, NodeKey, Register, Store
from stores.services import cashier_create, node_key_issue, register_create, store_create
from tests.factories import ean13
from tests.sync.feed.nodes import Node

JAN_1 = dt.date(2026, 1, 1)


@dataclass
class Shop:
    """A store, its price list and one node key."""

    store: Store
    price_list: PriceList
    node_key: NodeKey
    key: str

    def node(self, name: str | None = None) -> Node:
        return Node(self.key, name=name or f"node of {self.store.code}")

    def refresh(self) -> Shop:
        self.store.refresh_from_db()
        self.price_list = self.store.price_list
        return self


def currency(code: str) -> Currency:
    return Currency.objects.get(code=code)


def rate(code: str = "STD", percent: str = "19", **fields: Any) -> TaxRate:
    existing = TaxRate.objects.filter(code=code).first()
    if existing is not None:
        return existing
    return tax_rate_create(
        actor=None,
        code=code,
        name=fields.pop("name", f"Rate {code}"),
        rate=Decimal(percent),
        **fields,
    )


def price_list(code: str, currency_code: str) -> PriceList:
    existing = PriceList.objects.filter(code=code).first()
    if existing is not None:
        return existing
    return price_list_create(
        actor=None, code=code, name=f"List {code}", currency=currency(currency_code)
    )


def shop(
    code: str,
    list_code: str,
    currency_code: str,
    *,
    registers: tuple[str, ...] = (),
    timezone: str = "Europe/Berlin",
) -> Shop:
    plist = price_list(list_code, currency_code)
    store = store_create(
        actor=None,
        code=code,
        name=f"Store {code}",
        timezone=timezone,
        currency=currency(currency_code),
        price_list=plist,
    )
    for register_code in registers:
        register_create(actor=None, store=store, code=register_code, name=f"Till {register_code}")
    node_key, key = node_key_issue(actor=None, store=store, label=f"{code} node")
    return Shop(store=store, price_list=plist, node_key=node_key, key=key)


_barcode_serial = iter(range(10_000_000))


def barcode() -> str:
    return ean13(next(_barcode_serial), prefix="429")


def product(sku: str, *, tax: TaxRate | None = None, barcodes: int = 0, **fields: Any) -> Product:
    return product_create(
        actor=None,
        sku=sku,
        name=fields.pop("name", f"Product {sku}"),
        tax_rate=tax or rate(),
        barcodes=[barcode() for _ in range(barcodes)],
        **fields,
    )


def price(
    plist: PriceList, item: Product, amount: str, valid_from: dt.date = JAN_1, **fields: Any
) -> Price:
    return price_create(
        actor=None,
        price_list=plist,
        product=item,
        price=Decimal(amount),
        valid_from=valid_from,
        **fields,
    )


def register(store: Store, code: str, **fields: Any) -> Register:
    return register_create(actor=None, store=store, code=code, **fields)


def cashier(code: str, *stores: Store, role: str = "cashier", pin: str = "1234") -> Cashier:
    return cashier_create(
        actor=None, code=code, name=f"Cashier {code}", role=role, pin=pin, stores=list(stores)
    )
