"""The stores admin: stores with their registers, node keys issued once and revoked."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inventory.models import StockLocation
from stores import services
from stores.models import NodeKey, Register, Store
from tests.factories import (
    PriceListFactory,
    RegisterFactory,
    StockLocationFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

KEY = re.compile(r"tbk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def signed_in(client: Client, role: str) -> Any:
    user = UserFactory(roles=[role])
    client.force_login(user)
    return user


def url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def inline_rows(prefix: str, rows: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def store_data(store: Store, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": store.name,
        "timezone": store.timezone,
        "currency": store.currency_id,
        "price_list": store.price_list_id,
        "stock_location": store.stock_location_id,
        "active": "on",
        "offline_card_limit": str(store.offline_card_limit),
        "offline_warn_hours": str(store.offline_warn_hours),
        "supervisor_operations": list(store.supervisor_operations),
    }
    data.update(overrides)
    return data


@pytest.fixture
def estate() -> dict[type, Any]:
    register = RegisterFactory()
    node_key, _plain = services.node_key_issue(actor=None, store=register.store, label="till PC")
    return {Store: register.store, Register: register, NodeKey: node_key}


def issue_via_action(client: Client, *stores: Store, label: str = "", follow: bool = False) -> Any:
    return client.post(
        url(Store, "changelist"),
        {
            "action": "issue_node_key",
            "_selected_action": [s.pk for s in stores],
            "post": "yes",
            "label": label,
        },
        follow=follow,
    )


# --- pages by role ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "auditor", "finance"])
@pytest.mark.parametrize("model", [Store, Register, NodeKey], ids=lambda m: m.__name__)
def test_list_change_and_history_pages_render(client, estate, role, model):
    signed_in(client, role)
    obj = estate[model]

    assert client.get(url(model, "changelist")).status_code == 200
    assert client.get(url(model, "change", obj.pk)).status_code == 200
    assert client.get(url(model, "history", obj.pk)).status_code == 200
    version = obj.history.latest()
    assert client.get(url(model, "simple_history", obj.pk, version.pk)).status_code == 200


@pytest.mark.parametrize("model", [Store, Register], ids=lambda m: m.__name__)
def test_staff_can_open_add_pages(client, model):
    signed_in(client, "staff")

    assert client.get(url(model, "add")).status_code == 200


@pytest.mark.parametrize("role", ["auditor", "finance"])
def test_read_only_roles_cannot_change_stores_or_keys(client, estate, role):
    signed_in(client, role)
    store, key = estate[Store], estate[NodeKey]

    assert client.get(url(Store, "add")).status_code == 403
    response = client.post(
        url(Store, "change", store.pk),
        {
            **store_data(store, name="Renamed"),
            **inline_rows("registers", []),
            **inline_rows("node_keys", []),
        },
    )
    assert response.status_code == 403
    assert client.post(url(Store, "delete", store.pk), {"post": "yes"}).status_code == 403
    assert client.get(url(Store, "issue_node_key", store.pk)).status_code == 403
    issue_via_action(client, store)
    client.post(
        url(NodeKey, "changelist"), {"action": "revoke_selected", "_selected_action": [key.pk]}
    )

    store.refresh_from_db()
    key.refresh_from_db()
    assert store.name != "Renamed"
    assert NodeKey.objects.count() == 1
    assert key.revoked_at is None


# --- stores and registers -----------------------------------------------------------------------


def test_a_store_added_without_a_location_gets_its_own(client):
    user = signed_in(client, "staff")
    price_list = PriceListFactory()

    response = client.post(
        url(Store, "add"),
        {
            "code": "BER1",
            "name": "Berlin Mitte",
            "timezone": "Europe/Berlin",
            "currency": "EUR",
            "price_list": price_list.pk,
            "stock_location": "",
            "active": "on",
            "offline_card_limit": "50.00",
            "offline_warn_hours": "4",
            "supervisor_operations": ["price_override", "return_without_receipt"],
            **inline_rows("registers", [{"code": "R1", "name": "Front", "active": "on"}]),
        },
    )

    assert response.status_code == 302, response.context["errors"] if response.context else ""
    store = Store.objects.get(code="BER1")
    assert (store.stock_location.code, store.stock_location.kind) == ("BER1", "store")
    assert list(store.registers.values_list("code", flat=True)) == ["R1"]
    assert store.supervisor_operations == ["price_override", "return_without_receipt"]
    assert store.history.get().history_user == user
    assert store.stock_location.history.get().history_user == user
    assert Register.history.get(store_id=store.pk).history_user == user


def test_a_store_whose_location_code_is_taken_is_refused_on_the_form(client):
    signed_in(client, "staff")
    StockLocationFactory(code="BER1")
    price_list = PriceListFactory()
    locations = StockLocation.history.count()

    response = client.post(
        url(Store, "add"),
        {
            "code": "BER1",
            "name": "Berlin Mitte",
            "timezone": "Europe/Berlin",
            "currency": "EUR",
            "price_list": price_list.pk,
            "active": "on",
            "offline_card_limit": "50",
            "offline_warn_hours": "4",
            **inline_rows("registers", []),
        },
    )

    assert response.status_code == 200
    assert "stock location with this code exists" in str(
        response.context["adminform"].form.errors["code"]
    )
    assert not Store.objects.exists()
    assert StockLocation.history.count() == locations


def test_a_price_list_in_another_currency_is_refused(client):
    signed_in(client, "staff")
    price_list = PriceListFactory()

    response = client.post(
        url(Store, "add"),
        {
            "code": "ZRH1",
            "name": "Zürich",
            "timezone": "Europe/Zurich",
            "currency": "CHF",
            "price_list": price_list.pk,
            "active": "on",
            "offline_card_limit": "50",
            "offline_warn_hours": "4",
            **inline_rows("registers", []),
        },
    )

    assert response.status_code == 200
    assert "but the store sells in CHF" in str(response.context["adminform"].form.errors)
    assert not Store.objects.exists()
    assert not StockLocation.objects.filter(code="ZRH1").exists()


def test_a_register_code_cannot_change_and_the_row_says_so(client, estate):
    signed_in(client, "staff")
    store, register = estate[Store], estate[Register]
    key = estate[NodeKey]

    response = client.post(
        url(Store, "change", store.pk),
        {
            **store_data(store, name="Renamed"),
            **inline_rows(
                "registers", [{"id": register.pk, "code": "R99", "active": "on"}], initial=1
            ),
            **inline_rows("node_keys", [{"id": key.pk}], initial=1),
        },
    )

    assert response.status_code == 200
    (registers,) = [
        fs for fs in response.context["inline_admin_formsets"] if fs.formset.prefix == "registers"
    ]
    assert "cannot be changed once created" in str(registers.formset.forms[0].errors)
    register.refresh_from_db()
    store.refresh_from_db()
    assert (register.code, store.name) == (estate[Register].code, estate[Store].name)


def test_staff_renames_a_register_in_the_store_inline(client, estate):
    user = signed_in(client, "staff")
    store, register, key = estate[Store], estate[Register], estate[NodeKey]

    response = client.post(
        url(Store, "change", store.pk),
        {
            **store_data(store),
            **inline_rows(
                "registers",
                [{"id": register.pk, "code": register.code, "name": "Front", "active": "on"}],
                initial=1,
            ),
            **inline_rows("node_keys", [{"id": key.pk}], initial=1),
        },
    )

    assert response.status_code == 302
    register.refresh_from_db()
    assert register.name == "Front"
    assert register.history.latest().history_user == user
    assert store.history.count() == 1  # the store itself did not change


def test_a_store_with_registers_is_not_deleted(client, estate):
    signed_in(client, "staff")
    store = estate[Store]

    response = client.post(url(Store, "delete", store.pk), {"post": "yes"})

    assert response.status_code == 200
    assert "Cannot delete" in response.content.decode()
    assert Store.objects.filter(pk=store.pk).exists()


# --- node keys ----------------------------------------------------------------------------------


def _database_text() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_issuing_a_key_shows_it_once_and_stores_only_its_digest(client, estate):
    user = signed_in(client, "staff")
    store = estate[Store]

    confirm = client.post(
        url(Store, "changelist"), {"action": "issue_node_key", "_selected_action": [store.pk]}
    )
    assert confirm.status_code == 200
    assert NodeKey.objects.filter(store=store).count() == 1  # asking for a label issues nothing

    response = issue_via_action(client, store, label="back office")

    assert response.status_code == 200
    page = response.content.decode()
    assert "will not be shown again" in page
    (plain,) = set(KEY.findall(page))
    assert "no-store" in response["Cache-Control"]
    node_key = NodeKey.objects.get(store=store, label="back office")
    assert plain.startswith(f"tbk_{node_key.prefix}_")
    assert node_key.digest == hashlib.sha256(plain.encode()).hexdigest()
    assert node_key.created_by == user
    assert node_key.history.get().history_user == user
    assert services.node_key_authenticate(key=plain) == node_key

    # The plain key is stored nowhere: not in any table, the sessions, nor a cookie.
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    secret = plain.removeprefix(f"tbk_{node_key.prefix}_")  # may itself contain "_"
    assert secret not in dump.getvalue()
    assert secret not in _database_text()
    for session in Session.objects.all():
        assert secret not in session.session_data
        assert secret not in repr(session.get_decoded())
    assert secret not in str(client.cookies)

    # Later pages do not show it again.
    for path in (
        url(Store, "change", store.pk),
        url(Store, "changelist"),
        url(NodeKey, "change", node_key.pk),
        url(NodeKey, "history", node_key.pk),
    ):
        assert secret not in client.get(path).content.decode()


def test_the_store_page_button_issues_a_key(client, estate):
    signed_in(client, "staff")
    store = estate[Store]
    issue_url = url(Store, "issue_node_key", store.pk)

    assert issue_url in client.get(url(Store, "change", store.pk)).content.decode()
    assert client.get(issue_url).status_code == 200
    response = client.post(issue_url, {"post": "yes", "label": "spare"})

    assert response.status_code == 200
    (plain,) = set(KEY.findall(response.content.decode()))
    node_key = NodeKey.objects.get(store=store, label="spare")
    assert node_key.digest == hashlib.sha256(plain.encode()).hexdigest()


def test_keys_for_several_stores_are_issued_together(client, estate):
    signed_in(client, "staff")
    other = StoreFactory(price_list=estate[Store].price_list)

    response = issue_via_action(client, estate[Store], other)

    keys = set(KEY.findall(response.content.decode()))
    assert len(keys) == 2
    assert {services.node_key_authenticate(key=k).store for k in keys} == {estate[Store], other}


def test_no_key_is_issued_for_an_inactive_store(client, estate):
    signed_in(client, "staff")
    active = estate[Store]
    inactive = StoreFactory(price_list=active.price_list, active=False)

    response = issue_via_action(client, active, inactive, follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert not KEY.search(page)
    assert f"Store {inactive.code} is inactive" in page
    assert NodeKey.objects.count() == 1


def test_node_keys_cannot_be_added_edited_or_deleted(client, estate):
    signed_in(client, "staff")
    key = estate[NodeKey]

    assert client.get(url(NodeKey, "add")).status_code == 403
    response = client.post(url(NodeKey, "change", key.pk), {"label": "changed"})
    assert response.status_code == 403
    assert client.post(url(NodeKey, "delete", key.pk), {"post": "yes"}).status_code == 403
    key.refresh_from_db()
    assert key.label == "till PC"


@pytest.mark.parametrize("role", ["staff", "auditor"])
def test_the_digest_is_never_displayed(client, estate, role):
    signed_in(client, role)
    key = estate[NodeKey]
    services.node_key_revoke(node_key=key, actor=None)
    version = key.history.earliest()

    for path in (
        url(NodeKey, "changelist"),
        url(NodeKey, "change", key.pk),
        url(NodeKey, "history", key.pk),
        url(NodeKey, "simple_history", key.pk, version.pk),
        url(Store, "change", key.store_id),
    ):
        page = client.get(path).content.decode()
        assert key.prefix in page, path
        assert key.digest not in page, path


def test_revoking_keys_via_the_action(client, estate):
    user = signed_in(client, "staff")
    key = estate[NodeKey]
    other, _plain = services.node_key_issue(actor=None, store=estate[Store])

    response = client.post(
        url(NodeKey, "changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
        follow=True,
    )

    assert "Revoked 1 node key" in response.content.decode()
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.revoked_at is not None
    assert key.revoked_by == user
    assert key.history.latest().history_user == user
    assert other.revoked_at is None


# --- query counts -------------------------------------------------------------------------------


def _queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def _make_stores(n: int) -> None:
    price_list = PriceListFactory()
    for _ in range(n):
        register = RegisterFactory(store=StoreFactory(price_list=price_list))
        services.node_key_issue(actor=None, store=register.store)


@pytest.mark.parametrize("model", [Store, Register, NodeKey], ids=lambda m: m.__name__)
def test_list_pages_make_the_same_number_of_queries_for_3_or_30_stores(
    client, model, django_assert_max_num_queries
):
    signed_in(client, "staff")
    _make_stores(3)
    path = url(model, "changelist")
    client.get(path)

    few = _queries(client, path)
    _make_stores(27)
    with django_assert_max_num_queries(12):
        many = _queries(client, path)

    assert many == few
