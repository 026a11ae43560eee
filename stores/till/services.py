"""The till's operations: each one local transaction, and each completed one appends its
event to the outbox in that same transaction (``stores.outbox.outbox_append``), with the
register's next ``seq``. Nothing here waits on head office.

Services take the signed-in cashier (``LocalCashier``) and keyword arguments; they validate,
write and return the record they made. Receipts are printed after commit
(``stores.till.receipts``); a payment terminal is asked *before* the write transaction opens,
so the database's single write lock is never held across a device round trip.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from devices.scales import ScaleUnavailable, get_scale
from devices.state import device_state_set
from devices.terminals import CardResult, TerminalOffline, get_terminal
from stores.local import (
    LocalBasket,
    LocalCashier,
    LocalCashMovement,
    LocalProduct,
    LocalReceipt,
    LocalTillSession,
    NodeState,
    OutboxEvent,
)
from stores.outbox import outbox_append
from stores.till import errors
from stores.till.auth import supervisor_approve
from stores.till.pricing import (
    ZERO,
    PricedBasket,
    StoreRules,
    TaxTable,
    amount_of,
    embedded_price_line,
    parse_decimal,
    price_basket,
    price_of,
    qty_of,
    qty_text,
    scan_resolve,
    store_rules,
)
from stores.till.receipts import print_after_commit, receipt_text

TENDER_METHODS = ("cash", "card", "voucher")
CASH_KINDS = {"pay_in": None, "pay_out": "cash_pay_out", "drop": "cash_drop"}
ADJUSTMENT_REASONS = ("damage", "theft", "receipt", "transfer_in", "transfer_out", "other")
EMBEDDED_PRICE = "price embedded in barcode"
TERMINAL_DEVICE = "terminal-1"


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def _reason(value: str | None, *, what: str = "reason", required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise errors.ValidationFailed(f"Give a {what}.", code="reason_required")
    if len(text) > 200:
        raise errors.ValidationFailed(f"The {what} is longer than 200 characters.")
    return text


def session_current() -> LocalTillSession | None:
    return LocalTillSession.objects.filter(closed_at__isnull=True).first()


def _open_session() -> LocalTillSession:
    session = session_current()
    if session is None:
        raise errors.NoOpenSession()
    return session


def _event_data(event: OutboxEvent) -> dict[str, Any]:
    return json.loads(event.payload)["data"]


# --- sessions -------------------------------------------------------------------------------


def session_open(
    *, cashier: LocalCashier, opening_float: object, now: dt.datetime | None = None
) -> LocalTillSession:
    now = _now(now)
    rules = store_rules()
    amount = amount_of(opening_float, rules, what="opening_float", allow_zero=True)
    with transaction.atomic():
        if session_current() is not None:
            raise errors.SessionAlreadyOpen()
        session_id = str(uuid.uuid4())
        day = rules.business_date(now)
        event = outbox_append(
            type="session_open",
            payload={
                "session_id": session_id,
                "cashier": cashier.code,
                "opening_float": rules.text(amount),
            },
            occurred_at=now,
            business_date=day,
        )
        return LocalTillSession.objects.create(
            session_id=session_id,
            cashier=cashier.code,
            opening_float=amount,
            opened_at=now,
            business_date=day,
            open_seq=event.seq,
        )


def z_report_compute(
    session: LocalTillSession, rules: StoreRules, *, counted_cash: Decimal, close_seq: int
) -> dict[str, Any]:
    """The Z-report of ``session``: its sales and returns as this register recorded them,
    tender totals (sales minus refunds), cash movements, expected and counted cash."""
    sales = returns = 0
    gross = tax = ZERO
    tenders: dict[str, Decimal] = {"cash": ZERO, "card": ZERO}
    for receipt in LocalReceipt.objects.filter(session_id=session.session_id).order_by("seq"):
        sign = Decimal(1) if receipt.type == "sale" else Decimal(-1)
        if receipt.type == "sale":
            sales += 1
        else:
            returns += 1
        gross += sign * receipt.gross
        tax += sign * receipt.tax
        for tender in receipt.data["tenders"]:
            taken = Decimal(tender["amount"]) - Decimal(tender.get("change") or "0")
            tenders[tender["method"]] = tenders.get(tender["method"], ZERO) + sign * taken
    moves = {"pay_in": ZERO, "pay_out": ZERO, "drop": ZERO}
    for kind, amount in session.cash_movements.values_list("kind", "amount"):
        moves[kind] += amount
    expected = (
        session.opening_float + tenders["cash"] + moves["pay_in"] - moves["pay_out"] - moves["drop"]
    )
    text = rules.text
    return {
        "session_id": session.session_id,
        "first_seq": session.open_seq,
        "last_seq": close_seq - 1,
        "sale_count": sales,
        "return_count": returns,
        "gross": text(gross),
        "tax": text(tax),
        "net": text(gross - tax),
        "tenders": {method: text(amount) for method, amount in tenders.items()},
        "counted_cash": text(counted_cash),
        "opening_float": text(session.opening_float),
        "cash_movements": {kind: text(amount) for kind, amount in moves.items()},
        "expected_cash": text(expected),
        "over_short": text(counted_cash - expected),
        "cashier": session.cashier,
    }


def session_close(
    *,
    cashier: LocalCashier,
    session_id: str,
    counted_cash: object,
    now: dt.datetime | None = None,
) -> LocalTillSession:
    """Close the session with the cash counted in the drawer; the Z-report is its event."""
    now = _now(now)
    rules = store_rules()
    counted = amount_of(counted_cash, rules, what="counted_cash", allow_zero=True)
    with transaction.atomic():
        # The node state row first: the Z-report names the seq before its own.
        state = NodeState.objects.select_for_update().filter(pk=1).first()
        session = LocalTillSession.objects.filter(session_id=session_id).first()
        if session is None or state is None:
            raise errors.SessionNotFound()
        if not session.is_open:
            raise errors.Conflict("This session is already closed.", code="session_closed")
        baskets = LocalBasket.objects.filter(session=session, status=LocalBasket.Status.OPEN)
        if any(basket.lines for basket in baskets):
            raise errors.Conflict(
                "A basket with lines is still open: complete or void it first.",
                code="basket_open",
            )
        baskets.update(status=LocalBasket.Status.VOIDED, void_reason="empty at session close")
        report = z_report_compute(session, rules, counted_cash=counted, close_seq=state.next_seq)
        report["closed_by"] = cashier.code
        event = outbox_append(
            type="session_close",
            payload=report,
            occurred_at=now,
            business_date=rules.business_date(now),
        )
        session.closed_at = now
        session.close_seq = event.seq
        session.counted_cash = counted
        session.z_report = report
        session.open_slot = None
        session.save()
        return session


# --- baskets --------------------------------------------------------------------------------


def basket_start(*, cashier: LocalCashier, now: dt.datetime | None = None) -> LocalBasket:
    now = _now(now)
    store_rules()
    with transaction.atomic():
        session = _open_session()
        return LocalBasket.objects.create(
            basket_id=uuid.uuid4(),
            session=session,
            cashier=cashier.code,
            created_at=now,
            updated_at=now,
        )


def _basket_for_update(basket_id: object) -> LocalBasket:
    try:
        key = uuid.UUID(str(basket_id))
    except ValueError:
        raise errors.BasketNotFound() from None
    basket = LocalBasket.objects.select_for_update().filter(pk=key).first()
    if basket is None:
        raise errors.BasketNotFound()
    if basket.status != LocalBasket.Status.OPEN:
        raise errors.BasketClosed(f"Basket {basket.basket_id} is {basket.status}.")
    return basket


def _line(basket: LocalBasket, line_no: int) -> dict[str, Any]:
    for line in basket.lines:
        if line["line_no"] == line_no:
            return line
    raise errors.LineNotFound(f"The basket has no line {line_no}.")


def basket_price(basket: LocalBasket, rules: StoreRules | None = None) -> PricedBasket:
    rules = rules or store_rules()
    codes = [line["tax_code"] for line in basket.lines]
    return price_basket(
        basket.lines,
        rules=rules,
        taxes=TaxTable(rules, codes),
        discount=basket.discount,
        tenders=basket.tenders,
    )


def _save(basket: LocalBasket, now: dt.datetime, rules: StoreRules) -> LocalBasket:
    priced = basket_price(basket, rules)
    if any(p.line_total < 0 for p in priced.lines):
        raise errors.InvalidAmount("A discount may not make a line negative.")
    if basket.tenders and priced.paid > priced.gross:
        raise errors.InvalidAmount(
            "The basket would be paid more than its total: remove tenders first.",
            code="overpaid",
        )
    basket.updated_at = now
    basket.save()
    return basket


def _no_tenders(basket: LocalBasket) -> None:
    if basket.tenders:
        raise errors.Conflict(
            "Payment has started on this basket: its lines can no longer change.",
            code="basket_tendered",
        )


def _weight_from_scale(product: LocalProduct) -> Decimal:
    """A weighed item with no weight given: the scale's stable weight, if the till has one."""
    scale = get_scale()
    if scale is None:
        raise errors.WeightRequired(
            f"{product.name} is sold by weight: weigh it and give qty in kg."
        )
    try:
        weight = scale.read_weight()
    except ScaleUnavailable as exc:
        raise errors.WeightRequired(
            f"{product.name} is sold by weight and {exc}: weigh it again or give qty in kg."
        ) from None
    grams = weight.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return qty_of(grams, weighed=True, what="the scale's weight")


