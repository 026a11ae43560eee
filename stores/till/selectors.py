"""Reads of the till: a basket as the cashier sees it, receipts, and the node's state."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone

from devices.printers import get_printer
from devices.state import device_state_get, device_states
from stores.local import LocalBasket, LocalReceipt, LocalTillSession, NodeState
from stores.outbox import oldest_unsent_age, outbox_attention, outbox_depth
from stores.till.errors import BasketNotFound, TillNotReady
from stores.till.pricing import StoreRules, store_rules


def basket_get(basket_id: object) -> LocalBasket:
    try:
        key = uuid.UUID(str(basket_id))
    except ValueError:
        raise BasketNotFound() from None
    basket = LocalBasket.objects.select_related("session").filter(pk=key).first()
    if basket is None:
        raise BasketNotFound()
    return basket


def basket_view(basket: LocalBasket, rules: StoreRules | None = None) -> dict[str, Any]:
    """A basket with its lines priced: totals, what is paid, due and the change to give."""
    from stores.till.services import basket_price

    rules = rules or store_rules()
    priced = basket_price(basket, rules)
    text = rules.text
    return {
        "basket_id": str(basket.basket_id),
        "status": basket.status,
        "session_id": basket.session_id,
        "cashier": basket.cashier,
        "currency": rules.currency,
        "lines": [
            {
                "line_no": p.line["line_no"],
                "code": p.line["code"],
                "sku": p.line["sku"],
                "name": p.line["name"],
                "weighed": p.line["weighed"],
                "qty": p.line["qty"],
                "unit_price": p.line["unit_price"],
                "list_price": p.line["list_price"],
                "discount": text(p.discount),
                "tax_code": p.line["tax_code"],
                "tax": text(p.tax),
                "line_total": text(p.line_total),
                "price_override_reason": p.line.get("price_override_reason"),
                "discount_reason": p.line.get("discount_reason") or "",
                "authorised_by": p.line.get("authorised_by") or "",
            }
            for p in priced.lines
        ],
        "discount": (
            {**basket.discount, "amount": text(priced.basket_discount)} if basket.discount else None
        ),
        "tenders": basket.tenders,
        "totals": {"net": text(priced.net), "tax": text(priced.tax), "gross": text(priced.gross)},
        "paid": text(priced.paid),
        "due": text(priced.due),
        "change": text(priced.change),
    }


def receipt_get(receipt_no: str) -> LocalReceipt | None:
    return LocalReceipt.objects.filter(receipt_no=receipt_no).first()


def receipt_view(receipt: LocalReceipt) -> dict[str, Any]:
    return {
        "event_id": str(receipt.event_id),
        "seq": receipt.seq,
        "type": receipt.type,
        "receipt_no": receipt.receipt_no,
        "totals": receipt.data["totals"],
        "tenders": receipt.data["tenders"],
        "lines": receipt.data["lines"],
        "returned": receipt.returned,
        "original_receipt_no": receipt.original_receipt_no or None,
        "receipt_text": receipt.receipt_text,
    }


def session_view(session: LocalTillSession) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "cashier": session.cashier,
        "opening_float": str(session.opening_float),
        "opened_at": session.opened_at.isoformat(),
        "business_date": session.business_date.isoformat(),
        "open_seq": session.open_seq,
        "closed_at": session.closed_at.isoformat() if session.closed_at else None,
        "z_report": session.z_report,
    }


def _age_s(delta: dt.timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 1)


def till_status(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the operator must see on every screen: the link to head office, the outbox, the
    devices, and what needs attention (conflicts, rejections, degraded modes)."""
    now = now or timezone.now()
    state = NodeState.objects.filter(pk=1).first()
    try:
        rules: StoreRules | None = store_rules()
    except TillNotReady:
        rules = None
    printer = get_printer()
    printer_state = device_state_get(printer.device)
    if printer_state is None:  # never printed yet: ask the printer itself
        probed, detail = printer.probe()
        printer_entry = {"device": printer.device, "kind": "printer", "state": probed,
                         "detail": detail}  # fmt: skip
    else:
        printer_entry = {"device": printer_state.device, "kind": "printer",
                         "state": printer_state.state, "detail": printer_state.detail}  # fmt: skip
    devices = [printer_entry] + [
        {"device": d.device, "kind": d.kind, "state": d.state, "detail": d.detail}
        for d in device_states()
        if d.device != printer.device
    ]
    attention: list[dict[str, Any]] = [
        {
            "kind": item["kind"],
            "message": f"{item['type']} #{item['seq']} {item['receipt_no']}: "
            f"{item['code']} {item['message']}".strip(),
            "event_id": item["event_id"],
        }
        for item in outbox_attention()
    ]
    if printer_entry["state"] != "ok":
        attention.append(
            {
                "kind": "printer_down",
                "message": f"Printer {printer_entry['state']}: sales go on, receipts are not "
                "printed (reprint them later).",
            }
        )
    for device in devices:
        if device["kind"] == "terminal" and device["state"] != "ok":
            limit = rules.text(rules.offline_card_limit) if rules else "0"
            attention.append(
                {
                    "kind": "card_offline",
                    "message": f"Card terminal offline: cards up to {limit} are taken offline "
                    "(store and forward); above that, cash only.",
                }
            )
    if state is None or rules is None:
        attention.append(
            {"kind": "not_ready", "message": "This till has no master data yet: run node_init."}
        )
    else:
        last_pull = state.last_pull_at
        if last_pull is None or now - last_pull > dt.timedelta(hours=rules.warn_after_hours):
            when = (
                last_pull.astimezone(rules.zone).strftime("%Y-%m-%d %H:%M")
                if last_pull
                else "never"
            )
            attention.append(
                {
                    "kind": "price_list_old",
                    "message": f"Prices were last updated {when} (more than "
                    f"{rules.warn_after_hours} h ago): check shelf prices.",
                }
            )
    session = LocalTillSession.objects.filter(closed_at__isnull=True).first()
    return {
        "online": bool(state and state.online),
        "outbox_depth": outbox_depth(),
        "oldest_unsent_age_s": _age_s(oldest_unsent_age(now=now)),
        "last_sync_at": state.last_sync_ok_at.isoformat()
        if state and state.last_sync_ok_at
        else None,
        "last_error": state.last_error if state else "",
        "high_water": {state.register_code: state.hq_high_water} if state else {},
        "store": state.store_code if state else None,
        "register": state.register_code if state else None,
        "session_id": session.session_id if session else None,
        "devices": devices,
        "attention": attention,
        "server_time": now.isoformat(),
    }
