"""The till's services: every operation, its rounding, and the events it leaves in the outbox
(each one checked by head office's own parser, as a push would be)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError

from devices.state import device_state_get
from devices.terminals import SimulatedTerminal, set_terminal
from stores.local import (
    LocalBasket,
    LocalPrice,
    LocalProduct,
    LocalReceipt,
    LocalStoreConfig,
    NodeState,
    OutboxEvent,
)
from stores.till import errors, services
from stores.till.pricing import _allocate, embedded_price_line, store_rules
from stores.till.selectors import basket_view
from sync.push.parse import parse_event
from tests.till.conftest import (
    APPLES_PLU,
    BREAD_EAN,
    MILK_EAN,
    NOON,
    SUPERVISOR,
    SUPERVISOR_PIN,
    Till,
    ean13,
)


def events(type_: str | None = None) -> list[dict[str, Any]]:
    rows = OutboxEvent.objects.order_by("seq")
    if type_:
        rows = rows.filter(type=type_)
    return [json.loads(row.payload) for row in rows]


def assert_head_office_reads(event: dict[str, Any]) -> None:
    """The event passes head office's parser: no rejection, as pushed."""
    incoming = parse_event(0, json.dumps(event).encode())
    assert incoming.error is None, incoming.error


def open_session(till: Till, opening: str = "100.00") -> str:
    return services.session_open(cashier=till.cashier, opening_float=opening, now=NOON).session_id


def sell(till: Till, *codes: str | tuple[str, str], pay: str | None = None) -> LocalReceipt:
    basket = services.basket_start(cashier=till.cashier, now=NOON)
    for code in codes:
        code, qty = code if isinstance(code, tuple) else (code, None)
        services.basket_line_add(
            cashier=till.cashier, basket_id=basket.basket_id, code=code, qty=qty, now=NOON
        )
    services.basket_tender_add(
        cashier=till.cashier, basket_id=basket.basket_id, method="cash", amount=pay, now=NOON
    )
    return services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id, now=NOON)


# --- sessions -------------------------------------------------------------------------------


def test_opening_a_session_appends_session_open_with_the_first_seq(till: Till) -> None:
    session_id = open_session(till, "150.00")

    [event] = events()
    assert event["type"] == "session_open"
    assert event["seq"] == 1
    assert event["data"] == {"session_id": session_id, "cashier": "C1", "opening_float": "150.00"}
    assert event["business_date"] == "2026-11-23"
    assert event["occurred_at"].endswith("+01:00")  # the store's local offset
    assert_head_office_reads(event)


def test_a_second_open_session_is_refused_and_changes_nothing(till: Till) -> None:
    open_session(till)
    with pytest.raises(errors.SessionAlreadyOpen):
        open_session(till)
    assert OutboxEvent.objects.count() == 1


def test_opening_float_with_too_many_decimals_is_refused(till: Till) -> None:
    with pytest.raises(errors.InvalidAmount):
        services.session_open(cashier=till.cashier, opening_float="10.001")
    with pytest.raises(errors.InvalidAmount):
        services.session_open(cashier=till.cashier, opening_float="-1")
    assert OutboxEvent.objects.count() == 0


def test_business_date_is_the_store_local_date_not_utc(till: Till) -> None:
    # 23:30 UTC on 30 November is 00:30 on 1 December in Berlin
    late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)
    services.session_open(cashier=till.cashier, opening_float="0", now=late)
    [event] = events()
    assert event["business_date"] == "2026-12-01"
    assert event["occurred_at"] == "2026-12-01T00:30:00.000+01:00"


