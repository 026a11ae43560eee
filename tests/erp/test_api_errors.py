"""Every error the HQ API gives has the protocol's body, whatever went wrong and wherever.

``{"error": {"code": "<stable_snake_case>", "message": "<sentence>", "details": ...}}`` with
``Content-Type: application/json``; and no request, however malformed, gets a ``500``.
"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from inventory.models import Product, TaxRate
from tests.factories import PriceListFactory, ProductFactory, TaxRateFactory

pytestmark = pytest.mark.django_db


def assert_error_body(response, status: int, code: str) -> dict:
    """The response is ``status`` with exactly the error body, and returns ``error``."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].split(";")[0].strip() == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code, error
    message = error["message"]
    assert isinstance(message, str)
    assert message.strip()
    assert " " in message.strip(), f"not a sentence: {message!r}"
    return error


def post_raw(client: APIClient, path: str, body: bytes, content_type: str = "application/json"):
    return client.generic("POST", path, body, content_type=content_type)


# --- 400 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"sku": "A1",',
        b"\xff\xfe{}",
        b'{"sku": "\xc3\x28"}',
        b'{"cost": NaN}',
        b'{"cost": Infinity}',
        b'{"cost": -Infinity}',
        b"[" * 100_000,
    ],
    ids=[
        "truncated",
        "bad-utf8-bom",
        "bad-utf8-in-string",
        "nan",
        "infinity",
        "minus-infinity",
        "deeply-nested",
    ],
)
def test_body_that_is_not_json_is_malformed_json(staff_client, body):
    response = post_raw(staff_client, "/api/v1/products/", body)

    assert_error_body(response, 400, "malformed_json")
    assert not Product.objects.exists()


def test_empty_body_is_a_request_with_no_fields(staff_client):
    response = post_raw(staff_client, "/api/v1/products/", b"")

    error = assert_error_body(response, 400, "validation_failed")
    assert {"sku", "name", "tax_code"} <= set(error["details"])


def test_field_errors_are_validation_failed_with_details_per_field(staff_client):
    response = staff_client.post("/api/v1/products/", {"sku": "bad sku!", "cost": "-1"})

    error = assert_error_body(response, 400, "validation_failed")
    assert {"sku", "name", "tax_code", "cost"} <= set(error["details"])
    assert all(isinstance(messages, list) for messages in error["details"].values())
    assert not Product.objects.exists()


def test_body_that_is_not_an_object_is_validation_failed(staff_client):
    response = staff_client.post("/api/v1/products/", [1, 2, 3])

    error = assert_error_body(response, 400, "validation_failed")
    assert "non_field_errors" in error["details"]


def test_unknown_field_is_refused_by_name(staff_client):
    TaxRateFactory(code="STD")

    response = staff_client.post(
        "/api/v1/products/", {"sku": "A1", "name": "A", "tax_code": "STD", "colour": "red"}
    )

    error = assert_error_body(response, 400, "unknown_field")
    assert error["details"] == {"colour": ["Unknown field."]}
    assert "colour" in error["message"]
    assert not Product.objects.exists()


# --- 401, 403 -----------------------------------------------------------------------------------


