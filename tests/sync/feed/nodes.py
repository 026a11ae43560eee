"""A store node as the pull protocol describes it, and HQ's state for a store read from the ORM.

The node keeps a dict keyed by ``(entity, key)``: an upsert replaces the entry when its
``version`` is at least the stored one, a delete removes it (``sync-protocol.md``, "Pull").
``hq_state`` is written from the models and the protocol document, not from
``sync.feed.pull``, so a loader that sends the wrong thing cannot agree with itself.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client

from inventory.models import Price, Product, TaxRate
from stores.models import Cashier, Register, Store

PULL_URL = "/api/v1/sync/pull"
ENTITIES = {"product", "price", "tax_rate", "store_config", "register", "cashier"}

# A pull serves what committed transactions wrote (PostgreSQL snapshot visibility; inside the
# test's own open transaction it would see nothing), so on PostgreSQL the tests that pull
# commit their writes. SQLite's writers are serialised and the feed is ordered by version
# alone, so there they stay inside the test's transaction, which is much faster.
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
pull_db = pytest.mark.django_db(transaction=ON_POSTGRES)

State = dict[tuple[str, str], dict[str, Any]]


def key_of(entity: str, data: dict[str, Any]) -> str:
    """The feed key an entity's data names (what ``key`` must be for that data)."""
    if entity == "price":
        return f"{data['sku']}@{data['valid_from']}"
    return data["sku"] if entity == "product" else data["code"]


class Node:
    """A store node talking HTTP to head office with its node key."""

    def __init__(self, key: str, *, name: str = "node") -> None:
        self.key = key
        self.name = name
        self.client = Client()
        self.cursor: str | None = None
        self.entries: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.received: list[dict[str, Any]] = []
        self.pages = 0

    def get(
        self,
        *,
        cursor: str | None = None,
        limit: int | str | None = None,
        etag: str | None = None,
        auth: str | None = None,
    ) -> HttpResponse:
        """GET the pull endpoint; ``auth`` replaces the Authorization header ("" sends none)."""
        params: dict[str, Any] = {}
        if cursor is not None:
            params["cursor"] = cursor
        if limit is not None:
            params["limit"] = limit
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.key}" if auth is None else auth}
        if auth == "":
            headers = {}
        if etag is not None:
            headers["HTTP_IF_NONE_MATCH"] = etag
        return self.client.get(PULL_URL, params, **headers)

    def pull(self, limit: int | None = None) -> dict[str, Any]:
        """One page from the node's cursor, applied; the node keeps the new cursor."""
        response = self.get(cursor=self.cursor, limit=limit)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"changes", "cursor", "has_more"}, body
        if limit is not None:
            assert len(body["changes"]) <= limit
        for change in body["changes"]:
            self.apply(change)
        self.cursor = body["cursor"]
        self.pages += 1
        return body

    def sync(self, limit: int | None = None, *, max_pages: int = 100_000) -> list[dict[str, Any]]:
        """Follow the cursor until ``has_more`` is false; the changes received."""
        changes: list[dict[str, Any]] = []
        for _ in range(max_pages):
            body = self.pull(limit)
            changes += body["changes"]
            if not body["has_more"]:
                return changes
        raise AssertionError(f"{self.name} was still paging after {max_pages} pages")

    def catch_up(self, limit: int | None = None, *, max_pages: int = 100_000) -> list[dict]:
        """Poll until the answer is the idle one (no changes, the same cursor back): a node
        polling every few seconds, once HQ is quiet."""
        changes: list[dict[str, Any]] = []
        for _ in range(max_pages):
            before = self.cursor
            body = self.pull(limit)
            changes += body["changes"]
            if not body["changes"] and not body["has_more"] and body["cursor"] == before:
                return changes
        raise AssertionError(f"{self.name} was still catching up after {max_pages} pages")

    def apply(self, change: dict[str, Any]) -> None:
        assert set(change) == {"entity", "key", "op", "version", "data"}, change
        assert change["entity"] in ENTITIES, change
        assert isinstance(change["version"], int), change
        entry = (change["entity"], change["key"])
        self.received.append(change)
        if change["op"] == "delete":
            assert change["data"] is None, change
            self.entries.pop(entry, None)
            return
        assert change["op"] == "upsert", change
        assert isinstance(change["data"], dict), change
        assert key_of(change["entity"], change["data"]) == change["key"], (
            f"{self.name}: the data of {entry} names another key",
            change,
        )
        stored = self.entries.get(entry)
        if stored is None or change["version"] >= stored[0]:
            self.entries[entry] = (change["version"], change["data"])

    @property
    def state(self) -> State:
        return comparable({entry: data for entry, (_v, data) in self.entries.items()})