def test_z_report_counts_sales_returns_tenders_cash_movements_and_over_short(till: Till) -> None:
    session_id = open_session(till, "100.00")
    sale = sell(till, MILK_EAN, BREAD_EAN, pay="5.00")  # 3.68, change 1.32
    sell(till, "WINE")  # 6.99 cash
    basket = services.basket_start(cashier=till.cashier, now=NOON)
    services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="WINE")
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="card")
    services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id, now=NOON)
    services.return_create(
        cashier=till.cashier, receipt_no=sale.receipt_no,
        lines=[{"original_line_no": 1, "qty": "1"}], now=NOON,
    )  # fmt: skip  # refund 1.19 cash
    services.cash_movement_create(
        cashier=till.cashier, kind="pay_in", amount="20.00", reason="change float", now=NOON
    )
    services.cash_movement_create(cashier=till.cashier, kind="drop", amount="50.00", now=NOON)
    services.cash_movement_create(
        cashier=till.cashier,
        kind="pay_out",
        amount="3.50",
        reason="window cleaner",
        supervisor=SUPERVISOR,
        supervisor_pin=SUPERVISOR_PIN,
        now=NOON,
    )

    session = services.session_close(
        cashier=till.cashier, session_id=session_id, counted_cash="75.00", now=NOON
    )

    z = session.z_report
    # expected cash: 100 + (3.68 + 6.99 − 1.19) + 20 − 50 − 3.50 = 75.98
    assert z["sale_count"] == 3
    assert z["return_count"] == 1
    assert z["gross"] == "16.47"  # 3.68 + 6.99 + 6.99 − 1.19
    assert z["tenders"] == {"cash": "9.48", "card": "6.99"}
    assert z["cash_movements"] == {"pay_in": "20.00", "pay_out": "3.50", "drop": "50.00"}
    assert z["expected_cash"] == "75.98"
    assert z["counted_cash"] == "75.00"
    assert z["over_short"] == "-0.98"
    close = events("session_close")[0]
    assert close["data"]["first_seq"] == 1
    assert close["data"]["last_seq"] == close["seq"] - 1 == 8
    assert close["data"]["tax"] == z["tax"]
    assert_head_office_reads(close)
    assert services.session_current() is None


def test_closing_with_an_open_basket_with_lines_is_refused(till: Till) -> None:
    session_id = open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="WINE")
    with pytest.raises(errors.Conflict) as refused:
        services.session_close(cashier=till.cashier, session_id=session_id, counted_cash="100")
    assert refused.value.code == "basket_open"
    assert services.session_current() is not None


# --- lines, prices and rounding ---------------------------------------------------------------


def test_a_sale_event_is_what_head_office_checks_to_the_cent(till: Till) -> None:
    open_session(till)
    receipt = sell(till, MILK_EAN, MILK_EAN, BREAD_EAN, "WINE", pay="20.00")

    event = events("sale")[0]
    data = event["data"]
    assert data["receipt_no"] == receipt.receipt_no == f"S01-R1-{event['seq']:06d}"
    assert [(ln["sku"], ln["qty"], ln["line_total"]) for ln in data["lines"]] == [
        ("MILK", "2", "2.38"),
        ("BREAD", "1", "2.49"),
        ("WINE", "1", "6.99"),
    ]
    # tax per line, half-up: 2.38×7/107 = 0.1557 → 0.16; 2.49×7/107 = 0.1629 → 0.16;
    # 6.99×19/119 = 1.1161 → 1.12
    assert [ln["tax"] for ln in data["lines"]] == ["0.16", "0.16", "1.12"]
    assert data["totals"] == {"net": "10.42", "tax": "1.44", "gross": "11.86"}
    assert data["tenders"] == [
        {
            "method": "cash",
            "amount": "20.00",
            "change": "8.14",
            "reference": None,
            "offline_authorized": False,
        }
    ]
    assert data["currency"] == "EUR"
    assert data["cashier"] == "C1"
    assert_head_office_reads(event)


def test_exclusive_tax_is_added_on_top_and_rounded_per_line(till: Till) -> None:
    open_session(till)
    sell(till, ("BAG", "3"))  # 0.99 net, 8.875 % on top: 0.0879 → 0.09
    data = events("sale")[0]["data"]
    assert data["lines"][0]["line_total"] == "0.99"
    assert data["totals"] == {"net": "0.99", "tax": "0.09", "gross": "1.08"}
    assert data["tenders"][0]["amount"] == "1.08"


def test_a_weight_embedded_barcode_gives_the_weight_in_kg(till: Till) -> None:
    open_session(till)
    weighed = ean13("210004201250")  # apples, 1.250 kg
    sell(till, weighed)
    line = events("sale")[0]["data"]["lines"][0]
    assert (line["sku"], line["qty"], line["unit_price"], line["line_total"]) == (
        "APPLES", "1.250", "2.99", "3.74",
    )  # fmt: skip  # 3.7375 → 3.74


def test_a_price_embedded_barcode_of_a_weighed_item_charges_exactly_the_label(till: Till) -> None:
    open_session(till)
    apples = LocalProduct.objects.get(sku="APPLES")
    apples.barcodes.create(code=ean13("250004200000"))  # the store's price labels of apples
    labelled = ean13("250004200500")  # apples, label 5.00
    sell(till, labelled)
    line = events("sale")[0]["data"]["lines"][0]
    # 1.672 kg × 2.99 = 4.99928 → 5.00: the smallest weight that reaches the label
    assert (line["qty"], line["unit_price"], line["line_total"]) == ("1.672", "2.99", "5.00")
    assert Decimal(line["qty"]) * Decimal(line["unit_price"]) - Decimal(line["discount"]) >= 0


