"""Whatever head office does and whenever nodes pull, a node ends with exactly HQ's state.

Random sequences of master-data writes through the services (products, barcodes, prices in
several lists and currencies including future-dated ones, tax rates, registers, cashiers and
their stores, store configuration, a store switching price list) are interleaved with pulls of
two stores' nodes at random points with random page sizes. At the end (a) each node that
followed its cursor all along and (b) a fresh node pulling everything hold exactly HQ's state
for its store, computed from the models by ``hq_state`` (not by the pull's loaders).

A node's rule (``sync-protocol.md``): an upsert replaces an entry when its version is at least
the stored one, a delete removes it; every upsert's data must name its key. A follower's last
step follows its cursor until ``has_more`` is false, which alone must leave it at HQ's state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from inventory.models import Price, PriceList, Product, TaxRate
from inventory.services import (
    price_delete,
    price_update,
    product_delete,
    product_update,
    tax_rate_update,
)
from stores.models import SUPERVISOR_OPERATIONS, Cashier, Register, Store
from stores.services import (
    cashier_delete,
    cashier_update,
    register_delete,
    register_update,
    store_update,
)
from tests.sync.feed import scenery
from tests.sync.feed.nodes import ON_POSTGRES, Node, diff, hq_state, pull_db
from tests.sync.feed.scenery import Shop

pytestmark = pull_db

SKUS = ("A", "B", "C", "D", "E")
RATES = ("STD", "RED", "ZERO", "SUP")
PERCENTS = ("19", "7", "0", "20", "8.875", "10")
CASHIERS = ("C1", "C2", "C3", "C4")
REGISTERS = {"S01": ("R1", "R2", "R3"), "S02": ("Z1", "Z2")}
NAMES = ("Apple", "Bread", "Cheese", "Dates", "Eggs")
LIMITS = (1, 2, 3, 5, 100)
OPERATIONS = (
    ["pull"] * 8
    + ["product_create"] * 3
    + ["product_update", "product_delete", "barcode_add", "barcode_remove"]
    + ["price_create"] * 4
    + ["price_update"] * 2
    + ["price_move"] * 2
    + ["price_delete", "tax_rate_create", "tax_rate_update"]
    + ["register_create", "register_update", "register_delete"]
    + ["cashier_create", "cashier_update", "cashier_stores", "cashier_delete"]
    + ["store_switch"] * 2
    + ["store_config"]
)
# Tables an example writes; on PostgreSQL they are emptied after each example (the test's
# own data are committed: a pull sees committed transactions only).
TABLES = (
    "sync_feedchange",
    "sync_nodesyncstate",
    "stores_cashierstore",
    "stores_cashier",
    "stores_register",
    "stores_nodekey",
    "stores_store",
    "inventory_barcode",
    "inventory_price",
    "inventory_product",
    "inventory_taxrate",
    "inventory_pricelist",
    "inventory_stocklocation",
)


class _RollBack(Exception):
    pass


@contextmanager
def one_example() -> Iterator[None]:
    """Each example starts from an empty catalogue and leaves none behind."""
    cache.clear()  # throttle counters
    if ON_POSTGRES:
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
        return
    try:
        with transaction.atomic():
            yield
            raise _RollBack
    except _RollBack:
        pass


def slots() -> list[tuple[dt.date, dt.date | None]]:
    """Validity slots that never overlap: long past, recent, from today, tomorrow, next month."""
    today = timezone.localdate()
    starts = [
        today - dt.timedelta(days=200),
        today - dt.timedelta(days=30),
        today,
        today + dt.timedelta(days=1),
        today + dt.timedelta(days=31),
    ]
    ends: list[dt.date | None] = [b - dt.timedelta(days=1) for b in starts[1:]]
    return list(zip(starts, [*ends, None], strict=True))


class World:
    """HQ's data for one example and the operations a sequence draws from."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        scenery.rate("STD", "19")
        self.lists = {
            "DE": scenery.price_list("DE", "EUR"),
            "AT": scenery.price_list("AT", "EUR"),
            "CH": scenery.price_list("CH", "CHF"),
        }
        self.shops = {
            "S01": scenery.shop("S01", "DE", "EUR", registers=("R1",)),
            "S02": scenery.shop("S02", "CH", "CHF", registers=("Z1",)),
        }
        self.followers = {
            code: shop.node(f"follower of {code}") for code, shop in self.shops.items()
        }
        self.slots = slots()
        # A starting catalogue, so that early operations have something to change: two
        # products priced in every list (one of them from tomorrow in AT), a shared cashier.
        a, b = scenery.product("A", barcodes=1), scenery.product("B")
        for code, priced in (("DE", [(a, 0), (b, 2)]), ("AT", [(a, 0), (b, 3)]), ("CH", [(a, 1)])):
            for product, slot in priced:
                start, end = self.slots[slot]
                scenery.price(self.lists[code], product, "1", valid_from=start, valid_to=end)
        scenery.cashier("C1", *(shop.store for shop in self.shops.values()))

    def draw(self, strategy: st.SearchStrategy[Any], label: str) -> Any:
        return self.data.draw(strategy, label=label)

    def pick(self, options: Any, label: str) -> Any:
        options = list(options)
        return self.draw(st.sampled_from(options), label) if options else None

    def store(self) -> Store:
        return self.shops[self.pick(sorted(self.shops), "store")].store

    # --- operations -----------------------------------------------------------------------------

    def run(self, operation: str) -> None:
        note(operation)
        getattr(self, operation)()

    def pull(self) -> None:
        node = self.followers[self.pick(sorted(self.followers), "node")]
        limit = self.pick(LIMITS, "limit")
        for _ in range(self.draw(st.integers(1, 3), "pages")):
            node.pull(limit)

    def product_create(self) -> None:
        sku = self.pick([s for s in SKUS if not Product.objects.filter(sku=s).exists()], "sku")
        if sku is None:
            return
        scenery.product(
            sku,
            tax=self.pick(TaxRate.objects.order_by("code"), "tax rate"),
            barcodes=self.draw(st.integers(0, 2), "barcodes"),
            name=self.pick(NAMES, "name"),
        )

    def _product(self) -> Product | None:
        return self.pick(Product.objects.order_by("sku"), "product")

    def product_update(self) -> None:
        product = self._product()
        if product is None:
            return
        changes: dict[str, Any] = {}
        if self.draw(st.booleans(), "rename"):
            changes["name"] = self.pick(NAMES, "name") + "!"
        if self.draw(st.booleans(), "toggle active"):
            changes["active"] = not product.active
        if self.draw(st.booleans(), "tax rate"):
            changes["tax_rate"] = self.pick(TaxRate.objects.order_by("code"), "tax rate")
        if self.draw(st.booleans(), "weighed"):
            weighed = not product.weighed
            changes.update(weighed=weighed, unit="kg" if weighed else "each")
        product_update(product=product, actor=None, changes=changes)

    def product_delete(self) -> None:
        product = self._product()
        if product is not None:
            assert product_delete(product=product, actor=None)

    def barcode_add(self) -> None:
        product = self._product()
        if product is not None:
            codes = [*product.barcodes.values_list("code", flat=True), scenery.barcode()]
            product_update(product=product, actor=None, changes={}, barcodes=codes)

    def barcode_remove(self) -> None:
        product = self.pick(
            Product.objects.filter(barcodes__isnull=False).distinct().order_by("sku"), "product"
        )
        if product is None:
            return
        codes = sorted(product.barcodes.values_list("code", flat=True))
        gone = self.pick(codes, "barcode")
        product_update(
            product=product, actor=None, changes={}, barcodes=[c for c in codes if c != gone]
        )

    def _amount(self, price_list: PriceList) -> Decimal:
        return Decimal(self.draw(st.integers(0, 99_999), "amount")).scaleb(
            -price_list.currency.minor_units
        )

    def _free_slots(self, price_list: PriceList, product: Product) -> list[int]:
        taken = set(
            Price.objects.filter(price_list=price_list, product=product).values_list(
                "valid_from", flat=True
            )
        )
        return [n for n, (start, _end) in enumerate(self.slots) if start not in taken]

    def price_create(self) -> None:
        price_list = self.lists[self.pick(sorted(self.lists), "price list")]
        product = self._product()
        if product is None:
            return
        slot = self.pick(self._free_slots(price_list, product), "slot")
        if slot is None:
            return
        start, end = self.slots[slot]
        scenery.price(
            price_list, product, str(self._amount(price_list)), valid_from=start, valid_to=end
        )
        if start > timezone.localdate():
            note("a future-dated price")

    def _price(self) -> Price | None:
        prices = Price.objects.select_related("price_list__currency").order_by("pk")
        return self.pick(prices, "price")

    def price_update(self) -> None:
        price = self._price()
        if price is not None:
            changes = {"price": self._amount(price.price_list)}
            price_update(price=price, actor=None, changes=changes)

    def price_move(self) -> None:
        price = self._price()
        if price is None:
            return
        slot = self.pick(self._free_slots(price.price_list, price.product), "slot")
        if slot is None:
            return
        start, end = self.slots[slot]
        price_update(price=price, actor=None, changes={"valid_from": start, "valid_to": end})

    def price_delete(self) -> None:
        price = self._price()
        if price is not None:
            price_delete(price=price, actor=None)

    def tax_rate_create(self) -> None:
        code = self.pick([c for c in RATES if not TaxRate.objects.filter(code=c).exists()], "code")
        if code is not None:
            scenery.rate(code, self.pick(PERCENTS, "percent"))

    def tax_rate_update(self) -> None:
        rate = self.pick(TaxRate.objects.order_by("code"), "tax rate")
        changes = {
            "rate": Decimal(self.pick(PERCENTS, "percent")),
            "inclusive": self.draw(st.booleans(), "inclusive"),
        }
        tax_rate_update(tax_rate=rate, actor=None, changes=changes)

    def register_create(self) -> None:
        store = self.store()
        code = self.pick(
            [c for c in REGISTERS[store.code] if not store.registers.filter(code=c).exists()],
            "register",
        )
        if code is not None:
            scenery.register(store, code, name=self.pick(NAMES, "name"))

    def _register(self) -> Register | None:
        return self.pick(Register.objects.order_by("pk"), "register")

    def register_update(self) -> None:
        register = self._register()
        if register is not None:
            changes = {"name": self.pick(NAMES, "name"), "active": self.draw(st.booleans(), "on")}
            register_update(register=register, actor=None, changes=changes)

    def register_delete(self) -> None:
        register = self._register()
        if register is not None:
            register_delete(register=register, actor=None)

    def _stores(self) -> list[Store]:
        codes = self.draw(st.sets(st.sampled_from(sorted(self.shops))), "stores")
        return [self.shops[code].store for code in sorted(codes)]

    def cashier_create(self) -> None:
        code = self.pick(
            [c for c in CASHIERS if not Cashier.objects.filter(code=c).exists()], "cashier"
        )
        if code is not None:
            scenery.cashier(code, *self._stores(), role=self.pick(["cashier", "supervisor"], "r"))

    def _cashier(self) -> Cashier | None:
        return self.pick(Cashier.objects.order_by("code"), "cashier")

    def cashier_update(self) -> None:
        cashier = self._cashier()
        if cashier is None:
            return
        changes = {
            "name": self.pick(NAMES, "name"),
            "role": self.pick(["cashier", "supervisor"], "role"),
            "active": self.draw(st.booleans(), "active"),
        }
        pin = self.pick([None, "1111", "24680"], "pin")
        cashier_update(cashier=cashier, actor=None, changes=changes, pin=pin)

    def cashier_stores(self) -> None:
        cashier = self._cashier()
        if cashier is not None:
            cashier_update(cashier=cashier, actor=None, changes={}, stores=self._stores())

    def cashier_delete(self) -> None:
        cashier = self._cashier()
        if cashier is not None:
            assert cashier_delete(cashier=cashier, actor=None)

    def store_switch(self) -> None:
        store = Store.objects.get(code="S01")
        target = self.lists["AT" if store.price_list.code == "DE" else "DE"]
        store_update(store=store, actor=None, changes={"price_list": target})
        self.shops["S01"].store = store

    def store_config(self) -> None:
        store = self.store()
        quantum = store.currency.quantum()
        changes = {
            "name": self.pick(NAMES, "name") + " store",
            "offline_warn_hours": self.draw(st.integers(1, 72), "hours"),
            "offline_card_limit": Decimal(self.draw(st.integers(0, 500), "limit")) * quantum * 50,
            "supervisor_operations": sorted(
                self.draw(st.sets(st.sampled_from(SUPERVISOR_OPERATIONS), max_size=3), "ops")
            ),
        }
        store_update(store=store, actor=None, changes=changes)
        self.shops[store.code].store = store


