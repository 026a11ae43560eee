"""Every write of master data lands in ``sync_feedchange`` in the writing transaction.

The feed is written by database triggers (``sync.feed.triggers``), so each path is tried:
the services (what the admin and the HQ API call), the bulk upserts, plain ORM saves and
``QuerySet.update()``, and raw SQL. Rows are read straight from the feed table; what a node
receives from them is the pull tests' business. These run inside the test's transaction on
both databases, so every row seen here was written by the transaction that made the change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from inventory.models import Barcode, Price, PriceList, Product, TaxRate
from inventory.services import (
    price_delete,
    price_update,
    prices_bulk_upsert,
    product_delete,
    product_update,
    products_bulk_upsert,
    tax_rate_delete,
    tax_rate_update,
)
from stores.models import Cashier, Store
from stores.services import (
    cashier_delete,
    cashier_store_remove,
    cashier_update,
    register_delete,
    register_update,
    store_update,
)
from sync.feed import triggers
from sync.models import FeedChange
from tests.sync.feed import scenery
from tests.sync.feed.nodes import ON_POSTGRES
from tests.sync.feed.scenery import JAN_1, Shop

pytestmark = pytest.mark.django_db

BULK = 2_500
MAR_1 = dt.date(2026, 3, 1)


# --- helpers -------------------------------------------------------------------------------------


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def current_txid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        return cursor.fetchone()[0]


def pl(price_list: PriceList) -> str:
    return f"pl:{price_list.pk}"


def of(store: Store) -> str:
    return f"store:{store.pk}"


def feed(entity: str | None = None, scope: str | None = None) -> dict[tuple, FeedChange]:
    rows = FeedChange.objects.all()
    if entity:
        rows = rows.filter(entity=entity)
    if scope:
        rows = rows.filter(scope=scope)
    return {(r.entity, r.scope, r.entity_key): r for r in rows}


def row(entity: str, scope: str, key: str) -> FeedChange:
    return FeedChange.objects.get(entity=entity, scope=scope, entity_key=key)


def versions(entity: str | None = None, scope: str | None = None) -> dict[tuple, tuple]:
    return {k: (r.op, r.version, r.obj_id) for k, r in feed(entity, scope).items()}


def max_version() -> int:
    return max(FeedChange.objects.values_list("version", flat=True), default=0)


def assert_upsert(entity: str, scope: str, key: str, obj_id: int, *, after: int = 0) -> None:
    found = row(entity, scope, key)
    assert (found.op, found.obj_id) == ("upsert", obj_id), found
    assert found.version > after, (found, after)
    if connection.vendor == "postgresql":
        assert found.txid == current_txid()


def assert_tombstone(entity: str, scope: str, key: str, *, after: int = 0) -> None:
    found = row(entity, scope, key)
    assert (found.op, found.obj_id) == ("delete", None), found
    assert found.version > after, (found, after)


@pytest.fixture
def catalogue(berlin: Shop, std_rate: TaxRate) -> dict[str, Any]:
    """Two products with prices in Berlin's list and a cashier in Berlin."""
    a = scenery.product("A", barcodes=1)
    b = scenery.product("B")
    return {
        "A": a,
        "B": b,
        "price_a": scenery.price(berlin.price_list, a, "1.99"),
        "price_b": scenery.price(berlin.price_list, b, "2.50"),
        "cashier": scenery.cashier("C1", berlin.store),
    }


# --- the services --------------------------------------------------------------------------------