def test_price_embedded_unit_item_registered_under_a_price_prefix(till: Till) -> None:
    open_session(till)
    tray = LocalProduct.objects.create(
        sku="777", name="Deli tray", unit="each", tax_code="RED", version=1
    )
    tray.barcodes.create(code=ean13("260077700000"))  # registered with its price zeroed
    LocalPrice.objects.create(
        key="777@2026-01-01",
        sku="777",
        price=Decimal("4.00"),
        valid_from=dt.date(2026, 1, 1),
        version=1,
    )
    sell(till, ean13("260077700459"))  # item 00777, label 4.59
    line = events("sale")[0]["data"]["lines"][0]
    assert (line["sku"], line["qty"], line["unit_price"], line["line_total"]) == (
        "777",
        "1",
        "4.59",
        "4.59",
    )
    assert line["price_override_reason"] == "price embedded in barcode"


def test_embedded_price_line_reaches_the_label_for_dear_items() -> None:
    rules = type(
        "R",
        (),
        {"money": staticmethod(lambda v: v.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP"))},
    )()
    qty, discount = embedded_price_line(
        label=Decimal("10.00"), unit_price=Decimal("24.90"), rules=rules
    )
    total = (qty * Decimal("24.90")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert total - discount == Decimal("10.00")
    assert discount >= 0


def test_a_weight_read_from_the_label_cannot_be_typed_over(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    services.basket_line_add(
        cashier=till.cashier, basket_id=basket.basket_id, code=ean13("210004201250")
    )
    services.basket_line_add(
        cashier=till.cashier, basket_id=basket.basket_id, code=APPLES_PLU, qty="0.400"
    )
    with pytest.raises(errors.InvalidQuantity):
        services.basket_line_change(
            cashier=till.cashier, basket_id=basket.basket_id, line_no=1, qty="0.100"
        )
    b = services.basket_line_change(
        cashier=till.cashier, basket_id=basket.basket_id, line_no=2, qty="0.450"
    )
    assert [ln["qty"] for ln in basket_view(b)["lines"]] == ["1.250", "0.450"]


def test_a_weighed_item_without_weight_asks_for_one(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    with pytest.raises(errors.WeightRequired):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="CHEESE")
    b = services.basket_line_add(
        cashier=till.cashier, basket_id=basket.basket_id, code="CHEESE", qty="0.375"
    )
    assert basket_view(b)["lines"][0]["line_total"] == "9.34"  # 9.3375 → 9.34


def test_a_weighed_item_takes_the_scales_weight_when_the_till_has_a_scale(
    till: Till, settings: Any
) -> None:
    settings.DEVICES_SCALE = "file"
    open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    with pytest.raises(errors.WeightRequired, match="no weight"):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="CHEESE")
    till.state_dir.mkdir(parents=True, exist_ok=True)
    (till.state_dir / "scale-weight").write_text("0.4525\n")
    b = services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="CHEESE")
    line = basket_view(b)["lines"][0]
    assert (line["qty"], line["line_total"]) == ("0.453", "11.28")  # 0.453 × 24.90 = 11.2797
    (till.state_dir / "scale-weight").write_text("0")
    with pytest.raises(errors.WeightRequired, match="nothing is on the scale"):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="CHEESE")


def test_unknown_inactive_and_fractional_units_are_refused(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    with pytest.raises(errors.UnknownCode):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="9999")
    with pytest.raises(errors.ProductInactive):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="OLD")
    with pytest.raises(errors.InvalidQuantity):
        services.basket_line_add(
            cashier=till.cashier, basket_id=basket.basket_id, code="WINE", qty="1.5"
        )
    with pytest.raises(errors.InvalidQuantity):
        services.basket_line_add(
            cashier=till.cashier, basket_id=basket.basket_id, code="APPLES", qty="0.0001"
        )
    assert LocalBasket.objects.get().lines == []


def test_scanning_the_same_item_again_adds_to_its_line_and_qty_can_change(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    for _ in range(3):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code=MILK_EAN)
    b = services.basket_line_change(
        cashier=till.cashier, basket_id=basket.basket_id, line_no=1, qty="5"
    )
    view = basket_view(b)
    assert [(ln["line_no"], ln["qty"], ln["line_total"]) for ln in view["lines"]] == [
        (1, "5", "5.95")
    ]
    b = services.basket_line_remove(cashier=till.cashier, basket_id=basket.basket_id, line_no=1)
    assert basket_view(b)["lines"] == []
    with pytest.raises(errors.LineNotFound):
        services.basket_line_remove(cashier=till.cashier, basket_id=basket.basket_id, line_no=1)


