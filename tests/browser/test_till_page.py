"""The cashier page in Debian's Chromium: a sale by scanning (a keyboard-wedge scanner types
digits then Enter), a weighed item, a return, and a sale while head office is unreachable
with the offline state on screen. The page is served by a live node (the till's URLs in this
process) from its own assets only."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.utils import timezone

from stores.local import LocalReceipt, NodeState, OutboxEvent
from sync.node.agent import SyncAgent
from tests.till.conftest import (
    APPLES_PLU,
    BREAD_EAN,
    CASHIER,
    CASHIER_PIN,
    MILK_EAN,
    devices,  # noqa: F401 - fixture
    ean13,
    seed_mirror,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.till.urls"),
]


@pytest.fixture
def node(devices: Any) -> None:  # noqa: F811
    seed_mirror()
    NodeState.objects.update(
        online=True, last_sync_ok_at=timezone.now(), last_pull_at=timezone.now()
    )


def sign_in_and_open(page: Any, url: str) -> None:
    page.goto(f"{url}/till/")
    page.fill("#code", CASHIER)
    page.fill("#pin", CASHIER_PIN)
    page.click("button[type=submit]")
    page.wait_for_selector("#open-form")
    page.click("#open-form button")
    page.wait_for_selector("#scan:focus")


def scan(page: Any, code: str) -> None:
    """As a keyboard-wedge scanner does: the digits into the focused field, then Enter."""
    answered = int(page.locator("#scan-form").get_attribute("data-answered") or 0)
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    wait_answered(page, answered)


def wait_answered(page: Any, before: int) -> None:
    page.wait_for_function(
        "n => Number(document.querySelector('#scan-form').dataset.answered || 0) > n", arg=before
    )


def pay_cash_and_complete(page: Any, amount: str) -> str:
    page.fill("#tender-amount", amount)
    page.click("button.tender[data-method=cash]")
    page.wait_for_function("document.querySelector('#due').textContent === '0.00'")
    page.click("#complete")
    page.wait_for_selector("#receipt:not([hidden])")
    return page.locator("#receipt").get_attribute("data-receipt-no")


def sale_events() -> list[dict[str, Any]]:
    return [json.loads(e.payload) for e in OutboxEvent.objects.filter(type="sale").order_by("seq")]


def test_a_full_sale_by_scanning(live_server: Any, page: Any, node: None) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in_and_open(page, live_server.url)

    scan(page, MILK_EAN)
    scan(page, MILK_EAN)  # the same item again: its line grows
    scan(page, BREAD_EAN)
    assert page.locator("#lines tbody tr").count() == 2
    assert page.locator("#total-gross").text_content() == "4.87"

    receipt_no = pay_cash_and_complete(page, "10.00")

    assert "change 5.13" in page.locator("#message").text_content()
    assert receipt_no in page.locator("#receipt").text_content()
    [event] = sale_events()
    assert event["data"]["receipt_no"] == receipt_no
    assert event["data"]["totals"]["gross"] == "4.87"
    assert [(ln["sku"], ln["qty"]) for ln in event["data"]["lines"]] == [
        ("MILK", "2"),
        ("BREAD", "1"),
    ]
    assert page.locator("#scan").evaluate("el => el === document.activeElement")
    foreign = [u for u in requested if not u.startswith(live_server.url)]
    assert foreign == [], f"the page reached outside the node: {foreign}"


def test_a_weighed_item(live_server: Any, page: Any, node: None) -> None:
    sign_in_and_open(page, live_server.url)

    scan(page, ean13("210004201250"))  # apples, 1.250 kg on the scale's label
    scan(page, APPLES_PLU)  # the plain code: the page asks for the weight
    assert "weigh it" in page.locator("#message").text_content()
    answered = int(page.locator("#scan-form").get_attribute("data-answered"))
    page.fill("#qty", "0.500")
    page.press("#qty", "Enter")
    wait_answered(page, answered)
    assert page.locator("#lines tbody tr").count() == 2

    cells = page.locator("#lines tbody tr").first.locator("td")
    assert cells.nth(2).text_content() == "1.250"
    assert cells.nth(5).text_content() == "3.74"  # 1.250 × 2.99 = 3.7375
    pay_cash_and_complete(page, "")
    lines = sale_events()[0]["data"]["lines"]
    assert [(ln["qty"], ln["line_total"]) for ln in lines] == [("1.250", "3.74"), ("0.500", "1.50")]


def test_a_return(live_server: Any, page: Any, node: None) -> None:
    sign_in_and_open(page, live_server.url)
    scan(page, "WINE")
    scan(page, MILK_EAN)
    receipt_no = pay_cash_and_complete(page, "")

    page.click("button[data-panel=return]")
    page.fill("#return-receipt", receipt_no)
    page.click("#return-find button")
    page.wait_for_selector("#return-lines tr")
    page.locator("#return-lines tr[data-line-no='2'] input").fill("0")  # the milk stays
    page.click("#return-submit")
    page.wait_for_selector("#return-receipt-text:not([hidden])")

    assert "refund 6.99" in page.locator("#message").text_content()
    [returned] = [json.loads(e.payload) for e in OutboxEvent.objects.filter(type="return")]
    original = LocalReceipt.objects.get(receipt_no=receipt_no)
    assert returned["data"]["original_event_id"] == str(original.event_id)
    assert [(ln["sku"], ln["original_line_no"]) for ln in returned["data"]["lines"]] == [
        ("WINE", 1)
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sale_while_head_office_is_unreachable(live_server: Any, page: Any, node: None) -> None:
    sign_in_and_open(page, live_server.url)
    page.wait_for_function("document.querySelector('#st-online').textContent === 'ONLINE'")

    # head office goes away: the sync agent finds it unreachable
    NodeState.objects.update(hq_url=f"http://127.0.0.1:{_closed_port()}")
    agent = SyncAgent()
    try:
        report = agent.run_once()
    finally:
        agent.close()
    assert "cannot be reached" in report.error

    page.wait_for_function("document.querySelector('#st-online').textContent === 'OFFLINE'")
    scan(page, "WINE")
    receipt_no = pay_cash_and_complete(page, "")

    # the sale completed locally and waits in the outbox, and the screen says so
    assert sale_events()[0]["data"]["receipt_no"] == receipt_no
    page.wait_for_function("document.querySelector('#st-depth').textContent === '2'")
    assert page.locator("#st-online").text_content() == "OFFLINE"
    assert page.locator("#st-age").text_content() != "–"
    assert page.locator("#st-online").evaluate("el => el.classList.contains('bad')")


def test_a_printer_out_of_paper_is_prompted_and_the_sale_completes(
    live_server: Any,
    page: Any,
    node: None,
    devices: Any,  # noqa: F811
) -> None:
    printer, _ = devices
    printer.state, printer.detail = "paper_out", "out of paper"
    sign_in_and_open(page, live_server.url)
    scan(page, "WINE")
    pay_cash_and_complete(page, "")
    page.wait_for_selector("#st-attention li[data-kind=printer_down]")
    assert "printer-1: paper_out" in page.locator("#st-devices").text_content()
    assert len(sale_events()) == 1


def test_paying_buttons_wait_for_the_answer_in_flight(
    live_server: Any, page: Any, node: None
) -> None:
    """A second tap while a card payment is in flight sends nothing: the tender and complete
    buttons are disabled until the till answers."""
    held: list[Any] = []
    page.route("**/tenders", lambda route: held.append(route))
    sign_in_and_open(page, live_server.url)
    scan(page, "WINE")

    page.click("button.tender[data-method=card]")
    page.wait_for_function("document.querySelector('#complete').disabled")
    page.wait_for_function("document.querySelector('button.tender[data-method=card]').disabled")
    page.locator("button.tender[data-method=card]").dispatch_event("click")  # ignored
    page.locator("#complete").dispatch_event("click")  # ignored
    assert page.locator("button.tender[data-method=cash]").is_disabled()
    page.wait_for_timeout(200)
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_function("document.querySelector('#due').textContent === '0.00'")
    page.wait_for_function("!document.querySelector('#complete').disabled")
    assert len(held) == 1
    page.unroute("**/tenders")
    page.click("#complete")
    page.wait_for_selector("#receipt:not([hidden])")
    [event] = sale_events()
    assert [t["method"] for t in event["data"]["tenders"]] == ["card"]
