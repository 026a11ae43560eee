"""Who may do what: every HQ API endpoint and method for every role, and the admin agreeing.

Roles (``erp.roles``): staff reads and writes master data; finance and auditor only read it;
an authenticated user without a role may do nothing; an anonymous client is asked to sign in.
A refused write must change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.urls import get_resolver, resolve
from rest_framework.test import APIClient

from stores.services import node_key_issue
from sync.models import ReconciliationException
from sync.push.service import batch_push
from tests.factories import (
    BarcodeFactory,
    CashierFactory,
    PriceFactory,
    PriceListFactory,
    ProductFactory,
    RegisterFactory,
    StockLocationFactory,
    StoreFactory,
    TaxRateFactory,
    UserFactory,
)
from tests.sync.builders import Till, batch

pytestmark = pytest.mark.django_db

STAFF, FINANCE, AUDITOR, NO_ROLE, ANONYMOUS = "staff", "finance", "auditor", "no role", "anonymous"
ROLES = [STAFF, FINANCE, AUDITOR, NO_ROLE, ANONYMOUS]

SKU = "MILK-1L"
PRICE_FROM = "2026-01-01"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None
    writers: frozenset[str] = frozenset({"staff"})

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


def _crud(collection: str, key: str, create: Any, change: Any, *, delete: bool = True):
    calls = [
        Call("GET", f"{collection}/"),
        Call("POST", f"{collection}/", create),
        Call("GET", f"{collection}/{key}/"),
        Call("PATCH", f"{collection}/{key}/", change),
    ]
    if delete:
        calls.append(Call("DELETE", f"{collection}/{key}/"))
    return calls


# Every route of erp/api/urls.py with every method it serves (PUT is PATCH's twin and shares
# its permission). Bodies are valid, so a staff write normally succeeds; a staff answer of 4xx
# other than 401/403 (in use, not found) is fine here: this file is about who may ask.
CALLS: list[Call] = [
    Call("GET", "currencies/"),
    Call("GET", "currencies/EUR/"),
    *_crud(
        "tax-rates",
        "STD",
        {"code": "RED", "name": "Reduced", "rate": "7.0000", "inclusive": True},
        {"name": "Standard (19%)"},
    ),
    *_crud(
        "products",
        SKU,
        {"sku": "BREAD-1", "name": "Bread", "tax_code": "STD", "barcodes": ["5901234123457"]},
        {"name": "Milk 1 l"},
    ),
    Call("POST", "products/bulk", [{"sku": "BULK-1", "name": "Bulk", "tax_code": "STD"}]),
    *_crud(
        "price-lists",
        "DE",
        {"code": "AT", "name": "Austria", "currency": "EUR"},
        {"name": "Deutschland"},
    ),
    Call("GET", "price-lists/DE/prices/"),
    Call(
        "POST", "price-lists/DE/prices/", {"sku": SKU, "price": "1.29", "valid_from": "2027-01-01"}
    ),
    Call("GET", f"price-lists/DE/prices/{SKU}/{PRICE_FROM}/"),
    Call("PATCH", f"price-lists/DE/prices/{SKU}/{PRICE_FROM}/", {"price": "1.09"}),
    Call("DELETE", f"price-lists/DE/prices/{SKU}/{PRICE_FROM}/"),
    Call(
        "POST",
        "price-lists/DE/prices/bulk",
        [{"sku": SKU, "price": "1.39", "valid_from": "2027-01-01"}],
    ),
    *_crud(
        "stock-locations",
        "WH1",
        {"code": "WH2", "name": "Overflow", "kind": "warehouse"},
        {"name": "Main warehouse"},
    ),
    *_crud(
        "stores",
        "BER",
        {
            "code": "HAM",
            "name": "Hamburg",
            "timezone": "Europe/Berlin",
            "currency": "EUR",
            "price_list": "DE",
        },
        {"name": "Berlin Mitte"},
    ),
    *_crud("stores/BER/registers", "R1", {"code": "R2", "name": "Till 2"}, {"name": "Till one"}),
    *_crud(
        "cashiers",
        "C1",
        {"code": "C2", "name": "Ben", "role": "cashier", "pin": "4321", "stores": ["BER"]},
        {"name": "Ann B.", "pin": "9876"},
    ),
    Call("GET", "stores/BER/node-keys/"),
    Call("POST", "stores/BER/node-keys/", {"label": "rotation"}),
    Call("GET", "stores/BER/node-keys/{prefix}/"),
    Call("DELETE", "stores/BER/node-keys/{prefix}/"),
    # What stores sent, read by every role; exceptions resolved by staff and finance.
    Call("GET", "sales/"),
    Call("GET", "sales/{sale}/"),
    Call("GET", "stock/"),
    Call("GET", "exceptions/"),
    Call("GET", "exceptions/{exception}/"),
    Call(
        "POST",
        "exceptions/{exception}/acknowledge",
        {},
        writers=frozenset({"staff", "finance"}),
    ),
    Call(
        "POST",
        "exceptions/{exception}/resolve",
        {"note": "Checked the till roll."},
        writers=frozenset({"staff", "finance"}),
    ),
]

WATCHED_MODELS = [
    "inventory.Currency",
    "inventory.TaxRate",
    "inventory.Product",
    "inventory.Barcode",
    "inventory.PriceList",
    "inventory.Price",
    "inventory.StockLocation",
    "stores.Store",
    "stores.Register",
    "stores.NodeKey",
    "stores.Cashier",
    "stores.CashierStore",
]


def snapshot() -> dict[str, Any]:
    """Every watched row and the size of every history table."""
    state: dict[str, Any] = {}
    for label in WATCHED_MODELS:
        model = apps.get_model(label)
        state[label] = sorted(model.objects.values_list(), key=repr)
        history = getattr(model, "history", None)
        if history is not None:
            state[f"{label} history"] = history.count()
    return state


@pytest.fixture
def scenery() -> dict[str, str]:
    """A store with a register and a node key, a product with a barcode and a price."""
    tax_rate = TaxRateFactory(code="STD")
    price_list = PriceListFactory(code="DE")
    store = StoreFactory(code="BER", price_list=price_list)
    RegisterFactory(store=store, code="R1")
    CashierFactory(code="C1", name="Ann", stores=[store])
    StockLocationFactory(code="WH1")
    product = ProductFactory(sku=SKU, tax_rate=tax_rate)
    BarcodeFactory(product=product, code="4006381333931")
    PriceFactory(
        price_list=price_list,
        product=product,
        price=Decimal("0.99"),
        valid_from=dt.date.fromisoformat(PRICE_FROM),
        valid_to=dt.date(2026, 12, 31),
    )
    node_key, _plain = node_key_issue(actor=None, store=store, label="till node")
    # A sale pushed by the node, with a price off the list: it raises an exception to resolve.
    till = Till(store_code="BER")
    sale = till.sale([(SKU, "1", "0.89")])
    batch_push(node_key=node_key, body=batch([sale]))
    exception = ReconciliationException.objects.get(type="price_differs")
    return {"prefix": node_key.prefix, "sale": sale["event_id"], "exception": str(exception.pk)}


@pytest.fixture
def client_for(make_client: Callable[..., APIClient]) -> Callable[[str], APIClient]:
    def build(role: str) -> APIClient:
        if role == ANONYMOUS:
            return APIClient()
        if role == NO_ROLE:
            return make_client()
        return make_client(role)

    return build


def expected_refusal(role: str, call: Call) -> int | None:
    """The status that refuses ``call`` for ``role``, or None when the role may make it."""
    if role == ANONYMOUS:
        return 401
    if role == NO_ROLE:
        return 403
    if call.is_write and role not in call.writers:
        return 403
    return None


@pytest.mark.parametrize("call", CALLS, ids=[c.id for c in CALLS])
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role: str, call: Call, scenery: dict[str, str], client_for) -> None:
    # given
    client = client_for(role)
    path = "/api/v1/" + call.path.format(**scenery)
    before = snapshot()

    # when
    response = client.generic(
        call.method,
        path,
        data=None if call.body is None else json.dumps(call.body),
        content_type="application/json",
    )

    # then
    refusal = expected_refusal(role, call)
    if refusal is not None:
        assert response.status_code == refusal, response.content
        code = "unauthenticated" if refusal == 401 else "forbidden"
        assert response.json()["error"]["code"] == code
        if refusal == 401:
            assert response["WWW-Authenticate"].startswith("Token")
        assert snapshot() == before, "a refused request changed data"
    elif call.is_write:
        assert response.status_code not in (401, 403), response.content
        assert response.status_code < 500, response.content
    else:
        assert response.status_code == 200, response.content


def test_matrix_covers_every_route_and_method_of_the_api() -> None:
    """A new HQ endpoint or method must join the matrix: compare it with the URLconf.

    The sync protocol (``/api/v1/sync/``) is out of this matrix: store nodes call it with
    node keys, not user roles.
    """

    def leaves(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from leaves(pattern.url_patterns)
            else:
                yield pattern

    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    hq_routes = [p for p in leaves(api.url_patterns) if not p.name.startswith("sync-")]
    served = {
        (pattern.name, method.upper())
        for pattern in hq_routes
        for method in pattern.callback.actions
        # PUT shares PATCH's action and permission; DRF adds HEAD beside GET once served
        if method not in ("put", "head", "options")
    }
    covered = {
        (
            resolve(
                "/api/v1/"
                + call.path.format(
                    prefix="abcd1234", sale="0b9e2f3a-1111-4222-8333-444455556666", exception="1"
                )
            ).url_name,
            call.method,
        )
        for call in CALLS
    }
    assert covered == served


ADMIN_PAGES = {
    "add": "/admin/inventory/product/add/",
    "changelist": "/admin/inventory/product/",
    "change": "/admin/inventory/product/{pk}/change/",
}


@pytest.mark.parametrize(
    ("role", "page", "expected"),
    [
        (STAFF, "add", 200),
        (STAFF, "changelist", 200),
        (STAFF, "change", 200),
        *((role, "add", 403) for role in (FINANCE, AUDITOR, NO_ROLE)),
        # read-only roles see the list and the (read-only) change page, as they GET the API
        *((role, page, 200) for role in (FINANCE, AUDITOR) for page in ("changelist", "change")),
        (NO_ROLE, "changelist", 403),
        (NO_ROLE, "change", 403),
    ],
)
def test_admin_product_pages_agree_with_the_api(
    client, role: str, page: str, expected: int
) -> None:
    product = ProductFactory()
    user = UserFactory(roles=[] if role == NO_ROLE else [role])
    assert user.is_staff  # admin access itself is not what decides here; the role is
    client.force_login(user)

    response = client.get(ADMIN_PAGES[page].format(pk=product.pk))

    assert response.status_code == expected


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_admin_sends_anonymous_users_to_the_login_page(client, page: str) -> None:
    path = ADMIN_PAGES[page].format(pk=ProductFactory().pk)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"
