"""Cashiers: the services (PIN rules, hashing, memberships, delete or deactivate) and the HQ API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.conf import global_settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from erp.demo import CASHIERS
from erp.errors import ValidationFailed
from stores import services
from stores.models import Cashier, CashierStore, Register, Sale, Store, TillSession
from sync.models import FeedChange
from tests.factories import CashierFactory, RegisterFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/api/v1/cashiers/"

BAD_PINS = [
    pytest.param("123", id="too-short"),
    pytest.param("123456789", id="too-long"),
    pytest.param("12a4", id="letter"),
    pytest.param("12 34", id="space"),
    pytest.param(" 1234", id="leading-space"),
    pytest.param("1234\n", id="trailing-newline"),
    pytest.param("", id="empty"),
    pytest.param("١٢٣٤", id="arabic-indic-digits"),
    pytest.param("²³⁴⁵", id="superscript-digits"),
    pytest.param("-1234", id="sign"),
]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"].strip()
    return body["error"]


def create(
    *, stores: list[Store] | None = None, pin: str = "2468", actor: Any = None, **fields: Any
) -> Cashier:
    values = {"code": "C1", "name": "Ann", "role": Cashier.Role.CASHIER, **fields}
    return services.cashier_create(
        actor=actor, pin=pin, stores=stores or [], reason="test", **values
    )


def store_codes(cashier: Cashier) -> list[str]:
    return sorted(
        CashierStore.objects.filter(cashier=cashier).values_list("store__code", flat=True)
    )


def till_session(store: Store, cashier_code: str) -> TillSession:
    register = Register.objects.filter(store=store).first() or RegisterFactory(store=store)
    return TillSession.objects.create(
        session_id=f"s-{uuid.uuid4()}", store=store, register=register, cashier=cashier_code
    )


def sale(store: Store, cashier_code: str) -> Sale:
    register = Register.objects.filter(store=store).first() or RegisterFactory(store=store)
    now = timezone.now()
    return Sale.objects.create(
        event_id=uuid.uuid4(),
        type=Sale.Type.SALE,
        store=store,
        register=register,
        seq=1,
        receipt_no="R-1",
        cashier=cashier_code,
        currency="EUR",
        net=Decimal("1.00"),
        tax=Decimal("0.19"),
        gross=Decimal("1.19"),
        occurred_at=now,
        business_date=dt.date(2026, 3, 2),
        received_at=now,
    )


# --- services: the PIN --------------------------------------------------------------------------


def test_created_cashier_keeps_only_a_salted_hash_of_the_pin():
    store = StoreFactory(code="BER")

    first = create(stores=[store], pin="2468")
    second = create(code="C2", pin="2468")

    for cashier in (first, second):
        stored = Cashier.objects.get(pk=cashier.pk).pin_hash
        assert "2468" not in stored
        assert stored.count("$") >= 2  # algorithm$…$hash, as make_password writes it
    assert first.pin_hash != second.pin_hash  # salted
    assert services.cashier_check_pin(first, "2468")
    assert not services.cashier_check_pin(first, "2469")


def test_pin_is_hashed_with_djangos_default_slow_hasher(settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS

    cashier = create(pin="2468")

    assert cashier.pin_hash.startswith("pbkdf2_sha256$")
    assert services.cashier_check_pin(cashier, "2468")


@pytest.mark.parametrize("pin", BAD_PINS)
def test_a_pin_that_is_not_4_to_8_ascii_digits_is_refused_and_nothing_is_written(pin):
    store = StoreFactory(code="BER")

    with pytest.raises(ValidationFailed) as raised:
        create(stores=[store], pin=pin)

    assert raised.value.details == {"pin": [services.PIN_RULE]}
    assert not Cashier.objects.exists()
    assert not CashierStore.objects.exists()
    assert not Cashier.history.exists()


@pytest.mark.parametrize("pin", ["0000", "1234", "12345678", "00012345"])
def test_four_to_eight_digits_are_a_pin(pin):
    cashier = create(pin=pin)

    assert services.cashier_check_pin(cashier, pin)


def test_a_bad_new_pin_keeps_the_old_one():
    cashier = create(pin="2468")
    before = Cashier.objects.get(pk=cashier.pk).pin_hash

    with pytest.raises(ValidationFailed) as raised:
        services.cashier_set_pin(cashier=cashier, actor=None, pin="12")

    assert raised.value.details == {"pin": [services.PIN_RULE]}
    assert Cashier.objects.get(pk=cashier.pk).pin_hash == before


@pytest.mark.parametrize("pin", ["", "12", "abcd", None, 1234, "2468 "])
def test_check_pin_is_false_for_anything_but_the_pin(pin):
    cashier = create(pin="2468")

    assert services.cashier_check_pin(cashier, pin) is False


def test_check_pin_is_false_for_a_cashier_without_a_hash():
    assert services.cashier_check_pin(Cashier(code="X"), "2468") is False


def test_setting_a_pin_replaces_the_hash_and_history_says_so_without_the_hash():
    user = UserFactory()
    cashier = create(pin="2468")

    services.cashier_set_pin(cashier=cashier, actor=user, pin="13579", reason="forgotten")

    cashier.refresh_from_db()
    assert services.cashier_check_pin(cashier, "13579")
    assert not services.cashier_check_pin(cashier, "2468")
    latest = cashier.history.latest()
    assert (latest.history_type, latest.history_user, latest.history_change_reason) == (
        "~",
        user,
        "forgotten: PIN changed",
    )
    assert "pin_hash" not in {f.name for f in Cashier.history.model._meta.fields}


def test_update_refuses_a_pin_or_hash_passed_as_a_plain_change():
    cashier = create(pin="2468")

    for name in ("pin", "pin_hash", "stores"):
        with pytest.raises(TypeError):
            services.cashier_update(cashier=cashier, actor=None, changes={name: "9999"})

    assert services.cashier_check_pin(Cashier.objects.get(pk=cashier.pk), "2468")


# --- services: fields and stores ----------------------------------------------------------------


def test_cashier_code_cannot_change():
    cashier = create()

    with pytest.raises(ValidationFailed) as raised:
        services.cashier_update(cashier=cashier, actor=None, changes={"code": "C9"})

    assert "code" in raised.value.details
    assert Cashier.objects.get(pk=cashier.pk).code == "C1"


def test_unknown_role_is_refused():
    with pytest.raises(ValidationFailed) as raised:
        create(role="manager")

    assert "role" in raised.value.details
    assert not Cashier.objects.exists()


def test_create_records_the_cashier_and_each_membership_with_user_and_reason():
    user = UserFactory()
    ber, ham = StoreFactory(code="BER"), StoreFactory(code="HAM")

    cashier = create(stores=[ber, ham], actor=user)

    assert store_codes(cashier) == ["BER", "HAM"]
    assert [
        (h.history_type, h.history_user, h.history_change_reason) for h in cashier.history.all()
    ] == [("+", user, "test")]
    memberships = CashierStore.history.filter(cashier_id=cashier.pk)
    assert sorted((h.history_type, h.store_id, h.history_user) for h in memberships) == sorted(
        [("+", ber.pk, user), ("+", ham.pk, user)]
    )


def test_stores_given_to_update_replace_the_memberships_one_row_at_a_time():
    user = UserFactory()
    ber, ham, muc = (StoreFactory(code=c) for c in ("BER", "HAM", "MUC"))
    cashier = create(stores=[ber, ham])
    cashier_versions = cashier.history.count()

    services.cashier_update(
        cashier=cashier, actor=user, changes={}, stores=[ham, muc], reason="moved"
    )

    assert store_codes(cashier) == ["HAM", "MUC"]
    changes = CashierStore.history.filter(cashier_id=cashier.pk, history_user=user)
    assert sorted((h.history_type, h.store_id, h.history_change_reason) for h in changes) == sorted(
        [("-", ber.pk, "moved"), ("+", muc.pk, "moved")]
    )
    assert cashier.history.count() == cashier_versions  # the cashier row itself did not change


def test_membership_add_and_remove_are_idempotent():
    store = StoreFactory(code="BER")
    cashier = create()

    first = services.cashier_store_add(cashier=cashier, store=store, actor=None)
    again = services.cashier_store_add(cashier=cashier, store=store, actor=None)
    assert first.pk == again.pk
    assert CashierStore.history.filter(history_type="+").count() == 1

    assert services.cashier_store_remove(cashier=cashier, store=store, actor=None) is True
    assert services.cashier_store_remove(cashier=cashier, store=store, actor=None) is False
    assert store_codes(cashier) == []
    assert CashierStore.history.filter(history_type="-").count() == 1


def test_a_cashier_cannot_be_added_to_an_inactive_store():
    closed = StoreFactory(code="OLD", active=False)
    cashier = create()

    with pytest.raises(ValidationFailed) as raised:
        create(code="C2", stores=[closed])
    assert "stores" in raised.value.details
    assert not Cashier.objects.filter(code="C2").exists()

    with pytest.raises(ValidationFailed):
        services.cashier_store_add(cashier=cashier, store=closed, actor=None)
    with pytest.raises(ValidationFailed):
        services.cashier_update(cashier=cashier, actor=None, changes={}, stores=[closed])
    assert store_codes(cashier) == []


def test_a_store_deactivated_later_keeps_its_cashiers():
    store = StoreFactory(code="BER")
    other = StoreFactory(code="HAM")
    cashier = create(stores=[store])
    Store.objects.filter(pk=store.pk).update(active=False)
    store.refresh_from_db()

    services.cashier_update(
        cashier=cashier, actor=None, changes={"name": "Ann B."}, stores=[store, other]
    )

    assert store_codes(cashier) == ["BER", "HAM"]


def test_a_store_listed_twice_is_refused():
    store = StoreFactory(code="BER")

    with pytest.raises(ValidationFailed) as raised:
        create(stores=[store, store])

    assert raised.value.details == {"stores": ["BER: listed twice."]}
    assert not Cashier.objects.exists()


def test_membership_changes_reach_the_stores_change_feed():
    ber, ham = StoreFactory(code="BER"), StoreFactory(code="HAM")
    cashier = create(stores=[ber])

    services.cashier_update(cashier=cashier, actor=None, changes={}, stores=[ham])

    feed = {
        (f.scope, f.op)
        for f in FeedChange.objects.filter(entity="cashier", entity_key=cashier.code)
    }
    assert feed == {(f"store:{ber.pk}", "delete"), (f"store:{ham.pk}", "upsert")}


# --- services: delete or deactivate -------------------------------------------------------------


def test_a_cashier_never_named_by_a_sale_or_session_is_deleted_with_its_memberships():
    user = UserFactory()
    store = StoreFactory(code="BER")
    cashier = create(stores=[store])
    till_session(store, "SOMEONE-ELSE")

    deleted = services.cashier_delete(cashier=cashier, actor=user, reason="left")

    assert deleted is True
    assert not Cashier.objects.exists()
    assert not CashierStore.objects.exists()
    assert Cashier.history.filter(history_type="-").get().history_user == user
    assert CashierStore.history.filter(history_type="-").get().history_user == user


@pytest.mark.parametrize("used_by", [sale, till_session], ids=["sale", "session"])
def test_a_cashier_named_by_a_sale_or_session_is_deactivated_instead(used_by):
    store = StoreFactory(code="BER")
    cashier = create(stores=[store])
    used_by(store, cashier.code)

    deleted = services.cashier_delete(cashier=cashier, actor=None)

    assert deleted is False
    cashier.refresh_from_db()
    assert cashier.active is False
    assert store_codes(cashier) == ["BER"]
    assert cashier.history.latest().history_change_reason == "deactivated: in use"
    versions = cashier.history.count()
    assert services.cashier_delete(cashier=cashier, actor=None) is False
    assert cashier.history.count() == versions  # already inactive: nothing written


# --- API ----------------------------------------------------------------------------------------


def body(**overrides: Any) -> dict[str, Any]:
    data = {"code": "C1", "name": "Ann", "role": "cashier", "pin": "2468", "stores": ["BER"]}
    data.update(overrides)
    return data


def test_api_creates_a_cashier_and_never_returns_the_pin_or_its_hash(staff_client):
    StoreFactory(code="BER")

    response = staff_client.post(API, body(role="supervisor"), format="json")

    assert response.status_code == 201, response.content
    assert set(response.json()) == {
        "code",
        "name",
        "role",
        "active",
        "stores",
        "created_at",
        "updated_at",
    }
    assert response.json()["stores"] == ["BER"]
    assert response.json()["role"] == "supervisor"
    cashier = Cashier.objects.get(code="C1")
    assert services.cashier_check_pin(cashier, "2468")
    assert cashier.history.get().history_change_reason == "api"
    assert cashier.history.get().history_user == staff_client.user
    for text in (response.content.decode(), staff_client.get(API).content.decode()):
        assert cashier.pin_hash not in text
        assert "pin" not in text


def test_api_role_defaults_to_cashier(staff_client):
    StoreFactory(code="BER")
    data = body()
    del data["role"]

    response = staff_client.post(API, data, format="json")

    assert response.status_code == 201, response.content
    assert Cashier.objects.get().role == "cashier"


def test_api_create_without_a_pin_is_refused(staff_client):
    StoreFactory(code="BER")
    data = body()
    del data["pin"]

    error = assert_error(staff_client.post(API, data, format="json"), 400, "validation_failed")

    assert "pin" in error["details"]
    assert not Cashier.objects.exists()


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", "١٢٣٤", " 1234"])
def test_api_bad_pin_is_a_400_naming_the_rule_and_not_the_pin(staff_client, pin):
    StoreFactory(code="BER")

    response = staff_client.post(API, body(pin=pin, code="C7"), format="json")

    error = assert_error(response, 400, "validation_failed")
    assert error["details"] == {"pin": [services.PIN_RULE]}
    assert pin.strip() not in response.content.decode()
    assert not Cashier.objects.exists()


def test_api_pin_sent_as_a_number_is_refused(staff_client):
    StoreFactory(code="BER")

    response = staff_client.post(API, body(pin=1234), format="json")

    # A JSON number would lose a PIN's leading zeros: PINs are strings.
    assert "pin" in assert_error(response, 400, "validation_failed")["details"]
    assert not Cashier.objects.exists()


def test_api_refuses_unknown_fields_such_as_the_hash(staff_client):
    StoreFactory(code="BER")

    error = assert_error(
        staff_client.post(API, body(pin_hash="md5$x$y"), format="json"), 400, "unknown_field"
    )

    assert "pin_hash" in error["details"]
    assert not Cashier.objects.exists()


def test_api_refuses_an_unknown_or_inactive_store(staff_client):
    StoreFactory(code="OLD", active=False)

    unknown = assert_error(
        staff_client.post(API, body(stores=["NOPE"]), format="json"), 400, "validation_failed"
    )
    inactive = assert_error(
        staff_client.post(API, body(stores=["OLD"]), format="json"), 400, "validation_failed"
    )

    assert "stores" in unknown["details"]
    assert inactive["details"] == {"stores": ["OLD: the store is inactive; activate it first."]}
    assert not Cashier.objects.exists()


def test_api_reads_a_cashier_by_code(staff_client):
    CashierFactory(
        code="C1", name="Ann", stores=[StoreFactory(code="BER"), StoreFactory(code="AB")]
    )

    response = staff_client.get(f"{API}C1/")

    assert response.status_code == 200
    assert response.json()["stores"] == ["AB", "BER"]
    assert_error(staff_client.get(f"{API}NOPE/"), 404, "not_found")


def test_api_patch_without_a_pin_keeps_it(staff_client):
    cashier = CashierFactory(code="C1", pin="2468")

    response = staff_client.patch(f"{API}C1/", {"name": "Ann B.", "active": False}, format="json")

    assert response.status_code == 200, response.content
    cashier.refresh_from_db()
    assert (cashier.name, cashier.active) == ("Ann B.", False)
    assert services.cashier_check_pin(cashier, "2468")


def test_api_patch_with_a_pin_sets_it(staff_client):
    cashier = CashierFactory(code="C1", pin="2468")

    response = staff_client.patch(f"{API}C1/", {"pin": "97531"}, format="json")

    assert response.status_code == 200, response.content
    assert "pin" not in response.json()
    cashier.refresh_from_db()
    assert services.cashier_check_pin(cashier, "97531")
    assert cashier.history.latest().history_change_reason == "api: PIN changed"


def test_api_patch_with_a_bad_pin_changes_nothing(staff_client):
    cashier = CashierFactory(code="C1", name="Ann", pin="2468")

    response = staff_client.patch(f"{API}C1/", {"name": "Bea", "pin": "12"}, format="json")

    assert assert_error(response, 400, "validation_failed")["details"] == {
        "pin": [services.PIN_RULE]
    }
    cashier.refresh_from_db()
    assert cashier.name == "Ann"
    assert services.cashier_check_pin(cashier, "2468")


def test_api_patch_stores_replaces_them(staff_client):
    ber, ham = StoreFactory(code="BER"), StoreFactory(code="HAM")
    CashierFactory(code="C1", stores=[ber])

    response = staff_client.patch(f"{API}C1/", {"stores": ["HAM"]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["stores"] == ["HAM"]
    assert list(CashierStore.objects.values_list("store_id", flat=True)) == [ham.pk]


def test_api_put_needs_no_pin(staff_client):
    cashier = CashierFactory(code="C1", pin="2468")

    response = staff_client.put(
        f"{API}C1/",
        {"code": "C1", "name": "Ann", "role": "supervisor", "active": True, "stores": []},
        format="json",
    )

    assert response.status_code == 200, response.content
    cashier.refresh_from_db()
    assert cashier.role == "supervisor"
    assert services.cashier_check_pin(cashier, "2468")


def test_api_cashier_code_cannot_change(staff_client):
    CashierFactory(code="C1")

    error = assert_error(
        staff_client.patch(f"{API}C1/", {"code": "C2"}, format="json"), 400, "validation_failed"
    )

    assert "code" in error["details"]
    assert Cashier.objects.get().code == "C1"


def test_api_delete_of_an_unused_cashier_is_204(staff_client):
    CashierFactory(code="C1", stores=[StoreFactory(code="BER")])

    response = staff_client.delete(f"{API}C1/")

    assert response.status_code == 204
    assert not Cashier.objects.exists()
    assert not CashierStore.objects.exists()


def test_api_delete_of_a_used_cashier_deactivates_it_and_answers_200(staff_client):
    store = StoreFactory(code="BER")
    CashierFactory(code="C1", stores=[store])
    sale(store, "C1")

    response = staff_client.delete(f"{API}C1/")

    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert response.json()["stores"] == ["BER"]
    assert Cashier.objects.get().active is False


def test_api_lists_filter_by_store_role_and_active(staff_client):
    ber, ham = StoreFactory(code="BER"), StoreFactory(code="HAM")
    CashierFactory(code="A", role="supervisor", stores=[ber])
    CashierFactory(code="B", stores=[ber, ham])
    CashierFactory(code="C", stores=[ham], active=False)
    CashierFactory(code="D")

    def codes(query: str) -> list[str]:
        response = staff_client.get(f"{API}?{query}")
        assert response.status_code == 200, response.content
        return [row["code"] for row in response.json()["results"]]

    assert codes("") == ["A", "B", "C", "D"]
    assert codes("store=BER") == ["A", "B"]
    assert codes("store=HAM") == ["B", "C"]
    assert codes("role=supervisor") == ["A"]
    assert codes("role=cashier&active=true") == ["B", "D"]
    assert codes("active=false") == ["C"]
    assert codes("store=HAM&active=true") == ["B"]


def test_api_list_query_count_does_not_grow_with_rows(staff_client, django_assert_num_queries):
    stores = [StoreFactory(code=f"S{n}") for n in range(3)]
    for n in range(3):
        CashierFactory(code=f"C{n:02d}", stores=stores)

    with CaptureQueriesContext(connection) as with_three:
        assert staff_client.get(API).status_code == 200
    for n in range(3, 30):
        CashierFactory(code=f"C{n:02d}", stores=stores)

    with django_assert_num_queries(len(with_three)):
        response = staff_client.get(API)
    assert response.json()["count"] == 30
    assert all(row["stores"] == ["S0", "S1", "S2"] for row in response.json()["results"])


def snapshot() -> dict[str, Any]:
    return {
        "cashiers": sorted(Cashier.objects.values_list(), key=repr),
        "memberships": sorted(CashierStore.objects.values_list(), key=repr),
        "history": (Cashier.history.count(), CashierStore.history.count()),
    }


@pytest.mark.parametrize("role", ["finance", "auditor"])
def test_read_only_roles_read_cashiers_and_their_writes_change_nothing(make_client, role):
    client = make_client(role)
    store = StoreFactory(code="BER")
    CashierFactory(code="C1", stores=[store])
    before = snapshot()

    assert client.get(API).status_code == 200
    assert client.get(f"{API}C1/").status_code == 200
    assert client.get(f"{API}?store=BER").json()["count"] == 1
    refused = [
        client.post(API, body(code="C2"), format="json"),
        client.patch(f"{API}C1/", {"name": "X", "pin": "9999"}, format="json"),
        client.put(f"{API}C1/", body(pin="9999"), format="json"),
        client.delete(f"{API}C1/"),
    ]

    for response in refused:
        assert_error(response, 403, "forbidden")
    assert snapshot() == before


# --- demo data ----------------------------------------------------------------------------------


def test_the_demo_has_a_supervisor_and_cashiers_in_every_store_with_the_printed_pins():
    out = StringIO()

    call_command("load_demo", stdout=out)

    printed = out.getvalue()
    for store in Store.objects.all():
        roles = sorted(Cashier.objects.filter(stores=store).values_list("role", flat=True))
        assert roles == ["cashier", "cashier", "supervisor"], store.code
    for code, _name, _role, pin, store_code in CASHIERS:
        (line,) = [line for line in printed.splitlines() if f" {code} " in line]
        assert store_code in line
        assert f"PIN {pin}" in line
        assert services.cashier_check_pin(Cashier.objects.get(code=code), pin)