def test_request_without_credentials_is_unauthenticated(db):
    response = APIClient().get("/api/v1/products/")

    assert_error_body(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Token")


def test_request_with_a_bad_token_is_unauthenticated(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get("/api/v1/products/")

    assert_error_body(response, 401, "unauthenticated")


def test_auditor_writing_is_forbidden(auditor_client):
    TaxRateFactory(code="STD")

    response = auditor_client.post(
        "/api/v1/products/", {"sku": "A1", "name": "A", "tax_code": "STD"}
    )

    assert_error_body(response, 403, "forbidden")
    assert not Product.objects.exists()


def test_finance_cannot_change_master_data(finance_client):
    TaxRateFactory(code="STD")

    response = finance_client.patch("/api/v1/tax-rates/STD/", {"name": "Changed"})

    assert_error_body(response, 403, "forbidden")
    assert TaxRate.objects.get(code="STD").name != "Changed"


# --- 404, 405, 406 ------------------------------------------------------------------------------


def test_unknown_key_is_not_found(staff_client):
    assert_error_body(staff_client.get("/api/v1/products/NOPE/"), 404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here/", "/api/v1/products/A1/extra/path/", "/api/v2/products/"]
)
def test_unknown_path_under_the_api_is_not_found(staff_client, path):
    error = assert_error_body(staff_client.get(path), 404, "not_found")
    assert path in error["message"]


def test_method_the_resource_does_not_have_is_method_not_allowed(staff_client):
    response = staff_client.put("/api/v1/products/", {})

    assert_error_body(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_get_on_a_bulk_endpoint_is_method_not_allowed(staff_client):
    assert_error_body(staff_client.get("/api/v1/products/bulk"), 405, "method_not_allowed")


def test_unrenderable_accept_is_not_acceptable(staff_client):
    response = staff_client.get("/api/v1/products/", HTTP_ACCEPT="application/xml")

    assert_error_body(response, 406, "not_acceptable")


# --- 409, 413, 415 ------------------------------------------------------------------------------


def test_deleting_a_tax_rate_used_by_a_product_is_in_use(staff_client):
    ProductFactory(tax_rate=TaxRateFactory(code="STD"))

    response = staff_client.delete("/api/v1/tax-rates/STD/")

    assert_error_body(response, 409, "in_use")
    assert TaxRate.objects.filter(code="STD").exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_body_over_the_upload_limit_is_request_too_large(staff_client):
    TaxRateFactory(code="STD")
    body = json.dumps({"sku": "A1", "name": "x" * 2000, "tax_code": "STD"}).encode()

    response = post_raw(staff_client, "/api/v1/products/", body)

    assert_error_body(response, 413, "request_too_large")
    assert not Product.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"sku=A1&name=A&tax_code=STD"),
        ("multipart/form-data; boundary=xyz", b"--xyz--\r\n"),
        ("text/plain", b'{"sku": "A1"}'),
    ],
    ids=["form", "multipart", "text"],
)
def test_body_in_another_media_type_is_unsupported(staff_client, content_type, body):
    TaxRateFactory(code="STD")

    response = post_raw(staff_client, "/api/v1/products/", body, content_type)

    assert_error_body(response, 415, "unsupported_media_type")
    assert not Product.objects.exists()


# --- 429 ----------------------------------------------------------------------------------------


@pytest.fixture
def user_rate_two_per_minute(monkeypatch):
    """DRF copies the rates onto the throttle class at import; override them there."""
    monkeypatch.setattr(
        UserRateThrottle, "THROTTLE_RATES", {**UserRateThrottle.THROTTLE_RATES, "user": "2/minute"}
    )