def test_removing_a_line_needs_a_supervisor_when_the_store_says_so(till: Till) -> None:
    config = LocalStoreConfig.objects.get()
    config.data["supervisor_operations"].append("void_line")
    config.save()
    open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="WINE")
    with pytest.raises(errors.SupervisorRequired):
        services.basket_line_remove(cashier=till.cashier, basket_id=basket.basket_id, line_no=1)
    b = services.basket_line_remove(
        cashier=till.cashier,
        basket_id=basket.basket_id,
        line_no=1,
        supervisor=SUPERVISOR,
        supervisor_pin=SUPERVISOR_PIN,
    )
    assert b.lines == []


# --- overrides and discounts ------------------------------------------------------------------


def test_price_override_needs_a_supervisor_pin_and_records_the_reason(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.cashier)
    services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="WINE")
    kwargs = {
        "cashier": till.cashier,
        "basket_id": basket.basket_id,
        "line_no": 1,
        "unit_price": "5.00",
        "reason": "damaged label",
    }
    with pytest.raises(errors.SupervisorRequired):
        services.basket_line_override(**kwargs)
    with pytest.raises(errors.SupervisorRefused):
        services.basket_line_override(**kwargs, supervisor=SUPERVISOR, supervisor_pin="0000")
    with pytest.raises(errors.SupervisorRefused):  # a cashier is no supervisor
        services.basket_line_override(**kwargs, supervisor="C1", supervisor_pin="1234")
    services.basket_line_override(**kwargs, supervisor=SUPERVISOR, supervisor_pin=SUPERVISOR_PIN)
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="cash")
    services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id)

    line = events("sale")[0]["data"]["lines"][0]
    assert line["unit_price"] == "5.00"
    assert line["line_total"] == "5.00"
    assert line["price_override_reason"] == "damaged label"
    assert line["authorised_by"] == SUPERVISOR


def test_a_supervisor_signed_in_overrides_without_a_second_pin(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.supervisor)
    services.basket_line_add(cashier=till.supervisor, basket_id=basket.basket_id, code="WINE")
    b = services.basket_line_override(
        cashier=till.supervisor,
        basket_id=basket.basket_id,
        line_no=1,
        discount="1.00",
        reason="loyal customer",
    )
    line = basket_view(b)["lines"][0]
    assert (line["discount"], line["line_total"], line["authorised_by"]) == ("1.00", "5.99", "SV")


def test_a_line_discount_over_the_line_value_is_refused(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.supervisor)
    services.basket_line_add(cashier=till.supervisor, basket_id=basket.basket_id, code=MILK_EAN)
    with pytest.raises(errors.InvalidAmount):
        services.basket_line_override(
            cashier=till.supervisor,
            basket_id=basket.basket_id,
            line_no=1,
            discount="1.20",
            reason="x",
        )
    with pytest.raises(errors.ValidationFailed):  # a reason is required
        services.basket_line_override(
            cashier=till.supervisor,
            basket_id=basket.basket_id,
            line_no=1,
            discount="0.10",
            reason=" ",
        )


def test_a_basket_discount_is_spread_over_lines_in_whole_cents(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.supervisor)
    for code in (MILK_EAN, BREAD_EAN, "WINE"):
        services.basket_line_add(cashier=till.supervisor, basket_id=basket.basket_id, code=code)
    b = services.basket_discount_set(
        cashier=till.supervisor, basket_id=basket.basket_id, percent="10", reason="staff"
    )
    view = basket_view(b)
    # 10 % of 10.67 = 1.067 → 1.07, spread 0.12 / 0.25 / 0.70 by largest remainder
    assert view["discount"]["amount"] == "1.07"
    assert [ln["discount"] for ln in view["lines"]] == ["0.12", "0.25", "0.70"]
    assert sum(Decimal(ln["discount"]) for ln in view["lines"]) == Decimal("1.07")
    assert view["totals"]["gross"] == "9.60"
    services.basket_tender_add(cashier=till.supervisor, basket_id=basket.basket_id, method="cash")
    services.basket_complete(cashier=till.supervisor, basket_id=basket.basket_id)
    event = events("sale")[0]
    assert event["data"]["totals"]["gross"] == "9.60"
    assert_head_office_reads(event)


