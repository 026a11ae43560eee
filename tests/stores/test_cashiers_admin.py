"""The cashier admin (PIN field, stores, history, read-only roles) and the stores' offline rules."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inventory.models import Currency
from stores import services
from stores.models import (
    DEFAULT_SUPERVISOR_OPERATIONS,
    Cashier,
    CashierStore,
    Register,
    Sale,
    Store,
)
from tests.factories import (
    CashierFactory,
    PriceListFactory,
    RegisterFactory,
    StoreFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def signed_in(client: Client, role: str) -> Any:
    user = UserFactory(roles=[role])
    client.force_login(user)
    return user


def url(model: type, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def cashier_data(**overrides: Any) -> dict[str, Any]:
    data = {"name": "Ann", "role": "cashier", "active": "on", "pin": "", "in_stores": []}
    data.update(overrides)
    return data


def form_errors(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


def all_rows_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


@pytest.fixture
def ber() -> Store:
    return StoreFactory(code="BER")


@pytest.fixture
def cashier(ber: Store) -> Cashier:
    return services.cashier_create(
        actor=None, code="C1", name="Ann", role="cashier", pin="2468", stores=[ber]
    )


# --- adding and changing ------------------------------------------------------------------------


def test_staff_adds_a_cashier_with_a_pin_and_stores(client, ber):
    user = signed_in(client, "staff")
    ham = StoreFactory(code="HAM")

    response = client.post(
        url(Cashier, "add"),
        cashier_data(code="C7", pin="864200", role="supervisor", in_stores=[ber.pk, ham.pk]),
    )

    assert response.status_code == 302, response.context and form_errors(response)
    cashier = Cashier.objects.get(code="C7")
    assert cashier.role == "supervisor"
    assert services.cashier_check_pin(cashier, "864200")
    assert sorted(cashier.stores.values_list("code", flat=True)) == ["BER", "HAM"]
    version = cashier.history.get()
    assert (version.history_user, version.history_change_reason) == (user, "admin")
    assert set(CashierStore.history.values_list("history_user", flat=True)) == {user.pk}
    assert "864200" not in all_rows_text()  # not in any table: rows, history, admin log


def test_adding_a_cashier_without_a_pin_is_refused_on_the_form(client, ber):
    signed_in(client, "staff")

    response = client.post(url(Cashier, "add"), cashier_data(code="C7", in_stores=[ber.pk]))

    assert "pin" in form_errors(response)
    assert not Cashier.objects.exists()


@pytest.mark.parametrize("pin", ["12", "123456789", "12a4", "١٢٣٤"])
def test_a_bad_pin_is_refused_on_the_form(client, pin):
    signed_in(client, "staff")

    response = client.post(url(Cashier, "add"), cashier_data(code="C7", pin=pin))

    assert form_errors(response)["pin"] == [services.PIN_RULE]
    assert not Cashier.objects.exists()
    (pin_input,) = re.findall(r'<input[^>]*name="pin"[^>]*>', response.content.decode())
    assert "value=" not in pin_input  # the password field is not filled in again


def test_the_pin_field_is_a_password_field_required_on_add_only(client, cashier):
    signed_in(client, "staff")

    add = client.get(url(Cashier, "add"))
    change = client.get(url(Cashier, "change", cashier.pk))

    add_pin = add.context["adminform"].form.fields["pin"]
    change_pin = change.context["adminform"].form.fields["pin"]
    assert add_pin.required
    assert not change_pin.required
    assert "Leave empty to keep the current PIN" in change.content.decode()
    assert 'type="password"' in change.content.decode()


def test_changing_a_cashier_without_a_pin_keeps_it(client, cashier, ber):
    user = signed_in(client, "staff")
    stored_hash = cashier.pin_hash

    response = client.post(
        url(Cashier, "change", cashier.pk), cashier_data(name="Ann B.", in_stores=[ber.pk])
    )

    assert response.status_code == 302, response.context and form_errors(response)
    cashier.refresh_from_db()
    assert cashier.name == "Ann B."
    assert cashier.pin_hash == stored_hash
    latest = cashier.history.latest()
    assert (latest.history_type, latest.history_user, latest.history_change_reason) == (
        "~",
        user,
        "admin",
    )


def test_changing_the_pin_in_the_admin(client, cashier, ber):
    signed_in(client, "staff")

    response = client.post(
        url(Cashier, "change", cashier.pk), cashier_data(pin="97531", in_stores=[ber.pk])
    )

    assert response.status_code == 302, response.context and form_errors(response)
    cashier.refresh_from_db()
    assert services.cashier_check_pin(cashier, "97531")
    assert cashier.history.latest().history_change_reason == "admin: PIN changed"
    log = LogEntry.objects.get(object_id=str(cashier.pk), action_flag=CHANGE)
    assert "97531" not in log.change_message


def test_an_unchanged_form_writes_nothing(client, cashier, ber):
    signed_in(client, "staff")
    versions = (cashier.history.count(), CashierStore.history.count())

    response = client.post(url(Cashier, "change", cashier.pk), cashier_data(in_stores=[ber.pk]))

    assert response.status_code == 302
    assert (cashier.history.count(), CashierStore.history.count()) == versions


def test_stores_chosen_on_the_form_replace_the_memberships(client, cashier, ber):
    user = signed_in(client, "staff")
    ham = StoreFactory(code="HAM")

    response = client.post(url(Cashier, "change", cashier.pk), cashier_data(in_stores=[ham.pk]))

    assert response.status_code == 302, response.context and form_errors(response)
    assert list(cashier.stores.values_list("code", flat=True)) == ["HAM"]
    removed = CashierStore.history.get(history_type="-")
    assert (removed.store_id, removed.history_user) == (ber.pk, user)


def test_an_inactive_store_cannot_be_chosen_but_one_already_chosen_is_kept(client, cashier, ber):
    signed_in(client, "staff")
    closed = StoreFactory(code="OLD", active=False)
    Store.objects.filter(pk=ber.pk).update(active=False)

    page = client.get(url(Cashier, "change", cashier.pk))
    choices = set(page.context["adminform"].form.fields["in_stores"].queryset)
    refused = client.post(
        url(Cashier, "change", cashier.pk), cashier_data(in_stores=[ber.pk, closed.pk])
    )
    kept = client.post(url(Cashier, "change", cashier.pk), cashier_data(in_stores=[ber.pk]))

    assert choices == {ber}
    assert "in_stores" in form_errors(refused)
    assert kept.status_code == 302
    assert list(cashier.stores.all()) == [ber]


def test_the_code_cannot_change(client, cashier, ber):
    signed_in(client, "staff")

    client.post(url(Cashier, "change", cashier.pk), cashier_data(code="C9", in_stores=[ber.pk]))

    assert Cashier.objects.get(pk=cashier.pk).code == "C1"


# --- what is shown ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "auditor", "finance"])
def test_pages_render_and_never_show_the_hash(client, cashier, role):
    signed_in(client, role)
    services.cashier_set_pin(cashier=cashier, actor=None, pin="13579")
    cashier.refresh_from_db()
    version = cashier.history.earliest()

    for path in (
        url(Cashier, "changelist"),
        url(Cashier, "change", cashier.pk),
        url(Cashier, "history", cashier.pk),
        url(Cashier, "simple_history", cashier.pk, version.pk),
        url(CashierStore, "changelist"),
        url(CashierStore, "history", cashier.memberships.get().pk),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.content.decode()
        assert cashier.pin_hash not in page, path
        assert cashier.pin_hash.split("$")[-1] not in page, path
        assert "13579" not in page, path


def test_the_list_shows_stores_and_filters_and_searches(client, ber):
    signed_in(client, "staff")
    ham = StoreFactory(code="HAM")
    CashierFactory(code="A1", name="Anna", role="supervisor", stores=[ber, ham])
    CashierFactory(code="B1", name="Ben", stores=[ham])
    CashierFactory(code="X1", name="Xavier", active=False)

    def listed(query: str = "") -> list[str]:
        response = client.get(url(Cashier, "changelist") + query)
        assert response.status_code == 200
        return [c.code for c in response.context["cl"].result_list]

    page = client.get(url(Cashier, "changelist")).content.decode()
    assert "BER, HAM" in page
    assert listed() == ["A1", "B1", "X1"]
    assert listed("?role__exact=supervisor") == ["A1"]
    assert listed("?active__exact=0") == ["X1"]
    assert listed(f"?stores__id__exact={ham.pk}") == ["A1", "B1"]
    assert listed("?q=ben") == ["B1"]


def test_the_list_makes_the_same_number_of_queries_for_3_or_30_cashiers(client, ber):
    signed_in(client, "staff")
    for _ in range(3):
        CashierFactory(stores=[ber])
    path = url(Cashier, "changelist")
    client.get(path)

    with CaptureQueriesContext(connection) as few:
        client.get(path)
    for _ in range(27):
        CashierFactory(stores=[ber])
    with CaptureQueriesContext(connection) as many:
        client.get(path)

    assert len(many) == len(few)


# --- read-only roles ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["auditor", "finance"])
def test_read_only_roles_see_cashiers_but_change_nothing(client, cashier, ber, role):
    signed_in(client, role)
    before = (
        list(Cashier.objects.values_list()),
        list(CashierStore.objects.values_list()),
        Cashier.history.count(),
    )

    page = client.get(url(Cashier, "change", cashier.pk))
    assert page.status_code == 200
    assert 'name="pin"' not in page.content.decode()
    assert "BER" in page.content.decode()
    assert client.get(url(Cashier, "add")).status_code == 403
    responses = [
        client.post(url(Cashier, "add"), cashier_data(code="C7", pin="1234")),
        client.post(url(Cashier, "change", cashier.pk), cashier_data(name="X", pin="9999")),
        client.post(url(Cashier, "delete", cashier.pk), {"post": "yes"}),
    ]
    client.post(
        url(Cashier, "changelist"),
        {"action": "deactivate_selected", "_selected_action": [cashier.pk]},
    )

    assert [r.status_code for r in responses] == [403, 403, 403]
    after = (
        list(Cashier.objects.values_list()),
        list(CashierStore.objects.values_list()),
        Cashier.history.count(),
    )
    assert after == before


# --- deleting -----------------------------------------------------------------------------------


def test_deleting_an_unused_cashier_deletes_it_and_its_memberships(client, cashier):
    user = signed_in(client, "staff")

    response = client.post(url(Cashier, "delete", cashier.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Cashier.objects.exists()
    assert not CashierStore.objects.exists()
    assert Cashier.history.filter(history_type="-").get().history_user == user
    assert LogEntry.objects.filter(object_id=str(cashier.pk), action_flag=DELETION).exists()


def test_deleting_a_cashier_named_by_a_sale_deactivates_it_and_says_so(client, cashier, ber):
    signed_in(client, "staff")
    register = RegisterFactory(store=ber)
    now = timezone.now()
    Sale.objects.create(
        event_id=uuid.uuid4(),
        type="sale",
        store=ber,
        register=register,
        seq=1,
        receipt_no="1",
        cashier="C1",
        currency="EUR",
        net=Decimal("1"),
        tax=Decimal("0"),
        gross=Decimal("1"),
        occurred_at=now,
        business_date=dt.date(2026, 3, 2),
        received_at=now,
    )

    confirm = client.get(url(Cashier, "delete", cashier.pk))
    response = client.post(url(Cashier, "delete", cashier.pk), {"post": "yes"}, follow=True)

    assert "will be deactivated instead of deleted" in confirm.content.decode()
    assert "deactivated instead of deleted" in response.content.decode()
    cashier.refresh_from_db()
    assert cashier.active is False
    assert list(cashier.stores.all()) == [ber]
    assert Register.objects.filter(pk=register.pk).exists()


# --- stores: offline rules ----------------------------------------------------------------------


def store_form(store: Store, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": store.name,
        "timezone": store.timezone,
        "currency": store.currency_id,
        "price_list": store.price_list_id,
        "stock_location": store.stock_location_id,
        "active": "on",
        "offline_card_limit": str(store.offline_card_limit),
        "offline_warn_hours": str(store.offline_warn_hours),
        "supervisor_operations": list(store.supervisor_operations),
        "registers-TOTAL_FORMS": "0",
        "registers-INITIAL_FORMS": "0",
        "node_keys-TOTAL_FORMS": "0",
        "node_keys-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_staff_sets_a_stores_offline_rules(client, ber):
    user = signed_in(client, "staff")

    page = client.get(url(Store, "change", ber.pk)).content.decode()
    response = client.post(
        url(Store, "change", ber.pk),
        store_form(
            ber,
            offline_card_limit="75.50",
            offline_warn_hours="8",
            supervisor_operations=["reprint", "void_basket"],
        ),
    )

    assert "Offline rules" in page
    assert 'value="void_basket"' in page
    assert response.status_code == 302, response.context and form_errors(response)
    ber.refresh_from_db()
    assert (ber.offline_card_limit, ber.offline_warn_hours) == (Decimal("75.50"), 8)
    assert ber.supervisor_operations == ["void_basket", "reprint"]  # in the canonical order
    assert ber.history.latest().history_user == user


def test_unticking_every_operation_clears_them(client, ber):
    signed_in(client, "staff")
    data = store_form(ber)
    del data["supervisor_operations"]

    response = client.post(url(Store, "change", ber.pk), data)

    assert response.status_code == 302, response.context and form_errors(response)
    ber.refresh_from_db()
    assert ber.supervisor_operations == []


def test_the_add_form_offers_the_default_offline_rules(client):
    signed_in(client, "staff")

    form = client.get(url(Store, "add")).context["adminform"].form

    assert form["supervisor_operations"].value() == list(DEFAULT_SUPERVISOR_OPERATIONS)
    assert (form["offline_card_limit"].value(), form["offline_warn_hours"].value()) == (
        Decimal("50"),
        4,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("offline_card_limit", "-1"),
        ("offline_card_limit", "10.005"),
        ("offline_warn_hours", "0"),
        ("offline_warn_hours", "721"),
        ("supervisor_operations", ["open_drawer"]),
    ],
)
def test_bad_offline_rules_are_refused_on_the_form(client, ber, field, value):
    signed_in(client, "staff")
    versions = ber.history.count()

    response = client.post(url(Store, "change", ber.pk), store_form(ber, **{field: value}))

    assert field in form_errors(response)
    assert ber.history.count() == versions


def test_a_yen_stores_limit_has_no_decimals(client):
    signed_in(client, "staff")
    store = StoreFactory(
        code="TYO",
        currency=Currency.objects.get(code="JPY"),
        price_list=PriceListFactory(code="JP", currency=Currency.objects.get(code="JPY")),
    )

    refused = client.post(
        url(Store, "change", store.pk), store_form(store, offline_card_limit="50.5")
    )
    accepted = client.post(
        url(Store, "change", store.pk), store_form(store, offline_card_limit="7000")
    )

    assert "JPY amounts have at most 0 decimals." in str(form_errors(refused))
    assert accepted.status_code == 302
    store.refresh_from_db()
    assert store.offline_card_limit == Decimal("7000")
