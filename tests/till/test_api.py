"""The till API of till-api.md: every endpoint, its answers and its errors (the sync
protocol's error body), cashier authentication by header and by the page's session."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from devices.terminals import SimulatedTerminal, set_terminal
from stores.local import LocalBasket, NodeState, OutboxEvent
from tests.till.conftest import (
    APPLES_PLU,
    CASHIER,
    CASHIER_PIN,
    MILK_EAN,
    SUPERVISOR,
    SUPERVISOR_PIN,
    Till,
    ean13,
)

pytestmark = pytest.mark.urls("tests.till.urls")
API = "/till/api/v1/"


def error_of(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "details"} <= set(body["error"])
    assert body["error"]["message"]
    return body["error"]["code"]


def post(api: APIClient, path: str, data: Any = None, status: int | None = None) -> Any:
    response = api.post(API + path, data if data is not None else {}, format="json")
    if status is not None:
        assert response.status_code == status, response.content
    return response


@pytest.fixture
def session(api: APIClient) -> str:
    return post(api, "sessions", {"opening_float": "100.00"}, 201).json()["session_id"]


@pytest.fixture
def basket(api: APIClient, session: str) -> str:
    return post(api, "baskets", None, 201).json()["basket_id"]


def test_without_cashier_credentials_every_till_endpoint_is_401(till: Till) -> None:
    client = APIClient()
    for method, path in [
        ("post", "sessions"),
        ("post", "baskets"),
        ("post", "returns"),
        ("post", "cash-movements"),
        ("post", "stock-counts"),
    ]:
        response = getattr(client, method)(API + path, {}, format="json")
        assert response.status_code == 401
        assert error_of(response) == "unauthenticated"
    wrong = APIClient()
    wrong.credentials(HTTP_X_CASHIER=CASHIER, HTTP_X_CASHIER_PIN="9999")
    response = wrong.post(API + "baskets", {}, format="json")
    assert response.status_code == 401
    assert error_of(response) == "unauthenticated"


def test_a_full_sale_through_the_api(api: APIClient, basket: str) -> None:
    body = post(api, f"baskets/{basket}/lines", {"code": MILK_EAN}, 201).json()
    body = post(api, f"baskets/{basket}/lines", {"code": "WINE", "qty": "2"}, 201).json()
    assert [ln["line_total"] for ln in body["lines"]] == ["1.19", "13.98"]
    assert body["totals"] == {"net": "12.86", "tax": "2.31", "gross": "15.17"}
    body = post(api, f"baskets/{basket}/tenders", {"method": "cash", "amount": "20.00"}, 201).json()
    assert (body["due"], body["change"]) == ("0.00", "4.83")

    done = post(api, f"baskets/{basket}/complete", None, 201).json()

    assert {"event_id", "seq", "receipt_no", "totals", "receipt_text"} <= set(done)
    assert done["receipt_no"] == f"S01-R1-{done['seq']:06d}"
    assert done["totals"]["gross"] == "15.17"
    event = json.loads(OutboxEvent.objects.get(type="sale").payload)
    assert event["event_id"] == done["event_id"]
    # a retry (the answer was lost) answers the same sale again, and writes nothing
    again = post(api, f"baskets/{basket}/complete", None, 201).json()
    assert again == done
    assert OutboxEvent.objects.filter(type="sale").count() == 1


def test_line_change_remove_and_errors(api: APIClient, basket: str) -> None:
    post(api, f"baskets/{basket}/lines", {"code": "WINE"}, 201)
    response = api.patch(API + f"baskets/{basket}/lines/1", {"qty": "3"}, format="json")
    assert response.status_code == 200
    assert response.json()["lines"][0]["qty"] == "3"
    response = api.patch(API + f"baskets/{basket}/lines/1", {"qty": 3}, format="json")
    assert response.status_code == 400
    assert error_of(response) == "validation_failed"
    response = api.patch(API + f"baskets/{basket}/lines/9", {"qty": "1"}, format="json")
    assert response.status_code == 404
    assert error_of(response) == "line_not_found"
    response = api.delete(API + f"baskets/{basket}/lines/1", {}, format="json")
    assert response.status_code == 200
    assert response.json()["lines"] == []
    assert error_of(post(api, f"baskets/{basket}/lines", {"code": "nope"}, 404)) == "unknown_code"
    assert error_of(post(api, f"baskets/{basket}/lines", {"code": "APPLES"}, 400)) == (
        "weight_required"
    )
    assert error_of(
        post(api, f"baskets/{basket}/lines", {"code": "WINE", "colour": "red"}, 400)
    ) == ("unknown_field")
    assert error_of(post(api, "baskets/not-a-uuid/lines", {"code": "WINE"}, 404)) == (
        "basket_not_found"
    )


def test_weighed_item_by_plu_barcode_with_weight(api: APIClient, basket: str) -> None:
    body = post(api, f"baskets/{basket}/lines", {"code": APPLES_PLU, "qty": "0.750"}, 201).json()
    assert (body["lines"][0]["qty"], body["lines"][0]["line_total"]) == ("0.750", "2.24")
    body = post(api, f"baskets/{basket}/lines", {"code": ean13("210004200500")}, 201).json()
    assert (body["lines"][1]["qty"], body["lines"][1]["line_total"]) == ("0.500", "1.50")


def test_override_needs_supervisor_then_applies(api: APIClient, basket: str) -> None:
    post(api, f"baskets/{basket}/lines", {"code": "WINE"}, 201)
    path = f"baskets/{basket}/lines/1/override"
    assert error_of(post(api, path, {"unit_price": "4.00", "reason": "dent"}, 403)) == (
        "supervisor_required"
    )
    assert error_of(
        post(
            api,
            path,
            {
                "unit_price": "4.00",
                "reason": "dent",
                "supervisor": SUPERVISOR,
                "supervisor_pin": "1",
            },
            403,
        )
    ) == ("supervisor_refused")
    body = post(
        api,
        path,
        {
            "unit_price": "4.00",
            "reason": "dent",
            "supervisor": SUPERVISOR,
            "supervisor_pin": SUPERVISOR_PIN,
        },
        200,
    ).json()
    assert body["lines"][0]["unit_price"] == "4.00"
    assert body["lines"][0]["price_override_reason"] == "dent"
    body = post(
        api,
        f"baskets/{basket}/discount",
        {
            "amount": "0.50",
            "reason": "coupon",
            "supervisor": SUPERVISOR,
            "supervisor_pin": SUPERVISOR_PIN,
        },
        200,
    ).json()
    assert body["totals"]["gross"] == "3.50"


def test_card_declined_and_offline_limit_are_402(api: APIClient, basket: str) -> None:
    for _ in range(9):
        post(api, f"baskets/{basket}/lines", {"code": "WINE"}, 201)  # 62.91
    set_terminal(SimulatedTerminal(mode="decline"))
    response = post(api, f"baskets/{basket}/tenders", {"method": "card"}, 402)
    assert error_of(response) == "card_declined"
    set_terminal(SimulatedTerminal(mode="offline"))
    response = post(api, f"baskets/{basket}/tenders", {"method": "card"}, 402)
    assert error_of(response) == "card_offline_limit"
    assert response.json()["error"]["details"] == {"offline_card_limit": "50.00"}
    body = post(api, f"baskets/{basket}/tenders", {"method": "card", "amount": "40.00"}, 201).json()
    assert body["tenders"][0]["offline_authorized"] is True
    status = api.get(API + "status").json()
    assert "card_offline" in [a["kind"] for a in status["attention"]]


def test_void_a_basket_is_204(api: APIClient, basket: str) -> None:
    post(api, f"baskets/{basket}/lines", {"code": "WINE"}, 201)
    response = api.delete(API + f"baskets/{basket}", {"reason": "customer left"}, format="json")
    assert response.status_code == 204
    assert LocalBasket.objects.get().status == "voided"
    assert api.get(API + f"baskets/{basket}").json()["status"] == "voided"


def test_basket_without_a_session_is_409(api: APIClient) -> None:
    assert error_of(post(api, "baskets", None, 409)) == "no_open_session"


def test_return_by_receipt_and_without(api: APIClient, basket: str) -> None:
    post(api, f"baskets/{basket}/lines", {"code": "WINE", "qty": "2"}, 201)
    post(api, f"baskets/{basket}/tenders", {"method": "cash"}, 201)
    sale = post(api, f"baskets/{basket}/complete", None, 201).json()
    receipt = api.get(API + f"receipts/{sale['receipt_no']}").json()
    assert receipt["lines"][0]["qty"] == "2"

    done = post(
        api,
        "returns",
        {"receipt_no": sale["receipt_no"], "lines": [{"original_line_no": 1, "qty": "1"}]},
        201,
    ).json()
    assert done["totals"]["gross"] == "6.99"
    assert done["type"] == "return"
    over = post(
        api,
        "returns",
        {"receipt_no": sale["receipt_no"], "lines": [{"original_line_no": 1, "qty": "2"}]},
        400,
    )
    assert error_of(over) == "return_refused"
    assert error_of(post(api, "returns", {"lines": [{"code": "WINE"}]}, 403)) == (
        "supervisor_required"
    )
    post(
        api,
        "returns",
        {"lines": [{"code": "WINE"}], "supervisor": SUPERVISOR, "supervisor_pin": SUPERVISOR_PIN},
        201,
    )
    assert error_of(post(api, "returns", {"lines": []}, 400)) == "validation_failed"
    missing = api.get(API + "receipts/S01-R9-000001")
    assert missing.status_code == 404
    assert error_of(missing) == "receipt_not_found"


def test_cash_movements_stock_and_reprint(api: APIClient, session: str) -> None:
    body = post(
        api, "cash-movements", {"kind": "pay_in", "amount": "10.00", "reason": "float"}, 201
    ).json()
    assert body["type"] == "cash_movement"
    assert body["seq"] == 2
    assert (
        error_of(
            post(api, "cash-movements", {"kind": "pay_out", "amount": "1.00", "reason": "x"}, 403)
        )
        == "supervisor_required"
    )
    assert error_of(post(api, "cash-movements", {"kind": "steal", "amount": "1.00"}, 400)) == (
        "validation_failed"
    )
    body = post(
        api,
        "stock-adjustments",
        {"lines": [{"code": MILK_EAN, "qty_delta": "-1", "reason": "damage"}]},
        201,
    ).json()
    assert body["type"] == "stock_adjustment"
    body = post(api, "stock-counts", {"lines": [{"code": "WINE", "counted_qty": "12"}]}, 201).json()
    assert body["type"] == "stock_count"
    assert error_of(post(api, "receipts/S01-R1-000999/reprint", {}, 404)) == "receipt_not_found"


def test_session_close_answers_the_z_report(api: APIClient, session: str) -> None:
    current = api.get(API + "sessions/current").json()
    assert current["session_id"] == session
    body = post(api, f"sessions/{session}/close", {"counted_cash": "101.00"}, 200).json()
    assert body["z_report"]["over_short"] == "1.00"
    assert body["z_report"]["expected_cash"] == "100.00"
    assert error_of(post(api, f"sessions/{session}/close", {"counted_cash": "1"}, 409)) == (
        "session_closed"
    )
    assert error_of(post(api, "sessions/nope/close", {"counted_cash": "1"}, 404)) == (
        "session_not_found"
    )
    assert api.get(API + "sessions/current").status_code == 404


def test_status_reports_outbox_link_devices_and_attention(api: APIClient, session: str) -> None:
    NodeState.objects.update(online=False, last_error="head office cannot be reached")
    OutboxEvent.objects.filter(seq=1).update(status="rejected", code="invalid_event", message="bad")
    status = APIClient().get(API + "status").json()  # no sign-in needed
    assert status["online"] is False
    assert status["outbox_depth"] == 1
    assert status["oldest_unsent_age_s"] is not None
    assert status["last_sync_at"] is None
    assert status["high_water"] == {"R1": 0}
    assert status["devices"][0] == {
        "device": "printer-1",
        "kind": "printer",
        "state": "ok",
        "detail": "",
    }
    kinds = [a["kind"] for a in status["attention"]]
    assert "rejected" in kinds
    assert "price_list_old" in kinds
    rejected = next(a for a in status["attention"] if a["kind"] == "rejected")
    assert rejected["event_id"] == str(OutboxEvent.objects.get(seq=1).event_id)


def test_the_page_session_authenticates_api_calls_with_csrf(till: Till) -> None:
    client = APIClient(enforce_csrf_checks=True)
    page = client.get("/till/")
    assert page.status_code == 200
    assert b"Sign in" in page.content
    token = client.cookies["csrftoken"].value
    bad = client.post(
        "/till/signin",
        {"code": CASHIER, "pin": "0", "csrfmiddlewaretoken": token},
        format="multipart",
    )
    assert bad.status_code == 401
    ok = client.post(
        "/till/signin",
        {"code": CASHIER, "pin": CASHIER_PIN, "csrfmiddlewaretoken": token},
        format="multipart",
    )
    assert ok.status_code == 302
    assert b"Open a session" in client.get("/till/").content
    without_token = client.post(API + "sessions", {"opening_float": "0"}, format="json")
    assert without_token.status_code == 403
    token = client.cookies["csrftoken"].value
    opened = client.post(
        API + "sessions", {"opening_float": "0"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert opened.status_code == 201


def test_the_node_schema_documents_the_till_api(till: Till) -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/till/api/v1/sessions",
        "/till/api/v1/sessions/{session_id}/close",
        "/till/api/v1/baskets",
        "/till/api/v1/baskets/{basket_id}/lines",
        "/till/api/v1/baskets/{basket_id}/lines/{line_no}",
        "/till/api/v1/baskets/{basket_id}/lines/{line_no}/override",
        "/till/api/v1/baskets/{basket_id}/tenders",
        "/till/api/v1/baskets/{basket_id}/complete",
        "/till/api/v1/baskets/{basket_id}",
        "/till/api/v1/returns",
        "/till/api/v1/cash-movements",
        "/till/api/v1/stock-adjustments",
        "/till/api/v1/stock-counts",
        "/till/api/v1/receipts/{receipt_no}/reprint",
        "/till/api/v1/status",
    ):
        assert path in paths, path
    assert "requestBody" in paths["/till/api/v1/baskets/{basket_id}/lines"]["post"]


@pytest.mark.urls("erp.urls")
def test_head_office_does_not_route_the_till(till: Till) -> None:
    response = APIClient().get(API + "status")
    assert response.status_code == 404
    assert error_of(response) == "not_found"