def test_allocation_always_adds_up() -> None:
    cent = Decimal("0.01")
    for total in ("0.01", "0.02", "1.00", "3.33"):
        shares = _allocate(Decimal(total), [Decimal("1"), Decimal("1"), Decimal("1")], cent)
        assert sum(shares) == Decimal(total)
        assert max(shares) - min(shares) <= cent


# --- tenders ---------------------------------------------------------------------------------


def _basket_with(till: Till, *codes: str) -> LocalBasket:
    basket = services.basket_start(cashier=till.cashier)
    for code in codes:
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code=code)
    return basket


def test_cash_gives_change_and_card_cannot_pay_more_than_due(till: Till) -> None:
    open_session(till)
    basket = _basket_with(till, "WINE")
    with pytest.raises(errors.InvalidAmount):
        services.basket_tender_add(
            cashier=till.cashier, basket_id=basket.basket_id, method="card", amount="7.00"
        )
    services.basket_tender_add(
        cashier=till.cashier, basket_id=basket.basket_id, method="card", amount="2.00"
    )
    b = services.basket_tender_add(
        cashier=till.cashier, basket_id=basket.basket_id, method="cash", amount="10.00"
    )
    view = basket_view(b)
    assert (view["due"], view["change"], view["paid"]) == ("0.00", "5.01", "6.99")
    with pytest.raises(errors.Conflict):  # nothing is due any more
        services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="cash")


def test_an_unpaid_basket_cannot_complete(till: Till) -> None:
    open_session(till)
    basket = _basket_with(till, "WINE")
    with pytest.raises(errors.BasketNotPaid):
        services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id)
    empty = services.basket_start(cashier=till.cashier)
    with pytest.raises(errors.BasketEmpty):
        services.basket_complete(cashier=till.cashier, basket_id=empty.basket_id)
    assert events("sale") == []


def test_a_declined_card_takes_nothing(till: Till) -> None:
    open_session(till)
    set_terminal(SimulatedTerminal(mode="decline"))
    basket = _basket_with(till, "WINE")
    with pytest.raises(errors.TenderRefused) as refused:
        services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="card")
    assert refused.value.code == "card_declined"
    assert LocalBasket.objects.get(pk=basket.pk).tenders == []


def test_card_offline_is_stored_and_forwarded_up_to_the_store_limit(till: Till) -> None:
    open_session(till)
    set_terminal(SimulatedTerminal(mode="offline"))
    basket = _basket_with(till, *["WINE"] * 8)  # 55.92
    with pytest.raises(errors.TenderRefused) as refused:
        services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="card")
    assert refused.value.code == "card_offline_limit"
    services.basket_tender_add(
        cashier=till.cashier, basket_id=basket.basket_id, method="card", amount="50.00"
    )
    with pytest.raises(errors.TenderRefused):  # the limit is per sale, not per tender
        services.basket_tender_add(
            cashier=till.cashier, basket_id=basket.basket_id, method="card", amount="1.00"
        )
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="cash")
    services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id)

    card = events("sale")[0]["data"]["tenders"][0]
    assert card["method"] == "card"
    assert card["amount"] == "50.00"
    assert card["offline_authorized"] is True
    assert card["reference"].startswith("SAF-")
    assert device_state_get("terminal-1").state == "offline"


def test_a_voucher_pays_without_change(till: Till) -> None:
    open_session(till)
    basket = _basket_with(till, "WINE")
    b = services.basket_tender_add(
        cashier=till.cashier,
        basket_id=basket.basket_id,
        method="voucher",
        amount="5.00",
        reference="GIFT-1",
        supervisor=SUPERVISOR,
        supervisor_pin=SUPERVISOR_PIN,
    )
    assert basket_view(b)["due"] == "1.99"


# --- complete, void ----------------------------------------------------------------------------


def test_complete_writes_receipt_and_event_together_and_prints_after(
    till: Till, django_capture_on_commit_callbacks
) -> None:
    open_session(till)
    with django_capture_on_commit_callbacks(execute=True) as printing:
        receipt = sell(till, "WINE")
        assert till.printer.printed == []  # nothing is printed before the sale commits
    assert len(printing) == 1
    assert LocalReceipt.objects.get().event_id == receipt.event_id
    assert OutboxEvent.objects.get(type="sale").event_id == receipt.event_id
    assert LocalBasket.objects.get().status == "completed"
    assert [name for name, _ in till.printer.printed] == [receipt.receipt_no]
    assert "Red wine" in till.printer.printed[0][1]
    assert "TOTAL EUR" in receipt.receipt_text


