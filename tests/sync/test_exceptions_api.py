"""Reconciliation exceptions through the HQ API: listed and filtered by store, business date,
type and status; acknowledged and resolved with a note, by the roles allowed to."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from sync.exception_queue import Problem, exceptions_raise
from sync.models import ReconciliationException
from tests.factories import RegisterFactory, StoreFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/exceptions/"
Type = ReconciliationException.Type
Status = ReconciliationException.Status
DAY = dt.date(2026, 11, 23)
_keys = itertools.count()


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"].strip()
    return body["error"]


def raise_problem(
    store, *, type: str = Type.PRICE_DIFFERS, day: dt.date | None = DAY, register=None
) -> ReconciliationException:
    key = f"test:{type}:{next(_keys)}"
    exceptions_raise(
        problems=[
            Problem(
                type=type,
                store_id=store.pk,
                dedup_key=key,
                message=f"{type} at {store.code}",
                register_id=register.pk if register else None,
                business_date=day,
                details={"sku": "SKU00001"},
            )
        ],
        now=timezone.now(),
    )
    return ReconciliationException.objects.get(dedup_key=key)


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def stores():
    return StoreFactory(code="S01"), StoreFactory(code="S02")


# --- reading ------------------------------------------------------------------------------------


def test_list_shows_an_exception_by_business_keys(staff_client, stores):
    # given
    register = RegisterFactory(store=stores[0], code="R1")
    exception = raise_problem(stores[0], register=register)

    # when
    response = staff_client.get(URL)

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row == {
        "id": exception.pk,
        "type": "price_differs",
        "severity": "warning",
        "status": "open",
        "store": "S01",
        "register": "R1",
        "business_date": "2026-11-23",
        "event_id": None,
        "message": "price_differs at S01",
        "details": {"sku": "SKU00001"},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "resolved_at": None,
        "resolved_by": None,
        "resolution_note": "",
    }
    assert staff_client.get(f"{URL}{exception.pk}/").json() == row


def test_list_filters_by_store_business_date_type_and_status(auditor_client, stores):
    # given
    s01, s02 = stores
    price = raise_problem(s01, type=Type.PRICE_DIFFERS)
    gap = raise_problem(s01, type=Type.SEQ_GAP, day=None)
    other_day = raise_problem(s01, day=DAY + dt.timedelta(days=1))
    elsewhere = raise_problem(s02)
    ReconciliationException.objects.filter(pk=other_day.pk).update(status=Status.RESOLVED)

    # then
    assert ids(auditor_client.get(URL)) == {price.pk, gap.pk, other_day.pk, elsewhere.pk}
    assert ids(auditor_client.get(URL, {"store": "S01"})) == {price.pk, gap.pk, other_day.pk}
    assert ids(auditor_client.get(URL, {"store": "S02"})) == {elsewhere.pk}
    assert ids(auditor_client.get(URL, {"store": "S99"})) == set()
    assert ids(auditor_client.get(URL, {"store": "S01", "business_date": "2026-11-23"})) == {
        price.pk
    }
    assert ids(auditor_client.get(URL, {"type": "seq_gap"})) == {gap.pk}
    assert ids(auditor_client.get(URL, {"status": "resolved"})) == {other_day.pk}
    assert ids(auditor_client.get(URL, {"status": "open", "store": "S01"})) == {price.pk, gap.pk}
    assert_error(auditor_client.get(URL, {"type": "nonsense"}), 400, "validation_failed")
    assert_error(auditor_client.get(URL, {"business_date": "23.11.2026"}), 400, "validation_failed")


def query_count(client: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries)


def test_list_takes_the_same_number_of_queries_for_3_or_30_exceptions(staff_client, stores):
    registers = [RegisterFactory(store=stores[0], code=f"R{n}") for n in range(3)]
    for n in range(3):
        raise_problem(stores[0], register=registers[n % 3])
    few = query_count(staff_client, URL)
    for n in range(27):
        raise_problem(stores[n % 2], register=registers[n % 3] if n % 2 == 0 else None)

    assert query_count(staff_client, URL) == few
    assert staff_client.get(URL).json()["count"] == 30


@pytest.mark.parametrize("role", ["staff", "finance", "auditor"])
def test_every_role_may_read_exceptions(make_client, stores, role):
    raise_problem(stores[0])

    assert make_client(role).get(URL).status_code == 200


def test_reading_needs_a_role_and_a_sign_in(make_client, stores):
    raise_problem(stores[0])

    assert_error(make_client().get(URL), 403, "forbidden")
    assert_error(APIClient().get(URL), 401, "unauthenticated")


# --- resolving ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "finance"])
def test_resolving_with_a_note_closes_the_exception_and_records_who(make_client, stores, role):
    # given
    client = make_client(role)
    exception = raise_problem(stores[0])

    # when
    response = client.post(
        f"{URL}{exception.pk}/resolve", {"note": "Price list corrected."}, format="json"
    )

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "resolved"
    assert body["resolution_note"] == "Price list corrected."
    assert body["resolved_by"] == client.user.username
    assert body["resolved_at"] is not None
    exception.refresh_from_db()
    assert exception.status == Status.RESOLVED
    assert exception.resolved_by == client.user
    latest = exception.history.latest()
    assert latest.history_user == client.user
    assert latest.history_change_reason == "resolved"
    assert latest.status == "resolved"


@pytest.mark.parametrize(
    "body", [{}, {"note": ""}, {"note": "   "}], ids=["missing", "empty", "blank"]
)
def test_resolving_without_a_note_is_refused_and_changes_nothing(staff_client, stores, body):
    exception = raise_problem(stores[0])

    response = staff_client.post(f"{URL}{exception.pk}/resolve", body, format="json")

    error = assert_error(response, 400, "validation_failed")
    assert "note" in error["details"]
    exception.refresh_from_db()
    assert exception.status == Status.OPEN
    assert exception.history.count() == 1


def test_resolving_refuses_unknown_fields(staff_client, stores):
    exception = raise_problem(stores[0])

    response = staff_client.post(
        f"{URL}{exception.pk}/resolve", {"note": "ok", "status": "open"}, format="json"
    )

    assert_error(response, 400, "unknown_field")
    exception.refresh_from_db()
    assert exception.status == Status.OPEN


def test_auditor_may_not_resolve_or_acknowledge(auditor_client, stores):
    exception = raise_problem(stores[0])

    response = auditor_client.post(f"{URL}{exception.pk}/resolve", {"note": "x"}, format="json")
    assert_error(response, 403, "forbidden")
    assert_error(auditor_client.post(f"{URL}{exception.pk}/acknowledge"), 403, "forbidden")
    exception.refresh_from_db()
    assert exception.status == Status.OPEN


def test_resolving_twice_is_a_conflict(finance_client, stores):
    exception = raise_problem(stores[0])
    url = f"{URL}{exception.pk}/resolve"
    assert finance_client.post(url, {"note": "done"}, format="json").status_code == 200

    assert_error(finance_client.post(url, {"note": "again"}, format="json"), 409, "conflict")
    exception.refresh_from_db()
    assert exception.resolution_note == "done"


def test_resolving_an_unknown_exception_is_not_found(staff_client, stores):
    response = staff_client.post(f"{URL}999999/resolve", {"note": "x"}, format="json")

    assert_error(response, 404, "not_found")


def test_acknowledging_marks_it_and_keeps_it_open_for_resolution(staff_client, stores):
    exception = raise_problem(stores[0])

    response = staff_client.post(f"{URL}{exception.pk}/acknowledge")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "acknowledged"
    assert exception.history.latest().history_user == staff_client.user
    assert ids(staff_client.get(URL, {"status": "acknowledged"})) == {exception.pk}
    resolved = staff_client.post(f"{URL}{exception.pk}/resolve", {"note": "ok"}, format="json")
    assert resolved.json()["status"] == "resolved"
    assert_error(staff_client.post(f"{URL}{exception.pk}/acknowledge"), 409, "conflict")


def test_exceptions_are_read_only_otherwise(make_client, stores):
    exception = raise_problem(stores[0])
    client = make_client(superuser=True)

    assert_error(client.post(URL, {"type": "seq_gap"}, format="json"), 405, "method_not_allowed")
    assert_error(
        client.patch(f"{URL}{exception.pk}/", {"status": "resolved"}, format="json"),
        405,
        "method_not_allowed",
    )
