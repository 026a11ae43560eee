from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

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
from sync.node.feed import FeedError, feed_page_apply, feed_resync_start


def product(sku: str, version: int, *, name: str = "Milk", barcodes: list[str] | None = None,
            op: str = "upsert") -> dict[str, Any]:  # fmt: skip
    data = {
        "sku": sku,
        "name": name,
        "barcodes": barcodes if barcodes is not None else [],
        "unit": "each",
        "tax_code": "STD",
        "active": True,
        "weighed": False,
    }
    return {"entity": "product", "key": sku, "op": op, "version": version,
            "data": data if op == "upsert" else None}  # fmt: skip


def price(sku: str, version: int, amount: str, valid_from: str = "2026-01-01") -> dict[str, Any]:
    return {
        "entity": "price",
        "key": f"{sku}@{valid_from}",
        "op": "upsert",
        "version": version,
        "data": {"sku": sku, "price": amount, "valid_from": valid_from, "valid_to": None},
    }


def everything(version: int = 1) -> list[dict[str, Any]]:
    """A first page of every entity, shaped as sync.feed.pull serves them."""
    return [
        product("SKU-A", version, barcodes=["4000000000017", "4000000000024"]),
        price("SKU-A", version, "1.9900"),
        {"entity": "tax_rate", "key": "STD", "op": "upsert", "version": version,
         "data": {"code": "STD", "name": "Standard", "rate": "19.0000", "inclusive": True,
                  "active": True}},
        {"entity": "store_config", "key": "S01", "op": "upsert", "version": version,
         "data": {"code": "S01", "timezone": "Europe/Berlin", "currency": "EUR",
                  "currency_minor_units": 2, "offline": {"card_limit": "50.00"}}},
        {"entity": "register", "key": "R1", "op": "upsert", "version": version,
         "data": {"code": "R1", "name": "Till 1", "active": True}},
        {"entity": "cashier", "key": "C7", "op": "upsert", "version": version,
         "data": {"code": "C7", "name": "Ann", "role": "cashier", "pin_hash": "pbkdf2$x",
                  "active": True}},
    ]  # fmt: skip


def mirror() -> dict[str, Any]:
    return {
        "products": list(LocalProduct.objects.values_list("sku", "name", "version")),
        "barcodes": list(LocalBarcode.objects.values_list("code", "product_id")),
        "prices": list(LocalPrice.objects.values_list("key", "price", "version")),
        "tax": list(LocalTaxRate.objects.values_list("code", "rate")),
        "configs": list(LocalStoreConfig.objects.values_list("code", "data")),
        "registers": list(LocalRegister.objects.values_list("code", "active")),
        "cashiers": list(LocalCashier.objects.values_list("code", "pin_hash")),
    }


def test_a_first_page_fills_the_mirror_and_stores_the_cursor(node: NodeState) -> None:
    result = feed_page_apply(changes=everything(), cursor="c1", etag='"e1"', complete=True)

    assert result.applied == 6
    assert mirror() == {
        "products": [("SKU-A", "Milk", 1)],
        "barcodes": [("4000000000017", "SKU-A"), ("4000000000024", "SKU-A")],
        "prices": [("SKU-A@2026-01-01", Decimal("1.9900"), 1)],
        "tax": [("STD", Decimal("19.0000"))],
        "configs": [("S01", everything()[3]["data"])],
        "registers": [("R1", True)],
        "cashiers": [("C7", "pbkdf2$x")],
    }
    node.refresh_from_db()
    assert (node.cursor, node.pull_etag) == ("c1", '"e1"')
    assert node.last_pull_at is not None
    price_row = LocalPrice.objects.get()
    assert (price_row.sku, price_row.valid_from, price_row.valid_to) == (
        "SKU-A",
        dt.date(2026, 1, 1),
        None,
    )


def test_a_page_with_more_to_come_moves_the_cursor_but_not_the_pull_time(node: NodeState) -> None:
    feed_page_apply(changes=everything(), cursor="c1", complete=False)
    node.refresh_from_db()
    assert node.cursor == "c1"
    assert node.last_pull_at is None


def test_applying_a_page_twice_changes_nothing_more(node: NodeState) -> None:
    feed_page_apply(changes=everything(), cursor="c1", complete=True)
    before = mirror()
    feed_page_apply(changes=everything(), cursor="c1", complete=True)
    assert mirror() == before


def test_a_newer_version_replaces_and_an_older_one_is_left_alone(node: NodeState) -> None:
    feed_page_apply(changes=[product("SKU-A", 5, name="Milk 1l")], cursor="c1", complete=True)

    older = feed_page_apply(changes=[product("SKU-A", 4, name="stale")], cursor="c2", complete=True)
    assert older.stale == 1
    assert mirror()["products"] == [("SKU-A", "Milk 1l", 5)]

    feed_page_apply(changes=[product("SKU-A", 9, name="Milk 1 l")], cursor="c3", complete=True)
    assert mirror()["products"] == [("SKU-A", "Milk 1 l", 9)]


def test_a_delete_removes_the_product_and_its_barcodes(node: NodeState) -> None:
    feed_page_apply(
        changes=[product("SKU-A", 1, barcodes=["111"]), product("SKU-B", 1, barcodes=["222"])],
        cursor="c1",
        complete=True,
    )
    result = feed_page_apply(
        changes=[product("SKU-A", 2, op="delete"), product("SKU-X", 3, op="delete")],
        cursor="c2",
        complete=True,
    )
    assert result.deleted == 1  # SKU-X was never here: nothing to do
    assert mirror()["products"] == [("SKU-B", "Milk", 1)]
    assert mirror()["barcodes"] == [("222", "SKU-B")]