@pytest.mark.parametrize("failing", ["outbox_append", "basket_save_after_the_outbox"])
def test_a_failing_outbox_rolls_back_the_whole_sale(
    till: Till, monkeypatch, django_capture_on_commit_callbacks, failing: str
) -> None:
    open_session(till)
    basket = _basket_with(till, "WINE")
    services.basket_tender_add(cashier=till.cashier, basket_id=basket.basket_id, method="cash")
    seq_before = NodeState.objects.get().next_seq
    appended: list[int] = []

    if failing == "outbox_append":

        def broken(**kwargs: Any) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(services, "outbox_append", broken)
    else:
        # the outbox append succeeds; the basket's own write after it (the last one) fails
        real_append, real_save = services.outbox_append, LocalBasket.save

        def append(**kwargs: Any) -> OutboxEvent:
            event = real_append(**kwargs)
            appended.append(event.seq)
            return event

        def save(self: LocalBasket, *args: Any, **kwargs: Any) -> None:
            if "status" in (kwargs.get("update_fields") or ()):
                assert appended, "the failing write must come after the outbox append"
                raise RuntimeError("disk full")
            real_save(self, *args, **kwargs)

        monkeypatch.setattr(services, "outbox_append", append)
        monkeypatch.setattr(LocalBasket, "save", save)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        services.basket_complete(cashier=till.cashier, basket_id=basket.basket_id)
    assert appended == ([] if failing == "outbox_append" else [seq_before])
    assert not OutboxEvent.objects.filter(type="sale").exists()
    assert NodeState.objects.get().next_seq == seq_before
    assert LocalReceipt.objects.count() == 0
    assert LocalBasket.objects.get().status == "open"
    assert till.printer.printed == []


def test_a_printer_that_is_down_never_fails_the_sale_and_is_reported(
    till: Till, django_capture_on_commit_callbacks
) -> None:
    open_session(till)
    till.printer.state, till.printer.detail = "paper_out", "out of paper"
    with django_capture_on_commit_callbacks(execute=True):
        receipt = sell(till, "WINE")
    assert LocalReceipt.objects.filter(pk=receipt.pk).exists()
    assert till.printer.printed == []
    assert device_state_get("printer-1").state == "paper_out"
    status = events("device_status")
    assert [e["data"]["state"] for e in status] == ["paper_out"]
    assert_head_office_reads(status[0])
    # back to ok: reported once more
    till.printer.state = "ok"
    with django_capture_on_commit_callbacks(execute=True):
        services.receipt_reprint(cashier=till.cashier, receipt_no=receipt.receipt_no)
    assert [e["data"]["state"] for e in events("device_status")] == ["paper_out", "ok"]
    assert "*** COPY ***" in till.printer.printed[0][1]


def test_voiding_an_open_basket_sends_nothing(till: Till) -> None:
    open_session(till)
    basket = _basket_with(till, "WINE")
    services.basket_void(cashier=till.cashier, basket_id=basket.basket_id, reason="changed mind")
    assert LocalBasket.objects.get().status == "voided"
    with pytest.raises(errors.BasketClosed):
        services.basket_line_add(cashier=till.cashier, basket_id=basket.basket_id, code="WINE")
    assert [e["type"] for e in events()] == ["session_open"]


# --- returns -----------------------------------------------------------------------------------


def test_a_return_by_receipt_refunds_the_lines_and_limits_quantities(till: Till) -> None:
    open_session(till)
    sale = sell(till, MILK_EAN, MILK_EAN, MILK_EAN, "WINE")
    first = services.return_create(
        cashier=till.cashier,
        receipt_no=sale.receipt_no,
        lines=[{"original_line_no": 1, "qty": "2"}],
    )
    data = events("return")[0]["data"]
    assert data["original_event_id"] == str(sale.event_id)
    assert data["lines"][0]["original_line_no"] == 1
    assert data["lines"][0]["line_total"] == "2.38"
    assert data["totals"]["gross"] == "2.38" == data["tenders"][0]["amount"]
    assert first.receipt_no.startswith("S01-R1-")
    assert_head_office_reads(events("return")[0])
    with pytest.raises(errors.ReturnRefused):
        services.return_create(
            cashier=till.cashier,
            receipt_no=sale.receipt_no,
            lines=[{"original_line_no": 1, "qty": "2"}],
        )
    services.return_create(
        cashier=till.cashier, receipt_no=sale.receipt_no, lines=[{"code": "WINE"}]
    )
    assert LocalReceipt.objects.get(pk=sale.pk).returned == {
        "1": {"qty": "2", "discount": "0.00"},
        "2": {"qty": "1", "discount": "0.00"},
    }