def test_each_service_write_lands_in_the_feed_inside_its_transaction(berlin: Shop) -> None:
    with transaction.atomic():
        # when: head office creates one of everything
        tax = scenery.rate("RED", "7")
        item = scenery.product("SKU-1", tax=tax, barcodes=2)
        price = scenery.price(berlin.price_list, item, "3.49", valid_from=MAR_1)
        till = scenery.register(berlin.store, "R9", name="Back office")
        person = scenery.cashier("C42", berlin.store)
        other = scenery.shop("S09", "DE", "EUR")

        # then: before the transaction ends, each has its row, written by this transaction
        assert_upsert("tax_rate", "global", "RED", tax.pk)
        assert_upsert("product", "global", "SKU-1", item.pk)
        assert_upsert("price", pl(berlin.price_list), "SKU-1@2026-03-01", price.pk)
        assert_upsert("register", of(berlin.store), "R9", till.pk)
        assert_upsert("cashier", of(berlin.store), "C42", person.pk)
        assert_upsert("store_config", of(other.store), "S09", other.store.pk)
    # one row each: the barcodes touched their product, they have no rows of their own
    assert set(feed("product")) == {("product", "global", "SKU-1")}
    assert not FeedChange.objects.filter(entity="barcode").exists()


def test_an_update_moves_the_entitys_one_row_to_a_newer_version(
    berlin: Shop, catalogue: dict[str, Any]
) -> None:
    # given
    before = max_version()
    count = FeedChange.objects.count()

    # when: every kind of entity is edited through its service
    product_update(product=catalogue["A"], actor=None, changes={"name": "Apple juice"})
    price_update(price=catalogue["price_b"], actor=None, changes={"price": Decimal("2.45")})
    tax_rate_update(tax_rate=TaxRate.objects.get(code="STD"), actor=None, changes={"name": "VAT"})
    store_update(store=berlin.store, actor=None, changes={"offline_warn_hours": 8})
    register_update(
        register=berlin.store.registers.get(code="R1"), actor=None, changes={"active": False}
    )
    cashier_update(cashier=catalogue["cashier"], actor=None, changes={"name": "Carla"})

    # then: the same rows, each at a version newer than anything before
    assert FeedChange.objects.count() == count
    for entity, scope, key in [
        ("product", "global", "A"),
        ("price", pl(berlin.price_list), "B@2026-01-01"),
        ("tax_rate", "global", "STD"),
        ("store_config", of(berlin.store), "S01"),
        ("register", of(berlin.store), "R1"),
        ("cashier", of(berlin.store), "C1"),
    ]:
        found = row(entity, scope, key)
        assert found.op == "upsert"
        assert found.version > before, found
    # untouched entities keep their versions
    assert row("product", "global", "B").version < before


def test_deletes_leave_tombstones(berlin: Shop, catalogue: dict[str, Any]) -> None:
    # given
    spare_rate = scenery.rate("ZERO", "0")
    before = max_version()

    # when
    assert product_delete(product=catalogue["A"], actor=None)  # never used: deleted
    price_delete(price=catalogue["price_b"], actor=None)
    register_delete(register=berlin.store.registers.get(code="R2"), actor=None)
    tax_rate_delete(tax_rate=spare_rate, actor=None)
    assert cashier_delete(cashier=catalogue["cashier"], actor=None)

    # then: each row stays as a tombstone (no data to point at), newer than before
    assert_tombstone("product", "global", "A", after=before)
    assert_tombstone("price", pl(berlin.price_list), "A@2026-01-01", after=before)  # cascade
    assert_tombstone("price", pl(berlin.price_list), "B@2026-01-01", after=before)
    assert_tombstone("register", of(berlin.store), "R2", after=before)
    assert_tombstone("tax_rate", "global", "ZERO", after=before)
    assert_tombstone("cashier", of(berlin.store), "C1", after=before)
    assert row("product", "global", "B").op == "upsert"


# --- bulk paths ----------------------------------------------------------------------------------


