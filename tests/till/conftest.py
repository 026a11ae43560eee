"""A store node's till, in process: node state, a mirror of master data (store S01 in
Europe/Berlin selling in EUR, tax rates, products with barcodes and prices, cashiers), a dummy
printer that prints inline and device state in a directory of the test's own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient

from devices.printers import DummyPrinter, set_printer
from devices.terminals import SimulatedTerminal, set_terminal
from stores.local import (
    LocalBarcode,
    LocalCashier,
    LocalPrice,
    LocalProduct,
    LocalRegister,
    LocalStoreConfig,
    LocalTaxRate,
    NodeState,
)
from stores.till.auth import cashier_authenticate

CASHIER, CASHIER_PIN = "C1", "1234"
SUPERVISOR, SUPERVISOR_PIN = "SV", "2580"
MILK_EAN = "4006381333931"
BREAD_EAN = "4000417025005"
APPLES_PLU = "2100042000001"  # an in-store code with its weight zeroed: apples, weighed
# 10:00 in Berlin on 23 November 2026
NOON = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)

PRODUCTS: list[tuple[str, str, str, str, bool, list[str], str]] = [
    # sku, name, unit, tax code, weighed, barcodes, price
    ("MILK", "Milk 1 L", "each", "RED", False, [MILK_EAN], "1.19"),
    ("BREAD", "Rye bread", "each", "RED", False, [BREAD_EAN], "2.49"),
    ("WINE", "Red wine", "each", "STD", False, [], "6.99"),
    ("APPLES", "Apples", "kg", "RED", True, [APPLES_PLU], "2.99"),
    ("CHEESE", "Comté", "kg", "RED", True, [], "24.90"),
    ("BAG", "Carrier bag", "each", "EXC", False, [], "0.33"),
    ("OLD", "Discontinued", "each", "STD", False, [], "1.00"),
]


def ean13(body: str) -> str:
    from inventory.barcodes import gs1_check_digit

    return body + str(gs1_check_digit(body))


@dataclass
class Till:
    cashier: LocalCashier
    supervisor: LocalCashier
    printer: DummyPrinter
    terminal: SimulatedTerminal
    state_dir: Path


def store_config(**over: Any) -> dict[str, Any]:
    data = {
        "code": "S01",
        "name": "Berlin Mitte",
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "currency_minor_units": 2,
        "price_list": "DE",
        "active": True,
        "offline": {"card_limit": "50.00", "warn_after_hours": 4},
        "supervisor_operations": [
            "price_override",
            "line_discount",
            "basket_discount",
            "return_without_receipt",
            "cash_pay_out",
        ],
    }
    data.update(over)
    return data


def seed_mirror(*, pin_hash=make_password) -> None:
    NodeState.objects.create(
        hq_url="http://127.0.0.1:9", store_code="S01", register_code="R1", node_key="tbk_x_y"
    )
    LocalStoreConfig.objects.create(code="S01", data=store_config(), version=1)
    LocalRegister.objects.create(code="R1", version=1)
    for code, rate, inclusive in (("STD", "19", True), ("RED", "7", True), ("EXC", "8.875", False)):
        LocalTaxRate.objects.create(code=code, rate=Decimal(rate), inclusive=inclusive, version=1)
    for sku, name, unit, tax, weighed, barcodes, price in PRODUCTS:
        product = LocalProduct.objects.create(
            sku=sku,
            name=name,
            unit=unit,
            tax_code=tax,
            weighed=weighed,
            version=1,
            active=sku != "OLD",
        )
        for barcode in barcodes:
            LocalBarcode.objects.create(code=barcode, product=product)
        LocalPrice.objects.create(
            key=f"{sku}@2026-01-01",
            sku=sku,
            price=Decimal(price),
            valid_from=dt.date(2026, 1, 1),
            version=1,
        )
    LocalCashier.objects.create(
        code=CASHIER, name="Cara", role="cashier", pin_hash=pin_hash(CASHIER_PIN), version=1
    )
    LocalCashier.objects.create(
        code=SUPERVISOR, name="Sam", role="supervisor", pin_hash=pin_hash(SUPERVISOR_PIN), version=1
    )


@pytest.fixture
def devices(settings: Any, tmp_path: Path) -> Iterator[tuple[DummyPrinter, SimulatedTerminal]]:
    settings.DEVICES_PRINT_INLINE = True
    settings.DEVICES_STATE_DIR = str(tmp_path / "devices")
    printer, terminal = DummyPrinter(), SimulatedTerminal(mode="approve")
    set_printer(printer)
    set_terminal(terminal)
    yield printer, terminal
    set_printer(None)
    set_terminal(None)


@pytest.fixture
def till(db: None, devices: tuple[DummyPrinter, SimulatedTerminal], tmp_path: Path) -> Till:
    seed_mirror()
    printer, terminal = devices
    return Till(
        cashier=cashier_authenticate(code=CASHIER, pin=CASHIER_PIN),
        supervisor=cashier_authenticate(code=SUPERVISOR, pin=SUPERVISOR_PIN),
        printer=printer,
        terminal=terminal,
        state_dir=tmp_path / "devices",
    )


@pytest.fixture
def api(till: Till) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_CASHIER=CASHIER, HTTP_X_CASHIER_PIN=CASHIER_PIN)
    return client
