"""What the till review found: idempotent completion, card charges the till did not record,
PIN guessing, repeated returns against receipts the node does not hold, price labels,
approved discounts that grew, and vouchers."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from devices.state import device_state_get
from devices.terminals import CardResult, SimulatedTerminal, TerminalOffline, set_terminal
from stores.local import (
    LocalBasket,
    LocalPinLockout,
    LocalPrice,
    LocalProduct,
    LocalReceipt,
    LocalStoreConfig,
    OutboxEvent,
)
from stores.till import errors, services
from stores.till.auth import PIN_LOCKOUT, PIN_MAX_FAILURES, cashier_authenticate
from stores.till.selectors import basket_view
from sync.push.parse import parse_event
from tests.till.conftest import (
    CASHIER,
    CASHIER_PIN,
    MILK_EAN,
    NOON,
    SUPERVISOR,
    SUPERVISOR_PIN,
    Till,
    ean13,
)

API = "/till/api/v1/"
SV = {"supervisor": SUPERVISOR, "supervisor_pin": SUPERVISOR_PIN}


def events(type_: str) -> list[dict[str, Any]]:
    return [json.loads(e.payload) for e in OutboxEvent.objects.filter(type=type_).order_by("seq")]


def head_office_reads(event: dict[str, Any]) -> None:
    incoming = parse_event(0, json.dumps(event).encode())
    assert incoming.error is None, incoming.error


def open_session(till: Till) -> None:
    services.session_open(cashier=till.cashier, opening_float="100.00", now=NOON)


def basket_with(till: Till, *codes: str) -> LocalBasket:
    basket = services.basket_start(cashier=till.cashier)
    for code in codes:
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code=code)
    return basket


def sell(till: Till, *codes: str) -> LocalReceipt:
    basket = basket_with(till, *codes)
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="cash")
    return services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id)


class MeddlingTerminal(SimulatedTerminal):
    """Approves, and while the customer taps their card something else happens at the till
    (``meanwhile``); remembers the merchant references it was asked with."""

    def __init__(self, meanwhile: Callable[[], None] | None = None) -> None:
        super().__init__(mode="approve")
        self.meanwhile = meanwhile
        self.asked: list[str] = []
        self.approved: list[str] = []

    def _ask(self, kind: str, reference: str) -> CardResult:
        self.asked.append(reference)
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        result = self._answer(kind)
        self.approved.append(result.reference)
        return result

    def authorize(self, *, amount: Decimal, currency: str, reference: str) -> CardResult:
        return self._ask("AUTH", reference)

    def refund(self, *, amount: Decimal, currency: str, reference: str) -> CardResult:
        return self._ask("REFUND", reference)


# --- 1. a retried complete answers the same receipt ------------------------------------------


def test_completing_a_completed_basket_answers_its_receipt_and_writes_nothing(
    till: Till, django_capture_on_commit_callbacks
) -> None:
    open_session(till)
    basket = basket_with(till, "WINE")
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="cash")
    with django_capture_on_commit_callbacks(execute=True):
        first = services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id)
    with django_capture_on_commit_callbacks(execute=True) as printing:
        again = services.basket_complete(cashier=till.cashier, basket_id=str(basket.basket_id))
    assert again.pk == first.pk
    assert (again.seq, again.receipt_no, again.receipt_text) == (
        first.seq,
        first.receipt_no,
        first.receipt_text,
    )
    assert printing == []  # not printed twice
    assert OutboxEvent.objects.filter(type="sale").count() == 1
    # a voided basket is still closed
    voided = basket_with(till, "WINE")
    services.basket_void(cashier=till.cashier, basket_id=voided.basket_id)
    with pytest.raises(errors.BasketClosed):
        services.basket_complete(cashier=till.cashier, basket_id=voided.basket_id)


# --- 2. a card charged but not recorded is reversed --------------------------------------------


def test_a_card_charge_refused_under_the_lock_is_reversed_at_the_terminal(till: Till) -> None:
    open_session(till)
    basket = basket_with(till, "WINE")

    def another_scan() -> None:
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="MILK")

    terminal = MeddlingTerminal(meanwhile=another_scan)
    set_terminal(terminal)
    with pytest.raises(errors.Conflict) as refused:
        services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="card")
    assert refused.value.code == "basket_changed"
    assert terminal.voided == terminal.approved  # the charge taken was reversed
    assert len(terminal.voided) == 1
    assert LocalBasket.objects.get(pk=basket.basket_id).tenders == []
    # the retry is a new transaction at the terminal, with a reference of its own
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="card")
    first, second = terminal.asked
    assert first != second
    assert first.startswith(str(basket.basket_id))
    assert second.startswith(str(basket.basket_id))
    assert len(terminal.voided) == 1


def test_a_card_refund_refused_under_the_lock_is_reversed_at_the_terminal(till: Till) -> None:
    open_session(till)
    sale = sell(till, "WINE")

    def same_return_elsewhere() -> None:
        services.return_create(
            cashier=till.cashier, receipt_no=sale.receipt_no, lines=[{"original_line_no": 1}]
        )

    terminal = MeddlingTerminal(meanwhile=same_return_elsewhere)
    set_terminal(terminal)
    with pytest.raises(errors.ReturnRefused):
        services.return_create(
            cashier=till.cashier,
            receipt_no=sale.receipt_no,
            lines=[{"original_line_no": 1}],
            tenders=[{"method": "card", "amount": "6.99"}],
        )
    assert len(terminal.approved) == 1
    assert terminal.voided == terminal.approved
    assert LocalReceipt.objects.filter(type="return").count() == 1  # only the cash one
    assert terminal.asked[0].startswith(sale.receipt_no + "-")


def test_a_reversal_that_fails_is_put_on_the_attention_list(till: Till) -> None:
    open_session(till)
    basket = basket_with(till, "WINE")

    class NoVoid(MeddlingTerminal):
        def void(self, *, amount: Decimal, currency: str, reference: str) -> CardResult:
            raise TerminalOffline("the terminal went away")

    def another_scan() -> None:
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="MILK")

    terminal = NoVoid(meanwhile=another_scan)
    set_terminal(terminal)
    with pytest.raises(errors.Conflict):
        services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="card")
    state = device_state_get("terminal-1")
    assert state is not None
    assert state.state == "error"
    assert terminal.approved[0] in state.detail


# --- 3. PIN guessing is limited per cashier code ---------------------------------------------


def test_five_wrong_pins_lock_the_code_for_five_minutes_even_for_the_right_pin(
    till: Till,
) -> None:
    for _ in range(PIN_MAX_FAILURES):
        with pytest.raises(errors.CashierUnauthenticated):
            cashier_authenticate(code=CASHIER, pin="0000")
    with pytest.raises(errors.PinLocked) as locked:
        cashier_authenticate(code=CASHIER, pin=CASHIER_PIN)  # cached as right: still refused
    assert locked.value.status == 429
    assert 0 < locked.value.details["retry_after_s"] <= PIN_LOCKOUT.total_seconds()
    assert "try again" in locked.value.message
    # another code is not affected
    cashier_authenticate(code=SUPERVISOR, pin=SUPERVISOR_PIN)
    # five minutes later the right PIN works again and clears the count
    LocalPinLockout.objects.filter(code=CASHIER).update(
        locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    assert cashier_authenticate(code=CASHIER, pin=CASHIER_PIN).code == CASHIER
    assert not LocalPinLockout.objects.filter(code=CASHIER).exists()


def test_a_right_pin_resets_the_count_of_wrong_ones(till: Till) -> None:
    for _ in range(2):
        for _ in range(PIN_MAX_FAILURES - 1):
            with pytest.raises(errors.CashierUnauthenticated):
                cashier_authenticate(code=CASHIER, pin="0000")
        cashier_authenticate(code=CASHIER, pin=CASHIER_PIN)
    assert not LocalPinLockout.objects.exists()


def test_supervisor_approval_locks_a_guessed_supervisor_code(till: Till) -> None:
    open_session(till)
    for _ in range(PIN_MAX_FAILURES):
        with pytest.raises(errors.SupervisorRefused):
            services.cash_movement_create(
                cashier=till.cashier,
                kind="pay_out",
                amount="1",
                reason="x",
                supervisor=SUPERVISOR,
                supervisor_pin="9999",
            )
    with pytest.raises(errors.PinLocked):
        services.cash_movement_create(
            cashier=till.cashier, kind="pay_out", amount="1", reason="x", **SV
        )
    with pytest.raises(errors.PinLocked):  # the same code signing in is locked too
        cashier_authenticate(code=SUPERVISOR, pin=SUPERVISOR_PIN)


@pytest.mark.urls("tests.till.urls")
def test_the_api_header_and_the_sign_in_page_answer_pin_locked(till: Till) -> None:
    client = APIClient()
    for _ in range(PIN_MAX_FAILURES):
        wrong = client.get(API + "sessions/current", HTTP_X_CASHIER=CASHIER, HTTP_X_CASHIER_PIN="0")
        assert wrong.status_code == 401
    locked = client.get(
        API + "sessions/current", HTTP_X_CASHIER=CASHIER, HTTP_X_CASHIER_PIN=CASHIER_PIN
    )
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "pin_locked"
    assert int(locked["Retry-After"]) > 0
    page = APIClient().post(
        "/till/signin", {"code": CASHIER, "pin": CASHIER_PIN}, format="multipart"
    )
    assert page.status_code == 429
    assert b"try again" in page.content
    assert int(page["Retry-After"]) > 0


# --- 4. returns against a receipt this node does not hold --------------------------------------


def test_a_foreign_receipt_returns_a_sku_once_unless_a_supervisor_overrides(till: Till) -> None:
    open_session(till)
    foreign = "S01-R2-000042"
    services.return_create(cashier=till.cashier, receipt_no=foreign, lines=[{"code": "WINE"}], **SV)
    with pytest.raises(errors.ReturnRefused) as refused:
        services.return_create(
            cashier=till.cashier, receipt_no=foreign, lines=[{"code": "WINE"}], **SV
        )
    assert refused.value.code == "already_returned"
    assert refused.value.details["skus"] == ["WINE"]
    with pytest.raises(errors.ReturnRefused):  # an override needs a reason
        services.return_create(
            cashier=till.cashier,
            receipt_no=foreign,
            lines=[{"code": "WINE"}],
            repeat_override=True,
            **SV,
        )
    # another product against the same receipt, or the same one against another: fine
    services.return_create(
        cashier=till.cashier, receipt_no=foreign, lines=[{"code": MILK_EAN}], **SV
    )
    services.return_create(
        cashier=till.cashier, receipt_no="S01-R2-000043", lines=[{"code": "WINE"}], **SV
    )
    services.return_create(
        cashier=till.cashier,
        receipt_no=foreign,
        lines=[{"code": "WINE"}],
        repeat_override=True,
        reason="two bottles on the receipt, customer shows it",
        **SV,
    )
    last = events("return")[-1]
    assert last["data"]["reason"] == "two bottles on the receipt, customer shows it"
    head_office_reads(last)
    assert LocalReceipt.objects.filter(type="return", original_receipt_no=foreign).count() == 3


@pytest.mark.urls("tests.till.urls")
def test_the_api_refuses_a_repeated_foreign_return(api: APIClient) -> None:
    api.post(API + "sessions", {"opening_float": "0"}, format="json")
    body = {"receipt_no": "S01-R2-000001", "lines": [{"code": "WINE"}], **SV}
    assert api.post(API + "returns", body, format="json").status_code == 201
    again = api.post(API + "returns", body, format="json")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "already_returned"
    override = {**body, "repeat_override": True, "reason": "receipt shows two"}
    assert api.post(API + "returns", override, format="json").status_code == 201


# --- 5. price labels ---------------------------------------------------------------------------


def _tray(price: str = "4.00") -> LocalProduct:
    tray = LocalProduct.objects.create(
        sku="777", name="Deli tray", unit="each", tax_code="RED", version=1
    )
    LocalPrice.objects.create(
        key="777@2026-01-01",
        sku="777",
        price=Decimal(price),
        valid_from=dt.date(2026, 1, 1),
        version=1,
    )
    return tray


def test_a_price_label_is_not_taken_by_item_number_as_sku_nor_a_weight_registration(
    till: Till,
) -> None:
    open_session(till)
    _tray()
    basket = services.basket_start(cashier=till.cashier)
    with pytest.raises(errors.UnknownCode):  # item 00777 is a SKU, but not a price label
        services.basket_line_add(
            cashier=till.cashier, basket_id=basket.basket_id, code=ean13("260077700001")
        )
    with pytest.raises(errors.UnknownCode):  # apples have weight labels (21), not price ones
        services.basket_line_add(
            cashier=till.cashier, basket_id=basket.basket_id, code=ean13("250004200001")
        )
    assert LocalBasket.objects.get(pk=basket.basket_id).lines == []


def test_a_price_label_below_the_list_price_is_a_supervised_price_override(till: Till) -> None:
    open_session(till)
    _tray().barcodes.create(code=ean13("260077700000"))
    basket = services.basket_start(cashier=till.cashier)
    cheap = ean13("260077700001")  # label 0.01, list 4.00
    with pytest.raises(errors.SupervisorRequired):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code=cheap)
    b = services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code=cheap, **SV)
    [line] = b.lines
    assert (line["unit_price"], line["authorised_by"]) == ("0.01", SUPERVISOR)
    # a store that does not supervise price overrides takes the label as it is
    config = LocalStoreConfig.objects.get()
    config.data["supervisor_operations"] = []
    config.save()
    services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code=cheap)


# --- 6. approved discounts do not grow ---------------------------------------------------------


def test_a_line_discount_keeps_its_approved_amount_when_the_quantity_grows(till: Till) -> None:
    open_session(till)
    basket = basket_with(till, "WINE")
    services.basket_line_override(
        cashier=till.cashier, basket_id=basket.basket_id, line_no=1, discount="1.00",
        reason="dented", **SV,
    )  # fmt: skip
    b = services.basket_line_change(
        cashier=till.cashier, basket_id=basket.basket_id, line_no=1, qty="3"
    )
    assert b.lines[0]["discount"] == "1.00"
    assert basket_view(b)["totals"]["gross"] == "19.97"  # 3 × 6.99 − 1.00
    b = services.basket_line_change(
        cashier=till.cashier, basket_id=basket.basket_id, line_no=1, qty="1"
    )
    assert b.lines[0]["discount"] == "0.33"  # fewer units: scaled down, never up


def test_a_basket_percentage_discount_is_cleared_when_the_basket_grows(till: Till) -> None:
    open_session(till)
    basket = basket_with(till, "WINE")
    services.basket_discount_set(
        cashier=till.cashier, basket_id=basket.basket_id, percent="50", reason="staff", **SV
    )
    b = services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="BREAD")
    assert b.discount is None
    assert basket_view(b)["totals"]["gross"] == "9.48"
    services.basket_discount_set(
        cashier=till.cashier, basket_id=basket.basket_id, percent="50", reason="staff", **SV
    )
    b = services.basket_line_change(
        cashier=till.cashier, basket_id=basket.basket_id, line_no=1, qty="2"
    )
    assert b.discount is None
    # an amount off is what was approved whatever the basket holds: it stays
    services.basket_discount_set(
        cashier=till.cashier, basket_id=basket.basket_id, amount="1.00", reason="staff", **SV
    )
    b = services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="MILK")
    assert b.discount is not None
    assert b.discount["amount"] == "1.00"


# --- 7. vouchers -------------------------------------------------------------------------------


def test_a_voucher_needs_its_reference_and_always_a_supervisor(till: Till) -> None:
    open_session(till)
    config = LocalStoreConfig.objects.get()
    config.data["supervisor_operations"] = []
    config.save()
    basket = basket_with(till, "WINE")
    with pytest.raises(errors.ValidationFailed) as missing:
        services.basket_tender_add(
            cashier=till.cashier, basket_id=basket.basket_id, method="voucher", **SV
        )
    assert missing.value.code == "reference_required"
    with pytest.raises(errors.SupervisorRequired):
        services.basket_tender_add(
            cashier=till.cashier, basket_id=basket.basket_id, method="voucher", reference="G-1"
        )
    b = services.basket_tender_add(
        cashier=till.cashier,
        basket_id=basket.basket_id,
        method="voucher",
        reference="G-1",
        amount="5.00",
        **SV,
    )
    assert (b.tenders[0]["reference"], b.tenders[0]["authorised_by"]) == ("G-1", SUPERVISOR)
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="cash")
    services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id)
    sale = events("sale")[0]
    assert sale["data"]["tenders"][0]["reference"] == "G-1"
    head_office_reads(sale)