@pytest.mark.usefixtures("user_rate_two_per_minute")
def test_requests_over_the_user_rate_are_throttled_with_retry_after(staff_client):
    assert staff_client.get("/api/v1/tax-rates/").status_code == 200
    assert staff_client.get("/api/v1/tax-rates/").status_code == 200

    response = staff_client.get("/api/v1/tax-rates/")

    assert_error_body(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.usefixtures("user_rate_two_per_minute")
def test_throttling_counts_each_user_separately(make_client):
    first, second = make_client("staff"), make_client("staff")
    for _ in range(2):
        first.get("/api/v1/tax-rates/")

    assert first.get("/api/v1/tax-rates/").status_code == 429
    assert second.get("/api/v1/tax-rates/").status_code == 200


# --- never a 500 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tax-rates/ST%00D/",
        "/api/v1/stores/S%00/registers/",
        "/api/v1/stores/S1/registers/R%00/",
        "/api/v1/price-lists/D%00/prices/",
        "/api/v1/products/?sku=A%00",
    ],
)
def test_nul_character_in_a_key_is_a_client_error(staff_client, path):
    # PostgreSQL text cannot hold NUL, so the lookup fails in the driver (400 there); SQLite
    # looks it up and finds nothing (404). Either is the client's error, never a 500.
    response = staff_client.get(path)

    expected = {400: "validation_failed", 404: "not_found"}
    assert response.status_code in expected, response.content
    assert_error_body(response, response.status_code, expected[response.status_code])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/products/", {"sku": "A1", "name": "A", "tax_code": "ST\x00D"}),
        (
            "/api/v1/stores/",
            {
                "code": "S1",
                "name": "S",
                "timezone": "UTC",
                "currency": "E\x00R",
                "price_list": "DE",
            },
        ),
    ],
    ids=["product-tax-code", "store-currency"],
)
def test_nul_character_in_a_reference_is_validation_failed(staff_client, path, body):
    TaxRateFactory(code="STD")
    PriceListFactory(code="DE")

    response = staff_client.post(path, body)

    assert_error_body(response, 400, "validation_failed")
    assert not Product.objects.exists()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

_SKUS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str)


def _field(valid: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(valid, json_values)


def _key(*known: str) -> st.SearchStrategy:
    """A reference to another record by code: known, unknown, nasty, or any text at all."""
    nasty = ["", " ", "\x00", "A\x00", "%", "_", "é" * 300]
    return _field(st.one_of(st.sampled_from([*known, *nasty]), st.text(max_size=8)))


product_bodies = st.fixed_dictionaries(
    {},
    optional={
        "sku": _field(_SKUS),
        "name": _field(st.text(max_size=250)),
        "unit": _field(st.sampled_from(["each", "kg", "litre"])),
        "weighed": _field(st.booleans()),
        "tax_code": _key("STD", "NOPE"),
        "active": _field(st.booleans()),
        "cost": _field(_DECIMALS),
        "barcodes": _field(st.lists(st.from_regex(r"\A[0-9]{8,13}\Z"), max_size=3)),
        "created_at": json_values,
    },
)
store_bodies = st.fixed_dictionaries(
    {},
    optional={
        "code": _field(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")),
        "name": _field(st.text(max_size=130)),
        "timezone": _field(
            st.one_of(st.sampled_from(["Europe/Berlin", "UTC", "Mars/Olympus", ""]), st.text())
        ),
        "currency": _key("EUR", "CHF", "XXX"),
        "price_list": _key("DE", "NOPE"),
        "stock_location": _key("WH1", "NOPE"),
        "active": _field(st.booleans()),
        "registers": json_values,
    },
)


def _assert_no_server_error(response) -> None:
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message", "details"}
        assert body["error"]["message"]


_hypothesis = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_hypothesis
@given(body=st.one_of(product_bodies, json_values))
def test_random_product_bodies_never_cause_a_server_error(staff_client, body):
    TaxRateFactory(code="STD")

    response = staff_client.post("/api/v1/products/", body)

    _assert_no_server_error(response)


@_hypothesis
@given(body=st.one_of(store_bodies, json_values))
def test_random_store_bodies_never_cause_a_server_error(staff_client, body):
    PriceListFactory(code="DE")

    response = staff_client.post("/api/v1/stores/", body)

    _assert_no_server_error(response)


@_hypothesis
@given(body=st.one_of(product_bodies, json_values))
def test_random_product_patches_never_cause_a_server_error(staff_client, body):
    if not Product.objects.filter(sku="A1").exists():
        ProductFactory(sku="A1", tax_rate=TaxRateFactory(code="STD"))

    response = staff_client.patch("/api/v1/products/A1/", body)

    _assert_no_server_error(response)


@_hypothesis
@given(raw=st.binary(max_size=200))
def test_random_bytes_never_cause_a_server_error(staff_client, raw):
    response = post_raw(staff_client, "/api/v1/products/", raw)

    _assert_no_server_error(response)