def test_a_discounted_line_returned_in_parts_refunds_exactly_its_discount(till: Till) -> None:
    open_session(till)
    basket = services.basket_start(cashier=till.supervisor)
    services.basket_line_add(
        cashier=till.supervisor, basket_id=basket.basket_id, code="WINE", qty="3"
    )
    services.basket_line_override(
        cashier=till.supervisor,
        basket_id=basket.basket_id,
        line_no=1,
        discount="1.00",
        reason="promo",
    )
    services.basket_tender_add(cashier=till.supervisor, basket_id=basket.basket_id, method="cash")
    sale = services.basket_complete(cashier=till.supervisor, basket_id=basket.basket_id)
    for _ in range(3):
        services.return_create(
            cashier=till.cashier,
            receipt_no=sale.receipt_no,
            lines=[{"original_line_no": 1, "qty": "1"}],
        )
    refunds = [Decimal(e["data"]["totals"]["gross"]) for e in events("return")]
    assert refunds == [Decimal("6.66"), Decimal("6.66"), Decimal("6.65")]
    assert sum(refunds) == Decimal(events("sale")[0]["data"]["totals"]["gross"]) == Decimal("19.97")


def test_a_return_without_receipt_needs_a_supervisor(till: Till) -> None:
    open_session(till)
    with pytest.raises(errors.SupervisorRequired):
        services.return_create(cashier=till.cashier, lines=[{"code": "WINE"}])
    services.return_create(
        cashier=till.cashier,
        lines=[{"code": "WINE"}],
        reason="no receipt",
        supervisor=SUPERVISOR,
        supervisor_pin=SUPERVISOR_PIN,
    )
    data = events("return")[0]["data"]
    assert data["original_event_id"] is None
    assert data["lines"][0]["original_line_no"] is None
    assert data["authorised_by"] == SUPERVISOR
    assert_head_office_reads(events("return")[0])


def test_a_receipt_this_till_does_not_hold_is_a_supervised_return_naming_it(till: Till) -> None:
    open_session(till)
    other_register = "S01-R2-000042"
    config = LocalStoreConfig.objects.get()
    config.data["supervisor_operations"] = []  # even so: an unchecked receipt needs approval
    config.save()
    with pytest.raises(errors.SupervisorRequired):
        services.return_create(
            cashier=till.cashier, receipt_no=other_register, lines=[{"code": "WINE"}]
        )
    with pytest.raises(errors.ReturnRefused):  # lines cannot name lines of an unknown receipt
        services.return_create(
            cashier=till.cashier,
            receipt_no=other_register,
            lines=[{"original_line_no": 1}],
            supervisor=SUPERVISOR,
            supervisor_pin=SUPERVISOR_PIN,
        )
    services.return_create(
        cashier=till.cashier,
        receipt_no=other_register,
        lines=[{"code": "WINE"}],
        supervisor=SUPERVISOR,
        supervisor_pin=SUPERVISOR_PIN,
    )
    data = events("return")[0]["data"]
    assert data["original_receipt_no"] == other_register
    assert data["original_event_id"] is None


def test_refunds_must_add_up_to_the_return(till: Till) -> None:
    open_session(till)
    sale = sell(till, "WINE")
    with pytest.raises(errors.ReturnRefused) as refused:
        services.return_create(
            cashier=till.cashier,
            receipt_no=sale.receipt_no,
            lines=[{"original_line_no": 1}],
            tenders=[{"method": "cash", "amount": "5.00"}],
        )
    assert refused.value.code == "refund_mismatch"
    services.return_create(
        cashier=till.cashier,
        receipt_no=sale.receipt_no,
        lines=[{"original_line_no": 1}],
        tenders=[{"method": "cash", "amount": "5.00"}, {"method": "voucher", "amount": "1.99"}],
    )
    voucher = events("return")[0]["data"]["tenders"][1]
    assert voucher["reference"].startswith("VCH-")


# --- cash, stock, reprint ------------------------------------------------------------------


def test_cash_movements_need_a_session_a_reason_and_for_pay_out_a_supervisor(till: Till) -> None:
    with pytest.raises(errors.NoOpenSession):
        services.cash_movement_create(
            cashier=till.cashier, kind="pay_in", amount="5", reason="float"
        )
    session_id = open_session(till)
    with pytest.raises(errors.ValidationFailed):
        services.cash_movement_create(cashier=till.cashier, kind="pay_in", amount="5")
    with pytest.raises(errors.SupervisorRequired):
        services.cash_movement_create(
            cashier=till.cashier, kind="pay_out", amount="5", reason="stamps"
        )
    services.cash_movement_create(cashier=till.cashier, kind="drop", amount="40.00")
    [event] = events("cash_movement")
    assert event["data"]["session_id"] == session_id
    assert (event["data"]["kind"], event["data"]["amount"]) == ("drop", "40.00")
    assert_head_office_reads(event)