def basket_line_add(
    *,
    cashier: LocalCashier,
    basket_id: object,
    code: str,
    qty: object = None,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> LocalBasket:
    """Add what ``code`` (a barcode, an in-store EAN-13 with weight or price, or a SKU) names.

    A weighed product takes its weight from the barcode, from ``qty`` (kg) or from the scale
    (``devices.scales``, when the till has one); a repeated
    scan of a plain product adds to its line. A price label below the list price is a price
    override: it needs a supervisor when the store puts ``price_override`` behind one.
    A basket percentage discount was approved for the basket as it was: adding to the
    basket clears it (approve it again for the larger basket)."""
    now = _now(now)
    rules = store_rules()
    scanned = scan_resolve(str(code or ""), rules)
    product: LocalProduct = scanned.product
    day = rules.business_date(now)
    price = price_of(product, day, rules)
    line: dict[str, Any] = {
        "code": scanned.code,
        "sku": product.sku,
        "name": product.name,
        "weighed": product.weighed,
        "tax_code": product.tax_code,
        "unit_price": rules.text(price),
        "list_price": rules.text(price),
        "discount": rules.text(ZERO),
        "discount_reason": "",
        "price_override_reason": None,
        "authorised_by": "",
    }
    if scanned.qty is not None:
        if qty is not None:
            raise errors.InvalidQuantity("This barcode carries its weight: send no qty.")
        amount = scanned.qty
    elif scanned.label_price is not None:
        if product.weighed:
            amount, rounding = embedded_price_line(
                label=scanned.label_price, unit_price=price, rules=rules
            )
            line["discount"] = rules.text(rounding)
            line["discount_reason"] = EMBEDDED_PRICE if rounding else ""
        else:
            amount = Decimal(1)
            if scanned.label_price != price:
                line["unit_price"] = rules.text(scanned.label_price)
                line["price_override_reason"] = EMBEDDED_PRICE
            if scanned.label_price < price:
                who = supervisor_approve(
                    operation="price_override",
                    cashier=cashier,
                    rules=rules,
                    supervisor=supervisor,
                    supervisor_pin=supervisor_pin,
                )
                line["authorised_by"] = who
    elif qty is None or qty == "":
        amount = _weight_from_scale(product) if product.weighed else Decimal(1)
    else:
        amount = qty_of(qty, weighed=product.weighed)
    if scanned.qty is not None:
        amount = qty_of(amount, weighed=True)
    line["qty"] = qty_text(amount, weighed=product.weighed)
    # The quantity (or price) was read from the label: it cannot be typed over.
    line["from_label"] = scanned.qty is not None or scanned.label_price is not None
    with transaction.atomic():
        basket = _basket_for_update(basket_id)
        _no_tenders(basket)
        plain = not product.weighed and scanned.label_price is None
        same = next(
            (
                existing
                for existing in basket.lines
                if plain
                and existing["sku"] == product.sku
                and not existing["weighed"]
                and existing["unit_price"] == existing["list_price"] == line["unit_price"]
                and Decimal(existing["discount"]) == 0
                and existing["code"] == line["code"]
            ),
            None,
        )
        if same is not None:
            same["qty"] = qty_text(
                qty_of(Decimal(same["qty"]) + amount, weighed=False), weighed=False
            )
        else:
            line["line_no"] = basket.next_line_no
            basket.next_line_no += 1
            basket.lines.append(line)
        _basket_grew(basket)
        return _save(basket, now, rules)


def _basket_grew(basket: LocalBasket) -> None:
    """A percentage basket discount approved for fewer goods would grow with the basket:
    drop it (an amount off stays what was approved)."""
    if basket.discount and basket.discount.get("percent") is not None:
        basket.discount = None


def basket_line_change(
    *,
    cashier: LocalCashier,
    basket_id: object,
    line_no: int,
    qty: object,
    now: dt.datetime | None = None,
) -> LocalBasket:
    now = _now(now)
    rules = store_rules()
    with transaction.atomic():
        basket = _basket_for_update(basket_id)
        _no_tenders(basket)
        line = _line(basket, line_no)
        if line.get("from_label"):
            raise errors.InvalidQuantity(
                "This line's quantity comes from its barcode label; remove the line instead."
            )
        old = Decimal(line["qty"])
        new = qty_of(qty, weighed=line["weighed"])
        line["qty"] = qty_text(new, weighed=line["weighed"])
        if Decimal(line["discount"]) and old and new < old:
            # A line discount was approved as an amount for the line as it was: fewer units
            # scale it down; more units keep the amount approved (never more).
            line["discount"] = rules.text(rules.money(Decimal(line["discount"]) * new / old))
        if new > old:
            _basket_grew(basket)
        return _save(basket, now, rules)


def basket_line_remove(
    *,
    cashier: LocalCashier,
    basket_id: object,
    line_no: int,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> LocalBasket:
    now = _now(now)
    rules = store_rules()
    supervisor_approve(
        operation="void_line",
        cashier=cashier,
        rules=rules,
        supervisor=supervisor,
        supervisor_pin=supervisor_pin,
    )
    with transaction.atomic():
        basket = _basket_for_update(basket_id)
        _no_tenders(basket)
        _line(basket, line_no)
        basket.lines = [line for line in basket.lines if line["line_no"] != line_no]
        return _save(basket, now, rules)


def basket_line_override(
    *,
    cashier: LocalCashier,
    basket_id: object,
    line_no: int,
    reason: str,
    unit_price: object = None,
    discount: object = None,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> LocalBasket:
    """A price override (``unit_price``) or a line discount (``discount``, an amount off the
    line), with the reason and who authorised it; the store decides which need a supervisor."""
    now = _now(now)
    rules = store_rules()
    if (unit_price is None) == (discount is None):
        raise errors.ValidationFailed(
            "Give either unit_price or discount.", code="invalid_override"
        )
    text = _reason(reason)
    operation = "price_override" if unit_price is not None else "line_discount"
    who = supervisor_approve(
        operation=operation,
        cashier=cashier,
        rules=rules,
        supervisor=supervisor,
        supervisor_pin=supervisor_pin,
    )
    with transaction.atomic():
        basket = _basket_for_update(basket_id)
        _no_tenders(basket)
        line = _line(basket, line_no)
        if unit_price is not None:
            price = amount_of(unit_price, rules, what="unit_price", allow_zero=True)
            line["unit_price"] = rules.text(price)
            line["price_override_reason"] = text
        else:
            amount = amount_of(discount, rules, what="discount", allow_zero=True)
            if amount > rules.money(Decimal(line["qty"]) * Decimal(line["unit_price"])):
                raise errors.InvalidAmount("The discount is more than the line is worth.")
            line["discount"] = rules.text(amount)
            line["discount_reason"] = text
        line["authorised_by"] = who or cashier.code
        return _save(basket, now, rules)


def basket_discount_set(
    *,
    cashier: LocalCashier,
    basket_id: object,
    reason: str,
    amount: object = None,
    percent: object = None,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> LocalBasket:
    """A discount on the whole basket (an amount or a percentage), spread over its lines in
    whole minor units when priced (each line carries its share in ``discount``)."""
    now = _now(now)
    rules = store_rules()
    if (amount is None) == (percent is None):
        raise errors.ValidationFailed("Give either amount or percent.", code="invalid_discount")
    text = _reason(reason)
    who = supervisor_approve(
        operation="basket_discount",
        cashier=cashier,
        rules=rules,
        supervisor=supervisor,
        supervisor_pin=supervisor_pin,
    )
    if percent is not None:
        pct = parse_decimal(percent, what="percent")
        if not ZERO <= pct <= 100 or pct != pct.quantize(Decimal("0.01")):
            raise errors.InvalidAmount("percent is between 0 and 100, with at most 2 decimals.")
        value: dict[str, Any] = {"percent": str(pct)}
    else:
        value = {"amount": rules.text(amount_of(amount, rules, what="amount", allow_zero=True))}
    value.update(reason=text, authorised_by=who or cashier.code)
    with transaction.atomic():
        basket = _basket_for_update(basket_id)
        _no_tenders(basket)
        if not basket.lines:
            raise errors.BasketEmpty()
        basket.discount = value
        priced = basket_price(basket, rules)
        if "amount" in value and Decimal(value["amount"]) > priced.basket_discount:
            raise errors.InvalidAmount("The discount is more than the basket is worth.")
        return _save(basket, now, rules)


def _card_authorise(
    *, amount: Decimal, rules: StoreRules, reference: str, offline_already: Decimal, refund: bool
) -> dict[str, Any]:
    """Ask the terminal; offline, store and forward up to the store's offline card limit."""
    terminal = get_terminal()
    try:
        ask = terminal.refund if refund else terminal.authorize
        result: CardResult = ask(amount=amount, currency=rules.currency, reference=reference)
    except TerminalOffline as exc:
        device_state_set(device=terminal.device, kind="terminal", state="offline", detail=str(exc))
        limit = rules.offline_card_limit
        if refund:
            raise errors.TenderRefused(
                "The card terminal is offline: refund in cash or as a voucher.",
                code="card_offline",
            ) from None
        if offline_already + amount > limit:
            raise errors.TenderRefused(
                f"The card terminal is offline and {rules.text(offline_already + amount)} is "
                f"over this store's offline card limit of {rules.text(limit)}: take cash.",
                code="card_offline_limit",
                details={"offline_card_limit": rules.text(limit)},
            ) from None
        return {"reference": f"SAF-{uuid.uuid4().hex[:12].upper()}", "offline_authorized": True}
    device_state_set(device=terminal.device, kind="terminal", state="ok")
    if not result.approved:
        raise errors.TenderRefused(
            f"The card was declined: {result.message or 'no reason given'}.", code="card_declined"
        )
    return {"reference": result.reference, "offline_authorized": False}


def _card_reverse(card: Mapping[str, Any], *, amount: Decimal, rules: StoreRules) -> None:
    """Undo at the terminal a charge or refund it approved that the till then did not record
    (the check under the write lock refused). A store-and-forward authorisation never reached
    the terminal: nothing to undo. A reversal that fails is put on the attention list (the
    terminal's device state) for the operator to void by hand; it never hides the refusal."""
    if card.get("offline_authorized") or not card.get("reference"):
        return
    terminal = get_terminal()
    reference = str(card["reference"])
    try:
        result = terminal.void(amount=amount, currency=rules.currency, reference=reference)
        if result.approved:
            return
        problem = result.message or "declined"
    except TerminalOffline as exc:
        problem = str(exc)
    device_state_set(
        device=terminal.device,
        kind="terminal",
        state="error",
        detail=f"void {reference} ({rules.text(amount)} {rules.currency}) at the terminal by "
        f"hand: the till did not record it and could not reverse it ({problem})",
    )


def _attempt_reference(base: str) -> str:
    """The terminal's merchant reference of one attempt: a retry is a new transaction."""
    return f"{base}-{uuid.uuid4().hex[:8]}"


def basket_tender_add(
    *,
    cashier: LocalCashier,
    basket_id: object,
    method: str,
    amount: object = None,
    reference: str | None = None,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> LocalBasket:
    """Take a payment: cash (more than is due gives change), card (through the terminal;
    offline up to the store's limit) or a voucher. ``amount`` defaults to what is due.

    The till cannot check a voucher (no voucher register on the node), so a voucher needs
    its ``reference`` and always a supervisor (there is no store setting for it among
    ``SUPERVISOR_OPERATIONS``)."""
    now = _now(now)
    rules = store_rules()
    if method not in TENDER_METHODS:
        raise errors.ValidationFailed(
            f"method is one of {', '.join(TENDER_METHODS)}.", code="invalid_tender"
        )
    who = ""
    if method == "voucher":
        if not (reference or "").strip():
            raise errors.ValidationFailed(
                "A voucher needs its reference (the number on the voucher).",
                code="reference_required",
            )
        who = supervisor_approve(
            operation="voucher",
            cashier=cashier,
            rules=rules,
            supervisor=supervisor,
            supervisor_pin=supervisor_pin,
            always=True,
        )
    basket = LocalBasket.objects.filter(pk=_basket_for_update_key(basket_id)).first()
    if basket is None:
        raise errors.BasketNotFound()
    if basket.status != LocalBasket.Status.OPEN:
        raise errors.BasketClosed()
    if not basket.lines:
        raise errors.BasketEmpty()
    due = basket_price(basket, rules).due
    if due <= 0:
        raise errors.Conflict("Nothing is due on this basket.", code="nothing_due")
    value = due if amount in (None, "") else amount_of(amount, rules, what="amount")
    if method != "cash" and value > due:
        raise errors.InvalidAmount(
            f"A {method} payment cannot be more than is due ({rules.text(due)}).",
            code="tender_exceeds_due",
        )
    tender: dict[str, Any] = {
        "method": method,
        "amount": rules.text(value),
        "change": rules.text(max(value - due, ZERO)),
        "reference": (reference or "").strip()[:120] or None,
        "offline_authorized": False,
    }
    if who:
        tender["authorised_by"] = who
    if method == "card":
        offline = sum(
            (Decimal(t["amount"]) for t in basket.tenders if t.get("offline_authorized")), ZERO
        )
        tender.update(
            _card_authorise(
                amount=value,
                rules=rules,
                reference=_attempt_reference(str(basket.basket_id)),
                offline_already=offline,
                refund=False,
            )
        )
    try:
        with transaction.atomic():
            basket = _basket_for_update(basket_id)
            due_now = basket_price(basket, rules).due
            if due_now != due:
                raise errors.Conflict(
                    "The basket changed while paying: try again.", code="basket_changed"
                )
            basket.tenders.append(tender)
            return _save(basket, now, rules)
    except Exception:
        # The card was charged before the transaction; it did not record the tender.
        if method == "card":
            _card_reverse(tender, amount=value, rules=rules)
        raise


def _basket_for_update_key(basket_id: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(basket_id))
    except ValueError:
        raise errors.BasketNotFound() from None


def _sale_lines(priced: PricedBasket, rules: StoreRules) -> list[dict[str, Any]]:
    rendered = []
    for number, p in enumerate(priced.lines, start=1):
        line = p.line
        row: dict[str, Any] = {
            "line_no": number,
            "sku": line["sku"],
            "qty": line["qty"],
            "unit_price": line["unit_price"],
            "discount": rules.text(p.discount),
            "tax_code": line["tax_code"],
            "line_total": rules.text(p.line_total),
            "price_override_reason": line.get("price_override_reason") or None,
            "name": line["name"],
            "tax": rules.text(p.tax),
        }
        for extra in ("discount_reason", "authorised_by", "original_line_no"):
            if line.get(extra):
                row[extra] = line[extra]
        rendered.append(row)
    return rendered


def _totals(priced: PricedBasket, rules: StoreRules) -> dict[str, str]:
    return {
        "net": rules.text(priced.net),
        "tax": rules.text(priced.tax),
        "gross": rules.text(priced.gross),
    }


def _record_receipt(
    *,
    kind: str,
    payload: dict[str, Any],
    now: dt.datetime,
    rules: StoreRules,
    session: LocalTillSession,
    cashier: LocalCashier,
    priced: PricedBasket,
    original_receipt_no: str = "",
) -> LocalReceipt:
    event = outbox_append(
        type=kind, payload=payload, occurred_at=now, business_date=rules.business_date(now)
    )
    data = _event_data(event)
    when = now.astimezone(rules.zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    text = receipt_text(kind=kind, data=data, rules=rules, when=when)
    receipt = LocalReceipt.objects.create(
        event_id=event.event_id,
        type=kind,
        seq=event.seq,
        receipt_no=event.receipt_no,
        basket_id=str(payload.get("basket_id") or ""),
        session_id=session.session_id,
        cashier=cashier.code,
        occurred_at=now,
        business_date=rules.business_date(now),
        gross=priced.gross,
        tax=priced.tax,
        data=data,
        receipt_text=text,
        original_receipt_no=original_receipt_no,
    )
    print_after_commit(name=receipt.receipt_no, text=text)
    return receipt


def _completed_receipt(basket_id: object) -> LocalReceipt | None:
    """The sale of ``basket_id`` when that basket is already completed, else None."""
    key = _basket_for_update_key(basket_id)
    basket = LocalBasket.objects.select_for_update().filter(pk=key).first()
    if basket is None or basket.status != LocalBasket.Status.COMPLETED:
        return None
    receipt = LocalReceipt.objects.filter(basket_id=str(key), type="sale").first()
    if receipt is None:  # completed, but its receipt was pruned: nothing to answer with
        raise errors.BasketClosed(f"Basket {key} is completed.")
    return receipt


def basket_complete(
    *, cashier: LocalCashier, basket_id: object, now: dt.datetime | None = None
) -> LocalReceipt:
    """Complete a paid basket: the sale's event, its receipt and the basket's state, in one
    transaction; the receipt prints after it has committed.

    Completing a basket that is already completed answers its sale's receipt again (nothing
    is written or printed): a client whose answer was lost retries safely."""
    now = _now(now)
    rules = store_rules()
    with transaction.atomic():
        done = _completed_receipt(basket_id)
        if done is not None:
            return done
        basket = _basket_for_update(basket_id)
        if not basket.lines:
            raise errors.BasketEmpty()
        priced = basket_price(basket, rules)
        if priced.due > 0:
            raise errors.BasketNotPaid(
                f"{rules.text(priced.due)} {rules.currency} is still due.",
                details={"due": rules.text(priced.due)},
            )
        session = basket.session
        if not session.is_open:
            raise errors.NoOpenSession("The basket's session is closed.")
        payload: dict[str, Any] = {
            "basket_id": str(basket.basket_id),
            "cashier": basket.cashier,
            "currency": rules.currency,
            "lines": _sale_lines(priced, rules),
            "tenders": [
                {
                    "method": t["method"],
                    "amount": t["amount"],
                    "change": t["change"],
                    "reference": t.get("reference"),
                    "offline_authorized": bool(t.get("offline_authorized")),
                }
                for t in basket.tenders
            ],
            "totals": _totals(priced, rules),
            "session_id": session.session_id,
        }
        if basket.discount:
            payload["basket_discount"] = {
                **basket.discount,
                "amount": rules.text(priced.basket_discount),
            }
        receipt = _record_receipt(
            kind="sale",
            payload=payload,
            now=now,
            rules=rules,
            session=session,
            cashier=cashier,
            priced=priced,
        )
        basket.status = LocalBasket.Status.COMPLETED
        basket.updated_at = now
        basket.save(update_fields=["status", "updated_at"])
        return receipt


def basket_void(
    *,
    cashier: LocalCashier,
    basket_id: object,
    reason: str = "",
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> LocalBasket:
    """Abandon an open basket (nothing was sold: no event). Card payments already taken on it
    are refused: refund them by removing the basket's tenders at the terminal first."""
    now = _now(now)
    rules = store_rules()
    supervisor_approve(
        operation="void_basket",
        cashier=cashier,
        rules=rules,
        supervisor=supervisor,
        supervisor_pin=supervisor_pin,
    )
    with transaction.atomic():
        basket = _basket_for_update(basket_id)
        if any(t["method"] == "card" for t in basket.tenders):
            raise errors.Conflict(
                "A card payment was taken on this basket: complete it, or return it after.",
                code="basket_tendered",
            )
        basket.status = LocalBasket.Status.VOIDED
        basket.void_reason = _reason(reason, required=False)
        basket.updated_at = now
        basket.save(update_fields=["status", "void_reason", "updated_at"])
        return basket


# --- returns --------------------------------------------------------------------------------


def _return_lines_from_receipt(
    original: LocalReceipt, wanted: Sequence[Mapping[str, Any]], rules: StoreRules
) -> list[dict[str, Any]]:
    by_no = {line["line_no"]: line for line in original.data["lines"]}
    lines: list[dict[str, Any]] = []
    taken: dict[int, Decimal] = {}
    for position, item in enumerate(wanted):
        number = item.get("original_line_no")
        if number is None and item.get("code"):
            scanned = scan_resolve(str(item["code"]), rules)
            number = next(
                (n for n, line in by_no.items() if line["sku"] == scanned.product.sku), None
            )
        if number not in by_no:
            raise errors.ReturnRefused(
                f"Line {position + 1}: receipt {original.receipt_no} has no such line."
            )
        sold = by_no[number]
        weighed = "." in sold["qty"]
        qty = (
            Decimal(sold["qty"])
            if item.get("qty") in (None, "")
            else qty_of(item["qty"], weighed=weighed)
        )
        before = original.returned.get(str(number), {})
        done_qty = Decimal(before.get("qty", "0")) + taken.get(number, ZERO)
        left = Decimal(sold["qty"]) - done_qty
        if qty > left:
            raise errors.ReturnRefused(
                f"Line {number} of {original.receipt_no}: {qty} to return, {left} left to return.",
                details={"original_line_no": number, "returnable": str(left)},
            )
        taken[number] = taken.get(number, ZERO) + qty
        if qty == left:  # the last of the line: exactly what is left of its discount
            discount = Decimal(sold["discount"]) - Decimal(before.get("discount", "0"))
        else:
            discount = rules.money(Decimal(sold["discount"]) * qty / Decimal(sold["qty"]))
        lines.append(
            {
                "sku": sold["sku"],
                "name": sold.get("name") or sold["sku"],
                "qty": qty_text(qty, weighed=weighed),
                "unit_price": sold["unit_price"],
                "discount": rules.text(discount),
                "tax_code": sold["tax_code"],
                "price_override_reason": sold.get("price_override_reason"),
                "original_line_no": number,
            }
        )
    return lines


def _return_lines_by_code(
    wanted: Sequence[Mapping[str, Any]], rules: StoreRules, day: dt.date
) -> list[dict[str, Any]]:
    lines = []
    for position, item in enumerate(wanted):
        if not item.get("code"):
            raise errors.ReturnRefused(
                f"Line {position + 1}: without the original receipt, name the product (code)."
            )
        scanned = scan_resolve(str(item["code"]), rules)
        product = scanned.product
        price = price_of(product, day, rules)
        if scanned.qty is not None:
            qty = scanned.qty
        elif item.get("qty") in (None, ""):
            if product.weighed:
                raise errors.WeightRequired(f"{product.name} is sold by weight: give qty.")
            qty = Decimal(1)
        else:
            qty = qty_of(item["qty"], weighed=product.weighed)
        lines.append(
            {
                "sku": product.sku,
                "name": product.name,
                "qty": qty_text(qty, weighed=product.weighed),
                "unit_price": rules.text(price),
                "discount": rules.text(ZERO),
                "tax_code": product.tax_code,
                "price_override_reason": None,
            }
        )
    return lines


def return_create(
    *,
    cashier: LocalCashier,
    lines: Sequence[Mapping[str, Any]],
    receipt_no: str | None = None,
    tenders: Sequence[Mapping[str, Any]] | None = None,
    reason: str = "",
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    repeat_override: bool = False,
    now: dt.datetime | None = None,
) -> LocalReceipt:
    """A return, refunded by ``tenders`` (default: cash for the whole amount).

    With the receipt number of a sale this register holds (its own sales), lines name the
    original's lines and quantities are checked against what is left to return. A receipt
    the node does not hold (another register's, or one it has pruned) cannot be checked
    here: it is taken as a return without receipt (a supervisor must approve, prices are
    today's list prices) and carries ``original_receipt_no`` for head office to reconcile.

    Since the node cannot know what such a receipt sold, it allows one return per SKU per
    foreign receipt number: once a return of a SKU against that number is recorded here,
    another one of the same SKU is refused (``already_returned``) unless the supervisor
    approving it overrides on purpose: ``repeat_override`` with a ``reason`` (head office
    then sees the reason on the event). The check is repeated under the write lock, so two
    tills' requests to this node cannot both pass.
    """
    now = _now(now)
    rules = store_rules()
    if not lines:
        raise errors.ReturnRefused("Name at least one line to return.")
    day = rules.business_date(now)
    receipt_no = (receipt_no or "").strip()
    original = (
        LocalReceipt.objects.filter(receipt_no=receipt_no, type="sale").first()
        if receipt_no
        else None
    )
    if original is not None:
        rendered = _return_lines_from_receipt(original, lines, rules)
        who = supervisor_approve(
            operation="return_with_receipt",
            cashier=cashier,
            rules=rules,
            supervisor=supervisor,
            supervisor_pin=supervisor_pin,
        )
    else:
        rendered = _return_lines_by_code(lines, rules, day)
        who = supervisor_approve(
            operation="return_without_receipt",
            cashier=cashier,
            rules=rules,
            supervisor=supervisor,
            supervisor_pin=supervisor_pin,
            always=bool(receipt_no),
        )
        if receipt_no:
            _foreign_repeat_check(receipt_no, rendered, override=repeat_override, reason=reason)
    taxes = TaxTable(rules, [line["tax_code"] for line in rendered])
    priced = price_basket(rendered, rules=rules, taxes=taxes)
    refunds = _refunds(tenders, priced.gross, rules)
    for refund in refunds:
        if refund["method"] == "voucher" and not refund.get("reference"):
            refund["reference"] = f"VCH-{uuid.uuid4().hex[:12].upper()}"
    cards: list[dict[str, Any]] = []  # refunds the terminal approved
    try:
        for refund in refunds:
            if refund["method"] == "card":
                refund.update(
                    _card_authorise(
                        amount=Decimal(refund["amount"]),
                        rules=rules,
                        reference=_attempt_reference(receipt_no or "no-receipt"),
                        offline_already=ZERO,
                        refund=True,
                    )
                )
                cards.append(refund)
        return _return_record(
            cashier=cashier,
            rules=rules,
            now=now,
            lines=lines,
            receipt_no=receipt_no,
            original=original,
            priced=priced,
            refunds=refunds,
            reason=reason,
            who=who,
            repeat_override=repeat_override,
        )
    except Exception:
        # Refunded at the terminal before the transaction, and not recorded: reverse them.
        for card in cards:
            _card_reverse(card, amount=Decimal(card["amount"]), rules=rules)
        raise


def _return_record(
    *,
    cashier: LocalCashier,
    rules: StoreRules,
    now: dt.datetime,
    lines: Sequence[Mapping[str, Any]],
    receipt_no: str,
    original: LocalReceipt | None,
    priced: PricedBasket,
    refunds: list[dict[str, Any]],
    reason: str,
    who: str,
    repeat_override: bool,
) -> LocalReceipt:
    """The return's transaction: checked again under the write lock, then recorded."""
    with transaction.atomic():
        session = _open_session()
        # checked again under the write lock: two returns of one receipt cannot both pass
        if original is not None:
            original = LocalReceipt.objects.select_for_update().get(pk=original.pk)
            _return_lines_from_receipt(original, lines, rules)
        elif receipt_no:
            NodeState.objects.select_for_update().filter(pk=1).first()
            _foreign_repeat_check(
                receipt_no,
                [p.line for p in priced.lines],
                override=repeat_override,
                reason=reason,
            )
        payload: dict[str, Any] = {
            "basket_id": str(uuid.uuid4()),
            "cashier": cashier.code,
            "currency": rules.currency,
            "lines": _sale_lines(priced, rules),
            "tenders": refunds,
            "totals": _totals(priced, rules),
            "session_id": session.session_id,
            "original_event_id": str(original.event_id) if original else None,
        }
        for line in payload["lines"]:
            line.setdefault("original_line_no", None)
        if receipt_no and original is None:
            payload["original_receipt_no"] = receipt_no
        if reason.strip():
            payload["reason"] = _reason(reason)
        if who:
            payload["authorised_by"] = who
        receipt = _record_receipt(
            kind="return",
            payload=payload,
            now=now,
            rules=rules,
            session=session,
            cashier=cashier,
            priced=priced,
            original_receipt_no=receipt_no,
        )
        if original is not None:
            returned = dict(original.returned)
            for line in receipt.data["lines"]:
                key = str(line["original_line_no"])
                before = returned.get(key, {"qty": "0", "discount": "0"})
                returned[key] = {
                    "qty": str(Decimal(before["qty"]) + Decimal(line["qty"])),
                    "discount": str(Decimal(before["discount"]) + Decimal(line["discount"])),
                }
            original.returned = returned
            original.save(update_fields=["returned"])
        return receipt


def _foreign_repeat_check(
    receipt_no: str, lines: Sequence[Mapping[str, Any]], *, override: bool, reason: str
) -> None:
    """Refuse a return of a SKU already returned here against the foreign ``receipt_no``,
    unless overridden on purpose (``override`` and a reason); see ``return_create``."""
    wanted = {line["sku"] for line in lines}
    done: set[str] = set()
    for data in LocalReceipt.objects.filter(
        type="return", original_receipt_no=receipt_no
    ).values_list("data", flat=True):
        done.update(line["sku"] for line in data["lines"])
    again = sorted(wanted & done)
    if not again:
        return
    if override and reason.strip():
        return
    raise errors.ReturnRefused(
        f"{', '.join(again)} was already returned against receipt {receipt_no}, which this "
        "till cannot check: a supervisor may override with repeat_override and a reason.",
        code="already_returned",
        details={"receipt_no": receipt_no, "skus": again},
    )


def _refunds(
    tenders: Sequence[Mapping[str, Any]] | None, gross: Decimal, rules: StoreRules
) -> list[dict[str, Any]]:
    if not tenders:
        tenders = [{"method": "cash", "amount": rules.text(gross)}]
    refunds = []
    for tender in tenders:
        method = tender.get("method")
        if method not in TENDER_METHODS:
            raise errors.ValidationFailed(
                f"A refund's method is one of {', '.join(TENDER_METHODS)}.", code="invalid_tender"
            )
        refunds.append(
            {
                "method": method,
                "amount": rules.text(amount_of(tender.get("amount"), rules, what="amount")),
                "change": rules.text(ZERO),
                "reference": (str(tender.get("reference") or "").strip()[:120] or None),
                "offline_authorized": False,
            }
        )
    paid = sum((Decimal(r["amount"]) for r in refunds), ZERO)
    if paid != gross:
        raise errors.ReturnRefused(
            f"The refunds add up to {rules.text(paid)}; the return is worth {rules.text(gross)}.",
            code="refund_mismatch",
        )
    return refunds


# --- cash, stock, reprints ------------------------------------------------------------------


def cash_movement_create(
    *,
    cashier: LocalCashier,
    kind: str,
    amount: object,
    reason: str = "",
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> LocalCashMovement:
    now = _now(now)
    rules = store_rules()
    if kind not in CASH_KINDS:
        raise errors.ValidationFailed(
            "kind is one of pay_in, pay_out, drop.", code="invalid_cash_movement"
        )
    value = amount_of(amount, rules, what="amount")
    text = _reason(reason, required=kind != "drop")
    operation = CASH_KINDS[kind]
    who = ""
    if operation is not None:
        who = supervisor_approve(
            operation=operation,
            cashier=cashier,
            rules=rules,
            supervisor=supervisor,
            supervisor_pin=supervisor_pin,
        )
    with transaction.atomic():
        session = _open_session()
        payload: dict[str, Any] = {
            "session_id": session.session_id,
            "kind": kind,
            "amount": rules.text(value),
            "reason": text or None,
            "cashier": cashier.code,
        }
        if who:
            payload["authorised_by"] = who
        event = outbox_append(
            type="cash_movement",
            payload=payload,
            occurred_at=now,
            business_date=rules.business_date(now),
        )
        return LocalCashMovement.objects.create(
            event_id=event.event_id,
            seq=event.seq,
            session=session,
            kind=kind,
            amount=value,
            reason=text,
            cashier=cashier.code,
            authorised_by=who,
            occurred_at=now,
        )


def _stock_qty(value: object, *, weighed: bool, what: str, allow_negative: bool) -> Decimal:
    number = parse_decimal(value, what=what, error=errors.InvalidQuantity)
    if allow_negative and number == 0:
        raise errors.InvalidQuantity(f"{what} may not be 0.")
    if not allow_negative and number < 0:
        raise errors.InvalidQuantity(f"{what} may not be negative.")
    if number == 0:
        return number
    return qty_of(abs(number), weighed=weighed, what=what).copy_sign(number)


def stock_adjustment_create(
    *,
    cashier: LocalCashier,
    lines: Sequence[Mapping[str, Any]],
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
    now: dt.datetime | None = None,
) -> OutboxEvent:
    """Stock moved other than by a sale (damage, theft, a delivery, a transfer): qty_delta
    positive adds to stock, negative removes."""
    now = _now(now)
    rules = store_rules()
    if not lines:
        raise errors.ValidationFailed("Give at least one line.", code="no_lines")
    who = supervisor_approve(
        operation="stock_adjustment",
        cashier=cashier,
        rules=rules,
        supervisor=supervisor,
        supervisor_pin=supervisor_pin,
    )
    rendered = []
    for position, line in enumerate(lines, start=1):
        product = scan_resolve(str(line.get("code") or ""), rules).product
        if line.get("reason") not in ADJUSTMENT_REASONS:
            raise errors.ValidationFailed(
                f"Line {position}: reason is one of {', '.join(ADJUSTMENT_REASONS)}.",
                code="invalid_reason",
            )
        delta = _stock_qty(
            line.get("qty_delta"),
            weighed=product.weighed,
            what=f"line {position} qty_delta",
            allow_negative=True,
        )
        rendered.append(
            {
                "sku": product.sku,
                "qty_delta": qty_text(abs(delta), weighed=product.weighed)
                if delta > 0
                else "-" + qty_text(abs(delta), weighed=product.weighed),
                "reason": line["reason"],
                "reference": (str(line.get("reference") or "").strip()[:500] or None),
            }
        )
    payload: dict[str, Any] = {"lines": rendered, "cashier": cashier.code}
    if who:
        payload["authorised_by"] = who
    with transaction.atomic():
        return outbox_append(
            type="stock_adjustment",
            payload=payload,
            occurred_at=now,
            business_date=rules.business_date(now),
        )


def stock_count_create(
    *,
    cashier: LocalCashier,
    lines: Sequence[Mapping[str, Any]],
    count_id: str | None = None,
    now: dt.datetime | None = None,
) -> OutboxEvent:
    """A full or partial count: what was on the shelf of each product named."""
    now = _now(now)
    rules = store_rules()
    if not lines:
        raise errors.ValidationFailed("Give at least one line.", code="no_lines")
    rendered, seen = [], set()
    for position, line in enumerate(lines, start=1):
        product = scan_resolve(str(line.get("code") or ""), rules).product
        if product.sku in seen:
            raise errors.ValidationFailed(
                f"Line {position}: {product.sku} is counted twice.", code="counted_twice"
            )
        seen.add(product.sku)
        counted = _stock_qty(
            line.get("counted_qty"),
            weighed=product.weighed,
            what=f"line {position} counted_qty",
            allow_negative=False,
        )
        rendered.append(
            {"sku": product.sku, "counted_qty": qty_text(counted, weighed=product.weighed)}
        )
    count = (count_id or "").strip() or str(uuid.uuid4())
    if len(count) > 64:
        raise errors.ValidationFailed("count_id is at most 64 characters.")
    with transaction.atomic():
        return outbox_append(
            type="stock_count",
            payload={"count_id": count, "lines": rendered, "cashier": cashier.code},
            occurred_at=now,
            business_date=rules.business_date(now),
        )


def receipt_reprint(
    *,
    cashier: LocalCashier,
    receipt_no: str,
    supervisor: str | None = None,
    supervisor_pin: str | None = None,
) -> LocalReceipt:
    """Print a receipt again, marked as a copy (no event: nothing happened at the till)."""
    rules = store_rules()
    receipt = LocalReceipt.objects.filter(receipt_no=receipt_no).first()
    if receipt is None:
        raise errors.ReceiptNotFound(f"This till holds no receipt {receipt_no}.")
    supervisor_approve(
        operation="reprint",
        cashier=cashier,
        rules=rules,
        supervisor=supervisor,
        supervisor_pin=supervisor_pin,
    )
    when = receipt.occurred_at.astimezone(rules.zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    text = receipt_text(kind=receipt.type, data=receipt.data, rules=rules, when=when, copy=True)
    print_after_commit(name=f"{receipt.receipt_no}-copy", text=text)
    return receipt