def assert_holds_hqs_state(node: Node, shop: Shop) -> None:
    expected = hq_state(shop.store)
    assert node.state == expected, (node.name, diff(node.state, expected))
    own = {("store_config", shop.store.code)} | {
        ("register", code) for code in REGISTERS[shop.store.code]
    }
    foreign = {
        (entity, key)
        for entity, key in ((c["entity"], c["key"]) for c in node.received)
        if entity in ("store_config", "register") and (entity, key) not in own
    }
    assert not foreign, (node.name, foreign)


@settings(
    max_examples=35 if ON_POSTGRES else 70,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_every_node_ends_with_hqs_state_whatever_happens_in_between(data: st.DataObject) -> None:
    with one_example():
        world = World(data)
        steps = data.draw(st.lists(st.sampled_from(OPERATIONS), max_size=40), label="operations")
        for operation in steps:
            world.run(operation)

        for code, follower in world.followers.items():
            follower.sync(world.pick(LIMITS, "final limit"))
            assert_holds_hqs_state(follower, world.shops[code])
        for code, shop in world.shops.items():
            fresh = shop.node(f"fresh node of {code}")
            changes = fresh.sync(world.pick(LIMITS, "fresh limit"))
            assert {c["op"] for c in changes} <= {"upsert", "delete"}
            assert_holds_hqs_state(fresh, shop)
        note(f"{sum(f.pages for f in world.followers.values())} follower pages")