def test_stock_adjustment_and_count_events(till: Till) -> None:
    services.stock_adjustment_create(
        cashier=till.cashier,
        lines=[
            {"code": MILK_EAN, "qty_delta": "-2", "reason": "damage"},
            {"code": "APPLES", "qty_delta": "12.5", "reason": "receipt", "reference": "DN-1"},
        ],
    )
    services.stock_count_create(
        cashier=till.cashier,
        count_id="count-1",
        lines=[{"code": BREAD_EAN, "counted_qty": "14"}, {"code": APPLES_PLU, "counted_qty": "3"}],
    )
    adjustment, count = events()
    assert adjustment["data"]["lines"] == [
        {"sku": "MILK", "qty_delta": "-2", "reason": "damage", "reference": None},
        {"sku": "APPLES", "qty_delta": "12.500", "reason": "receipt", "reference": "DN-1"},
    ]
    assert count["data"]["count_id"] == "count-1"
    assert count["data"]["lines"] == [
        {"sku": "BREAD", "counted_qty": "14"},
        {"sku": "APPLES", "counted_qty": "3.000"},
    ]
    assert_head_office_reads(adjustment)
    assert_head_office_reads(count)


def test_bad_stock_lines_are_refused(till: Till) -> None:
    with pytest.raises(errors.ValidationFailed):
        services.stock_adjustment_create(
            cashier=till.cashier, lines=[{"code": "WINE", "qty_delta": "1", "reason": "lost"}]
        )
    with pytest.raises(errors.InvalidQuantity):
        services.stock_adjustment_create(
            cashier=till.cashier, lines=[{"code": "WINE", "qty_delta": "0", "reason": "other"}]
        )
    with pytest.raises(errors.ValidationFailed):
        services.stock_count_create(
            cashier=till.cashier,
            lines=[{"code": "WINE", "counted_qty": "1"}, {"code": "WINE", "counted_qty": "2"}],
        )
    assert OutboxEvent.objects.count() == 0


def test_reprint_of_an_unknown_receipt_is_not_found(till: Till) -> None:
    with pytest.raises(errors.ReceiptNotFound):
        services.receipt_reprint(cashier=till.cashier, receipt_no="S01-R1-999999")


def test_without_store_configuration_the_till_is_not_ready(till: Till) -> None:
    LocalStoreConfig.objects.all().delete()
    with pytest.raises(errors.TillNotReady):
        store_rules()
    with pytest.raises(errors.TillNotReady):
        services.session_open(cashier=till.cashier, opening_float="0")


def test_seqs_stay_gap_free_across_refused_operations(till: Till, monkeypatch) -> None:
    open_session(till)
    sale = sell(till, "WINE")
    # refused before the transaction
    with pytest.raises(errors.SupervisorRequired):
        services.cash_movement_create(cashier=till.cashier, kind="pay_out", amount="1", reason="x")
    # refused inside the write transaction, under the lock
    with pytest.raises(errors.BasketNotPaid):
        services.basket_complete(cashier=till.cashier, basket_id=_basket_with(till, "WINE").pk)
    # refused inside the transaction after its event took seq 3: the write after the outbox
    # append (the return's receipt) collides, and the seq is given back with everything else
    real_append = services.outbox_append
    taken: list[int] = []

    def append_then_collide(**kwargs: Any) -> OutboxEvent:
        event = real_append(**kwargs)
        taken.append(event.seq)
        LocalReceipt.objects.filter(pk=sale.pk).update(receipt_no=event.receipt_no)
        return event

    monkeypatch.setattr(services, "outbox_append", append_then_collide)
    with pytest.raises(IntegrityError):
        services.return_create(
            cashier=till.cashier, receipt_no=sale.receipt_no, lines=[{"original_line_no": 1}]
        )
    monkeypatch.setattr(services, "outbox_append", real_append)
    assert taken == [3]
    assert LocalReceipt.objects.get(pk=sale.pk).receipt_no == sale.receipt_no  # rolled back
    assert LocalReceipt.objects.get(pk=sale.pk).returned == {}
    sell(till, MILK_EAN)
    assert [e["seq"] for e in events()] == [1, 2, 3]