def comparable(state: State) -> State:
    """Tax rates compared as numbers (the wire form is checked on its own in the API tests)."""
    out: State = {}
    for (entity, key), data in state.items():
        if entity == "tax_rate":
            data = {**data, "rate": Decimal(data["rate"])}
        out[(entity, key)] = data
    return out


def _money(amount: Decimal, minor_units: int) -> str:
    return str(amount.quantize(Decimal(10) ** -minor_units))


def hq_state(store: Store) -> State:
    """What a node of ``store`` must hold: every product and tax rate, the prices of its own
    list in its currency, its configuration, its registers and the cashiers working there."""
    store = Store.objects.select_related("currency", "price_list").get(pk=store.pk)
    minor = store.currency.minor_units
    state: State = {}
    for product in Product.objects.select_related("tax_rate").prefetch_related("barcodes"):
        state[("product", product.sku)] = {
            "sku": product.sku,
            "name": product.name,
            "barcodes": sorted(b.code for b in product.barcodes.all()),
            "unit": product.unit,
            "tax_code": product.tax_rate.code,
            "active": product.active,
            "weighed": product.weighed,
        }
    for price in Price.objects.filter(price_list_id=store.price_list_id).select_related("product"):
        key = f"{price.product.sku}@{price.valid_from.isoformat()}"
        state[("price", key)] = {
            "sku": price.product.sku,
            "price": _money(price.price, minor),
            "valid_from": price.valid_from.isoformat(),
            "valid_to": price.valid_to.isoformat() if price.valid_to else None,
        }
    for rate in TaxRate.objects.all():
        state[("tax_rate", rate.code)] = {
            "code": rate.code,
            "name": rate.name,
            "rate": rate.rate,
            "inclusive": rate.inclusive,
            "active": rate.active,
        }
    state[("store_config", store.code)] = {
        "code": store.code,
        "name": store.name,
        "timezone": store.timezone,
        "currency": store.currency.code,
        "currency_minor_units": minor,
        "price_list": store.price_list.code,
        "active": store.active,
        "offline": {
            "card_limit": _money(store.offline_card_limit, minor),
            "warn_after_hours": store.offline_warn_hours,
        },
        "supervisor_operations": list(store.supervisor_operations),
    }
    for register in Register.objects.filter(store=store):
        state[("register", register.code)] = {
            "code": register.code,
            "name": register.name,
            "active": register.active,
        }
    for cashier in Cashier.objects.filter(memberships__store=store):
        state[("cashier", cashier.code)] = {
            "code": cashier.code,
            "name": cashier.name,
            "role": cashier.role,
            "pin_hash": cashier.pin_hash,
            "active": cashier.active,
        }
    return comparable(state)


def diff(actual: State, expected: State) -> dict[str, Any]:
    """A readable difference of two states (empty when equal)."""
    return {
        "missing": sorted(set(expected) - set(actual)),
        "extra": sorted(set(actual) - set(expected)),
        "different": {
            entry: {"node": actual[entry], "hq": expected[entry]}
            for entry in sorted(set(actual) & set(expected))
            if actual[entry] != expected[entry]
        },
    }
