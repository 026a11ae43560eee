"""A store receives only what is its own: products and tax rates (global), its own price list's
prices in its own currency, its own configuration, registers and cashiers. Never another
store's, not in a full pull, not in an incremental one, not in any page.

Three stores on three lists: S01 Berlin (DE, EUR), S02 Zurich (CH, CHF), S03 Tokyo (JP, JPY).
Each list prices its products at amounts no other list uses, so a foreign price is visible
in the data even where the keys coincide.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from inventory.models import Price, Product, TaxRate
from inventory.services import price_delete, price_update, product_update
from stores.models import Cashier, Register
from stores.services import (
    cashier_store_add,
    cashier_store_remove,
    cashier_update,
    register_update,
    store_update,
)
from tests.sync.feed import scenery
from tests.sync.feed.nodes import Node, diff, hq_state, pull_db
from tests.sync.feed.scenery import Shop

pytestmark = pull_db

# The amount of every price in a list (as sent), and the amounts the tests change them to.
AMOUNTS = {"DE": "1.10", "CH": "2.20", "JP": "330"}
CHANGED = {"DE": "9.90", "CH": "8.80", "JP": "990"}
# What each store may ever see, including what the tests add.
CASHIERS = {"S01": {"CB", "CBZ"}, "S02": {"CZ", "CBZ"}, "S03": {"CT"}}
REGISTERS = {"S01": {"R1", "R2"}, "S02": {"Z1"}, "S03": {"T1"}}
ADDED_CASHIERS = {"S01": set(), "S02": set(), "S03": {"CNEW", "CBZ"}}
ADDED_REGISTERS = {"S01": {"R3"}, "S02": {"Z2"}, "S03": set()}


@pytest.fixture
def shops(berlin: Shop, zurich: Shop, tokyo: Shop, std_rate: TaxRate) -> dict[str, Shop]:
    products = [scenery.product(f"P{n}", barcodes=1) for n in range(5)]
    for shop, priced in ((berlin, products[:4]), (zurich, products[1:]), (tokyo, products[::2])):
        for item in priced:
            scenery.price(shop.price_list, item, AMOUNTS[shop.price_list.code])
    scenery.cashier("CB", berlin.store)
    scenery.cashier("CZ", zurich.store)
    scenery.cashier("CBZ", berlin.store, zurich.store, role="supervisor")
    scenery.cashier("CT", tokyo.store)
    return {"S01": berlin, "S02": zurich, "S03": tokyo}


def assert_only_its_own(shop: Shop, changes: list[dict[str, Any]]) -> None:
    """No change a store received belongs to another store."""
    code, list_code = shop.store.code, shop.store.price_list.code
    for change in changes:
        entity, key, data = change["entity"], change["key"], change["data"]
        if entity == "store_config":
            assert key == code, change
        elif entity == "register":
            assert key in REGISTERS[code] | ADDED_REGISTERS[code], change
        elif entity == "cashier":
            assert key in CASHIERS[code] | ADDED_CASHIERS[code], change
        elif entity == "price" and data is not None:
            assert data["price"] in {AMOUNTS[list_code], CHANGED[list_code]}, change


def nodes_of(shops: dict[str, Shop]) -> dict[str, Node]:
    return {code: shop.node() for code, shop in shops.items()}


def test_a_full_pull_brings_each_store_its_own_and_nothing_else(shops: dict[str, Shop]) -> None:
    for code, shop in shops.items():
        # when
        node = shop.node()
        changes = node.sync(limit=3)

        # then
        assert_only_its_own(shop, changes)
        assert node.state == hq_state(shop.store), (code, diff(node.state, hq_state(shop.store)))
        prices = {k: d["price"] for (e, k), d in node.state.items() if e == "price"}
        amount = AMOUNTS[shop.price_list.code]
        assert prices, code
        assert set(prices.values()) == {amount}, (code, prices)
        assert {k for (e, k) in node.state if e == "cashier"} == CASHIERS[code]
        assert {k for (e, k) in node.state if e == "register"} == REGISTERS[code]
        assert {k for (e, k) in node.state if e == "store_config"} == {code}
        assert {k for (e, k) in node.state if e == "product"} == {f"P{n}" for n in range(5)}


def test_the_same_product_is_priced_in_each_stores_currency(shops: dict[str, Shop]) -> None:
    # when: P2 is priced in all three lists
    states = {code: shop.node() for code, shop in shops.items()}
    for node in states.values():
        node.sync()

    # then
    assert {
        code: node.state[("price", "P2@2026-01-01")]["price"] for code, node in states.items()
    } == {"S01": "1.10", "S02": "2.20", "S03": "330"}
    assert states["S03"].state[("store_config", "S03")]["currency_minor_units"] == 0


def test_incremental_pulls_bring_each_store_its_own_changes_only(shops: dict[str, Shop]) -> None:
    # given: every node in sync
    nodes = nodes_of(shops)
    for node in nodes.values():
        node.sync()
    berlin, zurich, tokyo = (shops[c] for c in ("S01", "S02", "S03"))

    # when: Zurich's list, registers, cashiers and configuration change
    price_update(
        price=zurich.price_list.prices.get(product__sku="P1"),
        actor=None,
        changes={"price": Decimal("8.80")},
    )
    price_delete(price=zurich.price_list.prices.get(product__sku="P2"), actor=None)
    scenery.price(zurich.price_list, Product.objects.get(sku="P0"), "8.80")
    register_update(
        register=Register.objects.get(store=zurich.store, code="Z1"),
        actor=None,
        changes={"name": "Kasse 1"},
    )
    scenery.register(zurich.store, "Z2")
    cashier_update(cashier=Cashier.objects.get(code="CZ"), actor=None, changes={"name": "Zoe"})
    store_update(store=zurich.store, actor=None, changes={"offline_card_limit": Decimal("80")})
    changes = {code: node.sync(limit=2) for code, node in nodes.items()}

    # then: Zurich got them all; Berlin and Tokyo nothing
    assert {(c["entity"], c["key"], c["op"]) for c in changes["S02"]} == {
        ("price", "P1@2026-01-01", "upsert"),
        ("price", "P2@2026-01-01", "delete"),
        ("price", "P0@2026-01-01", "upsert"),
        ("register", "Z1", "upsert"),
        ("register", "Z2", "upsert"),
        ("cashier", "CZ", "upsert"),
        ("store_config", "S02", "upsert"),
    }
    assert changes["S01"] == changes["S03"] == []

    # when: Berlin's list changes, and a product (everyone's)
    price_update(
        price=berlin.price_list.prices.get(product__sku="P3"),
        actor=None,
        changes={"price": Decimal("9.90")},
    )
    product_update(product=Product.objects.get(sku="P4"), actor=None, changes={"name": "New"})
    changes = {code: node.sync(limit=1) for code, node in nodes.items()}

    # then
    assert [(c["entity"], c["key"]) for c in changes["S01"]] == [
        ("price", "P3@2026-01-01"),
        ("product", "P4"),
    ]
    assert [(c["entity"], c["key"]) for c in changes["S02"]] == [("product", "P4")]
    assert [(c["entity"], c["key"]) for c in changes["S03"]] == [("product", "P4")]
    for code, node in nodes.items():
        assert_only_its_own(shops[code], node.received)
        assert node.state == hq_state(shops[code].store), (
            code,
            diff(node.state, hq_state(shops[code].store)),
        )
    assert tokyo.store.price_list.code == "JP"


def test_a_cashier_working_in_two_stores_appears_in_both_and_leaves_one(
    shops: dict[str, Shop],
) -> None:
    # given
    nodes = nodes_of(shops)
    for node in nodes.values():
        node.sync()
    assert ("cashier", "CBZ") in nodes["S01"].state
    assert ("cashier", "CBZ") in nodes["S02"].state
    assert ("cashier", "CBZ") not in nodes["S03"].state
    person = Cashier.objects.get(code="CBZ")

    # when: the shared cashier changes
    cashier_update(cashier=person, actor=None, changes={"active": False}, pin="24680")
    changes = {code: node.sync() for code, node in nodes.items()}

    # then: both of their stores hear of it, the third does not
    for code in ("S01", "S02"):
        [change] = changes[code]
        assert (change["key"], change["op"], change["data"]["active"]) == ("CBZ", "upsert", False)
        assert change["data"]["pin_hash"] == Cashier.objects.get(code="CBZ").pin_hash
    assert changes["S03"] == []

    # when: they stop working in Zurich and start in Tokyo
    cashier_store_remove(cashier=person, store=shops["S02"].store, actor=None)
    cashier_store_add(cashier=person, store=shops["S03"].store, actor=None)
    changes = {code: node.sync() for code, node in nodes.items()}

    # then
    assert changes["S01"] == []
    assert [(c["key"], c["op"]) for c in changes["S02"]] == [("CBZ", "delete")]
    assert [(c["key"], c["op"]) for c in changes["S03"]] == [("CBZ", "upsert")]
    for code, node in nodes.items():
        assert node.state == hq_state(shops[code].store), code


def test_a_store_on_another_list_stops_hearing_of_its_old_list(shops: dict[str, Shop]) -> None:
    # given: Berlin and a second store on DE, both in sync; a new EUR list
    berlin = shops["S01"]
    hamburg = scenery.shop("S04", "DE", "EUR", registers=("H1",))
    nodes = {"S01": berlin.node(), "S04": hamburg.node()}
    for node in nodes.values():
        node.sync()
    outlet = scenery.price_list("OUTLET", "EUR")
    scenery.price(outlet, Product.objects.get(sku="P4"), "0.99")

    # when: Berlin moves to OUTLET
    store_update(store=berlin.store, actor=None, changes={"price_list": outlet})
    switch = {code: node.sync(limit=2) for code, node in nodes.items()}

    # then: Berlin drops DE's prices and takes OUTLET's; Hamburg hears nothing
    assert {(c["key"], c["op"]) for c in switch["S01"] if c["entity"] == "price"} == {
        ("P0@2026-01-01", "delete"),
        ("P1@2026-01-01", "delete"),
        ("P2@2026-01-01", "delete"),
        ("P3@2026-01-01", "delete"),
        ("P4@2026-01-01", "upsert"),
    }
    assert switch["S04"] == []

    # when: DE changes afterwards
    price_update(
        price=Price.objects.get(price_list__code="DE", product__sku="P0"),
        actor=None,
        changes={"price": Decimal("9.90")},
    )
    after = {code: node.sync() for code, node in nodes.items()}

    # then: only the store still on DE hears of it
    assert after["S01"] == []
    assert [(c["key"], c["data"]["price"]) for c in after["S04"]] == [("P0@2026-01-01", "9.90")]
    for code, node in nodes.items():
        store = berlin.store if code == "S01" else hamburg.store
        assert node.state == hq_state(store), (code, diff(node.state, hq_state(store)))


@pytest.mark.parametrize("limit", [1, 500])
def test_a_price_the_old_list_dropped_after_the_cursor_is_dropped_by_the_switch(
    shops: dict[str, Shop], limit: int
) -> None:
    # given: Berlin's node in sync; then DE deletes one price and moves another to a new date,
    # and Berlin moves to OUTLET before its node has pulled either change
    berlin = shops["S01"]
    node = berlin.node()
    node.sync()
    de = berlin.price_list
    price_delete(price=Price.objects.get(price_list=de, product__sku="P0"), actor=None)
    price_update(
        price=Price.objects.get(price_list=de, product__sku="P1"),
        actor=None,
        changes={"valid_from": dt.date(2026, 2, 1)},
    )
    outlet = scenery.price_list("OUTLET", "EUR")
    scenery.price(outlet, Product.objects.get(sku="P4"), "0.99")
    store_update(store=berlin.store, actor=None, changes={"price_list": outlet})

    # when: the node pulls (it no longer reads DE, where the two tombstones are)
    changes = node.sync(limit=limit)

    # then: it holds OUTLET's price only; the deleted and the moved-away DE keys are gone too
    deletes = {c["key"] for c in changes if c["entity"] == "price" and c["op"] == "delete"}
    assert {"P0@2026-01-01", "P1@2026-01-01"} <= deletes
    assert {key for entity, key in node.state if entity == "price"} == {"P4@2026-01-01"}
    assert node.state == hq_state(berlin.store), diff(node.state, hq_state(berlin.store))


def test_pages_of_one_interleaved_with_changes_never_carry_another_stores_data(
    shops: dict[str, Shop],
) -> None:
    # given: every node starts paging one change at a time
    nodes = nodes_of(shops)
    steps = [
        lambda: scenery.price(
            shops["S02"].price_list,
            Product.objects.get(sku="P0"),
            "2.20",
            valid_from=dt.date(2027, 1, 1),
        ),
        lambda: scenery.register(shops["S01"].store, "R3"),
        lambda: scenery.cashier("CNEW", shops["S03"].store),
        lambda: store_update(store=shops["S03"].store, actor=None, changes={"name": "Ginza"}),
        lambda: price_delete(
            price=shops["S01"].price_list.prices.get(product__sku="P0"), actor=None
        ),
        lambda: scenery.rate("RED", "7"),
    ]
    # when: each node takes a page of one between the changes, then catches up
    for step in steps:
        for node in nodes.values():
            node.pull(limit=1)
        step()
    for node in nodes.values():
        node.sync(limit=1)

    # then
    for code, node in nodes.items():
        assert_only_its_own(shops[code], node.received)
        assert node.state == hq_state(shops[code].store), (
            code,
            diff(node.state, hq_state(shops[code].store)),
        )