def test_products_bulk_upsert_gives_every_product_its_row(std_rate: TaxRate) -> None:
    # when: 2,500 products created in one request, every tenth with a barcode
    rows = [
        {"sku": f"BULK{n:05d}", "name": f"Bulk {n}", "tax_code": "STD"}
        | ({"barcodes": [scenery.barcode()]} if n % 10 == 0 else {})
        for n in range(BULK)
    ]
    with transaction.atomic():
        result = products_bulk_upsert(actor=None, rows=rows)
        # then: one upsert per product, pointing at it, written by this transaction
        assert result.created == BULK
        created = versions("product")
        ids = dict(Product.objects.values_list("sku", "pk"))
        assert {k[2]: (op, obj) for k, (op, _v, obj) in created.items()} == {
            sku: ("upsert", pk) for sku, pk in ids.items()
        }
        if connection.vendor == "postgresql":
            assert set(FeedChange.objects.values_list("txid", flat=True)) == {current_txid()}

    # when: every product renamed, and half of them given no change at all
    renamed = [
        {"sku": r["sku"], "name": r["name"] + " (new)" if n % 2 else r["name"]}
        for n, r in enumerate(rows)
    ]
    result = products_bulk_upsert(actor=None, rows=renamed)

    # then: the renamed moved to newer versions; the unchanged kept theirs; still one row each
    assert (result.updated, result.unchanged) == (BULK // 2, BULK // 2)
    after = versions("product")
    assert len(after) == BULK
    for n, r in enumerate(rows):
        key = ("product", "global", r["sku"])
        if n % 2:
            assert after[key][1] > max(v for _op, v, _obj in created.values()), key
        else:
            assert after[key] == created[key], key


def test_products_bulk_upsert_barcode_changes_touch_their_products(std_rate: TaxRate) -> None:
    # given
    codes = [scenery.barcode() for _ in range(3)]
    products_bulk_upsert(
        actor=None,
        rows=[
            {"sku": "P1", "name": "One", "tax_code": "STD", "barcodes": [codes[0]]},
            {"sku": "P2", "name": "Two", "tax_code": "STD", "barcodes": [codes[1]]},
            {"sku": "P3", "name": "Three", "tax_code": "STD"},
        ],
    )
    before = versions("product")

    # when: only barcodes change (a code moves from P1 to P2, P2's old one is dropped)
    result = products_bulk_upsert(
        actor=None,
        rows=[
            {"sku": "P1", "barcodes": []},
            {"sku": "P2", "barcodes": [codes[0], codes[2]]},
            {"sku": "P3", "barcodes": []},
        ],
    )

    # then: P1 and P2 moved on, P3 (no change) did not
    assert result.updated == 2
    after = versions("product")
    for sku in ("P1", "P2"):
        key = ("product", "global", sku)
        assert after[key][0] == "upsert"
        assert after[key][1] > before[key][1], sku
    assert after[("product", "global", "P3")] == before[("product", "global", "P3")]


def test_prices_bulk_upsert_gives_every_price_its_row(berlin: Shop, std_rate: TaxRate) -> None:
    # given: 2,500 products
    products_bulk_upsert(
        actor=None,
        rows=[{"sku": f"BULK{n:05d}", "name": f"Bulk {n}", "tax_code": "STD"} for n in range(BULK)],
    )
    scope = pl(berlin.price_list)

    # when: a price for each, in one request
    rows = [
        {"sku": f"BULK{n:05d}", "price": Decimal("1.00") + n, "valid_from": JAN_1}
        for n in range(BULK)
    ]
    result = prices_bulk_upsert(actor=None, price_list=berlin.price_list, rows=rows)

    # then
    assert result.created == BULK
    created = versions("price", scope)
    ids = {
        f"{sku}@2026-01-01": pk
        for sku, pk in Price.objects.filter(price_list=berlin.price_list).values_list(
            "product__sku", "pk"
        )
    }
    assert {k[2]: (op, obj) for k, (op, _v, obj) in created.items()} == {
        key: ("upsert", pk) for key, pk in ids.items()
    }

    # when: every other price changes, and a second range is added for the first product
    newest = max(v for _op, v, _obj in created.values())
    changed = [{**r, "price": r["price"] + 1 if n % 2 else r["price"]} for n, r in enumerate(rows)]
    changed[0]["valid_to"] = dt.date(2026, 2, 28)
    changed.append({"sku": "BULK00000", "price": Decimal("9.99"), "valid_from": MAR_1})
    result = prices_bulk_upsert(actor=None, price_list=berlin.price_list, rows=changed)

    # then
    assert (result.created, result.updated) == (1, BULK // 2 + 1)
    after = versions("price", scope)
    assert len(after) == BULK + 1
    assert after[("price", scope, "BULK00000@2026-03-01")][0] == "upsert"
    for n in range(BULK):
        key = ("price", scope, f"BULK{n:05d}@2026-01-01")
        if n % 2 or n == 0:
            assert after[key][1] > newest, key
        else:
            assert after[key] == created[key], key


# --- past the services ---------------------------------------------------------------------------


def test_raw_sql_updates_inserts_and_deletes_land_in_the_feed(
    berlin: Shop, catalogue: dict[str, Any]
) -> None:
    # given
    scope = pl(berlin.price_list)
    before = max_version()

    # when: a data fix in SQL renames both products, inserts one price and deletes another
    assert execute("UPDATE inventory_product SET name = name || ' (fixed)'") == 2
    execute(
        "UPDATE inventory_price SET valid_to = %s WHERE id = %s",
        [dt.date(2026, 2, 28), catalogue["price_a"].pk],
    )
    execute(
        "INSERT INTO inventory_price "
        "(price_list_id, product_id, price, valid_from, valid_to, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, NULL, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        [berlin.price_list.pk, catalogue["A"].pk, Decimal("1.49"), MAR_1],
    )
    assert execute("DELETE FROM inventory_price WHERE id = %s", [catalogue["price_b"].pk]) == 1

    # then
    assert_upsert("product", "global", "A", catalogue["A"].pk, after=before)
    assert_upsert("product", "global", "B", catalogue["B"].pk, after=before)
    inserted = Price.objects.get(product=catalogue["A"], valid_from=MAR_1)
    assert_upsert("price", scope, "A@2026-03-01", inserted.pk, after=before)
    assert_upsert("price", scope, "A@2026-01-01", catalogue["price_a"].pk, after=before)
    assert_tombstone("price", scope, "B@2026-01-01", after=before)


def test_orm_saves_and_queryset_writes_land_in_the_feed(
    berlin: Shop, catalogue: dict[str, Any]
) -> None:
    # given
    before = max_version()

    # when: writes that skip the services (a shell session, a careless admin action)
    a = Product.objects.get(sku="A")
    a.name = "Saved directly"
    a.save()
    Product.objects.filter(sku="B").update(active=False)
    Cashier.objects.filter(code="C1").update(role="supervisor")
    Barcode.objects.filter(product=a).delete()

    # then
    assert_upsert("product", "global", "A", a.pk, after=before)
    assert_upsert("product", "global", "B", catalogue["B"].pk, after=before)
    assert_upsert("cashier", of(berlin.store), "C1", catalogue["cashier"].pk, after=before)


def test_a_rolled_back_transaction_leaves_no_feed_row(
    berlin: Shop, catalogue: dict[str, Any]
) -> None:
    # given
    before = versions()

    class Abandon(Exception):
        pass

    def write_everything_then_fail() -> None:
        with transaction.atomic():
            scenery.product("NEW", barcodes=1)
            product_update(product=catalogue["A"], actor=None, changes={"name": "Never"})
            price_delete(price=catalogue["price_b"], actor=None)
            execute("UPDATE inventory_product SET active = FALSE")
            rows = [{"sku": "BULK", "name": "X", "tax_code": "STD"}]
            products_bulk_upsert(actor=None, rows=rows)
            assert FeedChange.objects.filter(entity_key="NEW").exists()  # written, for now
            raise Abandon

    # when: a transaction writes through every path and then fails
    with pytest.raises(Abandon):
        write_everything_then_fail()

    # then: the feed is exactly as it was
    assert versions() == before


def test_adding_and_removing_a_barcode_touches_its_product(catalogue: dict[str, Any]) -> None:
    # given
    a, b = catalogue["A"], catalogue["B"]
    v0 = row("product", "global", "A").version
    code = scenery.barcode()

    # when: a barcode is added
    kept = list(a.barcodes.values_list("code", flat=True))
    product_update(product=a, actor=None, changes={}, barcodes=[*kept, code])
    v1 = row("product", "global", "A").version

    # when: and removed again
    product_update(product=a, actor=None, changes={}, barcodes=[])
    v2 = row("product", "global", "A").version

    # when: a barcode moves to another product in SQL
    Barcode.objects.create(product=a, code=code)
    v3, vb = row("product", "global", "A").version, row("product", "global", "B").version
    execute("UPDATE inventory_barcode SET product_id = %s WHERE code = %s", [b.pk, code])

    # then: every change moved the product (both products, for the move), which stays an upsert
    assert v0 < v1 < v2 < v3 < row("product", "global", "A").version
    assert vb < row("product", "global", "B").version
    assert {r.op for r in feed("product").values()} == {"upsert"}


def test_changing_a_prices_valid_from_tombstones_the_old_key(
    berlin: Shop, catalogue: dict[str, Any]
) -> None:
    # given
    scope = pl(berlin.price_list)
    before = max_version()

    # when
    price_update(price=catalogue["price_a"], actor=None, changes={"valid_from": MAR_1})

    # then: the node must forget A@2026-01-01 and learn A@2026-03-01
    assert_tombstone("price", scope, "A@2026-01-01", after=before)
    assert_upsert("price", scope, "A@2026-03-01", catalogue["price_a"].pk, after=before)


def test_a_cashier_removed_from_a_store_is_tombstoned_in_that_stores_scope_only(
    berlin: Shop, zurich: Shop
) -> None:
    # given: a cashier working in both stores
    person = scenery.cashier("C7", berlin.store, zurich.store)
    assert_upsert("cashier", of(berlin.store), "C7", person.pk)
    assert_upsert("cashier", of(zurich.store), "C7", person.pk)
    berlin_row = versions("cashier", of(berlin.store))
    before = max_version()

    # when
    assert cashier_store_remove(cashier=person, store=zurich.store, actor=None)

    # then
    assert_tombstone("cashier", of(zurich.store), "C7", after=before)
    assert versions("cashier", of(berlin.store)) == berlin_row


def test_a_cashier_edit_reaches_every_store_they_work_in(berlin: Shop, zurich: Shop) -> None:
    # given
    person = scenery.cashier("C7", berlin.store, zurich.store)
    before = max_version()

    # when
    cashier_update(cashier=person, actor=None, changes={}, pin="98765")

    # then
    assert_upsert("cashier", of(berlin.store), "C7", person.pk, after=before)
    assert_upsert("cashier", of(zurich.store), "C7", person.pk, after=before)


@pytest.mark.parametrize(
    ("table", "column", "key"),
    [("inventory_product", "sku", "A"), ("inventory_taxrate", "code", "STD")],
)
def test_the_database_refuses_to_change_a_key_other_keys_are_built_from(
    catalogue: dict[str, Any], table: str, column: str, key: str
) -> None:
    # given
    before = versions()

    # when / then: a raw UPDATE of the key is refused by the database itself
    with pytest.raises(IntegrityError, match="cannot be changed"), transaction.atomic():
        execute(f"UPDATE {table} SET {column} = %s WHERE {column} = %s", ["RENAMED", key])

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = %s", [key])
        assert cursor.fetchone()[0] == 1
    assert versions() == before
    # and writing the same value (as every Django save does) is not a change of the key
    execute(
        f"UPDATE {table} SET {column} = {column}, name = name || '!' WHERE {column} = %s", [key]
    )
    entity = "product" if table == "inventory_product" else "tax_rate"
    assert row(entity, "global", key).version > max(v for _op, v, _obj in before.values())


def test_a_store_switching_price_list_gets_its_old_prices_tombstoned_and_the_new_ones(
    berlin: Shop, catalogue: dict[str, Any]
) -> None:
    # given: Berlin's list DE has A@01-01 and B@01-01; list PROMO has A@01-01 and A@03-01
    other = scenery.shop("S05", "DE", "EUR")  # stays on DE
    promo = scenery.price_list("PROMO", "EUR")
    promo_a = scenery.price(promo, catalogue["A"], "1.79", valid_to=dt.date(2026, 2, 28))
    promo_a_march = scenery.price(promo, catalogue["A"], "1.69", valid_from=MAR_1)
    lists_before = versions("price", pl(berlin.price_list)) | versions("price", pl(promo))
    other_before = versions(scope=of(other.store))
    before = max_version()

    # when
    store_update(store=berlin.store, actor=None, changes={"price_list": promo})

    # then: in Berlin's own scope, the old list's keys it no longer has are tombstones and the
    # new list's prices are upserts pointing at the new list's rows
    scope = of(berlin.store)
    assert_tombstone("price", scope, "B@2026-01-01", after=before)
    assert_upsert("price", scope, "A@2026-01-01", promo_a.pk, after=before)
    assert_upsert("price", scope, "A@2026-03-01", promo_a_march.pk, after=before)
    assert set(versions("price", scope)) == {
        ("price", scope, "A@2026-01-01"),
        ("price", scope, "A@2026-03-01"),
        ("price", scope, "B@2026-01-01"),
    }
    assert_upsert("store_config", scope, "S01", berlin.store.pk, after=before)
    # the lists' own rows and the other store on DE are untouched
    assert versions("price", pl(berlin.price_list)) | versions("price", pl(promo)) == lists_before
    assert versions(scope=of(other.store)) == other_before


def test_an_unrelated_store_edit_writes_no_price_rows(
    berlin: Shop, catalogue: dict[str, Any]
) -> None:
    # when
    store_update(store=berlin.store, actor=None, changes={"name": "Berlin Mitte"})

    # then: the configuration moved; no price rows appeared in the store's scope
    assert set(versions(scope=of(berlin.store))) == {
        ("store_config", of(berlin.store), "S01"),
        ("register", of(berlin.store), "R1"),
        ("register", of(berlin.store), "R2"),
        ("cashier", of(berlin.store), "C1"),
    }


# --- SQLite's feed clock -------------------------------------------------------------------------


@pytest.mark.skipif(
    ON_POSTGRES, reason="SQLite only: PostgreSQL uses a sequence, which flush keeps"
)
def test_master_data_writes_survive_a_flushed_feed_clock(std_rate: TaxRate) -> None:
    # given: feed rows, and the clock table emptied as `manage.py flush` (or a transactional
    # test's teardown) leaves it
    scenery.product("BEFORE")
    newest = max_version()
    execute("DELETE FROM sync_feedclock")

    # when
    with transaction.atomic():
        scenery.product("AFTER-FLUSH")

    # then: the write works, and its version is newer than any before (a node's versions only
    # grow)
    found = row("product", "global", "AFTER-FLUSH")
    assert found.op == "upsert"
    assert found.version > newest


# --- reinstalling the triggers (a migration that changes them) ----------------------------------


def test_reinstalled_triggers_keep_the_feed_and_its_versions_growing(std_rate: TaxRate) -> None:
    # given: feed rows
    scenery.product("BEFORE")
    rows, newest = FeedChange.objects.count(), max_version()

    # when: the triggers are replaced, as a migration changing them does
    triggers.reinstall(connection)
    scenery.product("AFTER")

    # then: nothing of the feed was lost, the triggers still write, and versions still grow
    assert FeedChange.objects.count() == rows + 1
    assert row("product", "global", "BEFORE").version <= newest
    assert row("product", "global", "AFTER").version > newest