def test_a_delete_older_than_the_stored_upsert_is_ignored(node: NodeState) -> None:
    feed_page_apply(changes=[product("SKU-A", 7)], cursor="c1", complete=True)
    feed_page_apply(changes=[product("SKU-A", 6, op="delete")], cursor="c2", complete=True)
    assert mirror()["products"] == [("SKU-A", "Milk", 7)]


def test_barcodes_are_replaced_with_each_change_and_can_move_between_products(
    node: NodeState,
) -> None:
    feed_page_apply(
        changes=[product("SKU-A", 1, barcodes=["111", "222"]), product("SKU-B", 1)],
        cursor="c1",
        complete=True,
    )
    # 222 moves to SKU-B; this page does not touch SKU-A (its change comes later)
    feed_page_apply(changes=[product("SKU-B", 2, barcodes=["222"])], cursor="c2", complete=True)
    assert mirror()["barcodes"] == [("111", "SKU-A"), ("222", "SKU-B")]
    feed_page_apply(changes=[product("SKU-A", 3, barcodes=["111"])], cursor="c3", complete=True)
    assert mirror()["barcodes"] == [("111", "SKU-A"), ("222", "SKU-B")]


def test_the_highest_version_of_a_key_within_one_page_wins(node: NodeState) -> None:
    feed_page_apply(
        changes=[price("SKU-A", 8, "2.49"), price("SKU-A", 3, "1.99")], cursor="c1", complete=True
    )
    assert mirror()["prices"] == [("SKU-A@2026-01-01", Decimal("2.4900"), 8)]


def test_unknown_entities_are_skipped(node: NodeState) -> None:
    result = feed_page_apply(
        changes=[{"entity": "loyalty_tier", "key": "gold", "op": "upsert", "version": 1,
                  "data": {}}, product("SKU-A", 1)],
        cursor="c1",
        complete=True,
    )  # fmt: skip
    assert (result.applied, result.ignored) == (1, 1)


@pytest.mark.parametrize(
    "bad",
    [
        {**price("SKU-A", 2, "1.99"), "data": {"sku": "SKU-A", "price": "1,99",
                                               "valid_from": "2026-01-01", "valid_to": None}},
        {**product("SKU-A", 2), "data": {"sku": "SKU-A"}},
        {**product("SKU-A", 2), "version": "2"},
        {**product("SKU-A", 2), "op": "merge"},
        {**product("SKU-A", 2), "data": None},
        "not a change",
    ],
)  # fmt: skip
def test_an_unreadable_change_applies_nothing_of_its_page_and_keeps_the_cursor(
    node: NodeState, bad: object
) -> None:
    feed_page_apply(changes=[product("SKU-A", 1)], cursor="c1", complete=True)

    with pytest.raises(FeedError):
        feed_page_apply(changes=[product("SKU-B", 2), bad], cursor="c2", complete=True)

    assert mirror()["products"] == [("SKU-A", "Milk", 1)]
    node.refresh_from_db()
    assert node.cursor == "c1"


# --- a pull from nothing on a node that already holds data ---------------------------------------


def test_a_full_pull_removes_what_head_office_no_longer_has(node: NodeState) -> None:
    # given: a mirror from earlier, then head office lost SKU-B and C7 (its cursor is gone,
    # so the node pulls afresh and receives no tombstones)
    feed_page_apply(
        changes=[*everything(), product("SKU-B", 2, barcodes=["222"])], cursor="c1", complete=True
    )

    # when: the fresh pull comes in two pages, interrupted in between (a crash: the next page
    # arrives in a new call with nothing remembered but the database)
    feed_resync_start()
    feed_page_apply(changes=everything(3)[:2], cursor="r1", complete=False)
    assert LocalProduct.objects.filter(sku="SKU-B").exists()  # not before the end
    feed_page_apply(changes=everything(3)[2:5], cursor="r2", complete=True)

    # then
    assert mirror()["products"] == [("SKU-A", "Milk", 3)]
    assert mirror()["barcodes"] == [("4000000000017", "SKU-A"), ("4000000000024", "SKU-A")]
    assert mirror()["cashiers"] == []
    assert mirror()["registers"] == [("R1", True)]
    node.refresh_from_db()
    assert not node.resyncing


def test_a_full_pull_keeps_rows_it_saw_even_when_it_saw_them_older(node: NodeState) -> None:
    feed_page_apply(changes=[product("SKU-A", 9)], cursor="c1", complete=True)
    feed_resync_start()
    result = feed_page_apply(changes=[product("SKU-A", 5)], cursor="r1", complete=True)
    assert result.stale == 1
    assert mirror()["products"] == [("SKU-A", "Milk", 9)]


def test_an_incremental_pull_removes_nothing_it_did_not_see(node: NodeState) -> None:
    feed_page_apply(changes=everything(), cursor="c1", complete=True)  # no resync started
    feed_page_apply(changes=[product("SKU-Z", 2)], cursor="c2", complete=True)
    assert [sku for sku, _, _ in mirror()["products"]] == ["SKU-A", "SKU-Z"]
