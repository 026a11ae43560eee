"""Prices, tax and rounding of the till, computed exactly as head office checks them.

Head office's push ingestion checks every sale with ``sync.push.apply``: a line's total is
``qty × unit_price − discount`` rounded half-up to the currency's minor unit, its tax is
``sync.push.apply.line_tax`` (inclusive codes ``total × r / (100 + r)``, exclusive ones
``total × r / 100``, rounded half-up per line), gross is the sum of line totals plus the
exclusive tax, net is gross minus tax, and tenders pay ``Σ(amount − change)`` = gross. The
till calls that same ``line_tax`` (through ``TaxTable``, which has the two attributes it
reads), so the two ends cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db.models import Q

from inventory.barcodes import gs1_check_digit
from stores.local import (
    LocalBarcode,
    LocalPrice,
    LocalProduct,
    LocalStoreConfig,
    LocalTaxRate,
    NodeState,
)
from stores.till.errors import (
    InvalidAmount,
    InvalidQuantity,
    NoPrice,
    ProductInactive,
    TillNotReady,
    UnknownCode,
)
from sync.push.apply import line_tax

ZERO = Decimal("0")
QTY_QUANTUM = Decimal("0.001")
MAX_QTY = Decimal("99999")
MAX_AMOUNT = Decimal("9999999")


@dataclass(frozen=True)
class StoreRules:
    """What the till needs of its store's configuration and of its own identity."""

    store_code: str
    register_code: str
    name: str
    currency: str
    minor_units: int
    zone: zoneinfo.ZoneInfo
    offline_card_limit: Decimal
    warn_after_hours: int
    supervisor_operations: frozenset[str]

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)

    def money(self, value: Decimal) -> Decimal:
        return value.quantize(self.quantum, rounding=ROUND_HALF_UP)

    def text(self, value: Decimal) -> str:
        """An amount as it travels: a string with the currency's number of decimals."""
        return str(self.money(value))

    def business_date(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self.zone).date()

    def needs_supervisor(self, operation: str) -> bool:
        return operation in self.supervisor_operations


def store_rules() -> StoreRules:
    state = NodeState.objects.filter(pk=1).values("store_code", "register_code").first()
    if state is None:
        raise TillNotReady("This node is not set up: run manage.py node_init.")
    data = (
        LocalStoreConfig.objects.filter(code=state["store_code"])
        .values_list("data", flat=True)
        .first()
    )
    if not isinstance(data, Mapping):
        raise TillNotReady()
    try:
        offline = data.get("offline") or {}
        return StoreRules(
            store_code=state["store_code"],
            register_code=state["register_code"],
            name=str(data.get("name") or state["store_code"]),
            currency=str(data["currency"]),
            minor_units=int(data.get("currency_minor_units", 2)),
            zone=zoneinfo.ZoneInfo(str(data["timezone"])),
            offline_card_limit=Decimal(str(offline.get("card_limit", "0"))),
            warn_after_hours=int(offline.get("warn_after_hours", 4)),
            supervisor_operations=frozenset(data.get("supervisor_operations") or ()),
        )
    except (KeyError, ValueError, TypeError, InvalidOperation, zoneinfo.ZoneInfoNotFoundError):
        raise TillNotReady("The store configuration this node holds cannot be read.") from None


class TaxTable:
    """The local tax rates in the shape ``sync.push.apply.line_tax`` reads."""

    def __init__(self, rules: StoreRules, codes: Sequence[str] | None = None) -> None:
        rows = LocalTaxRate.objects.all()
        if codes is not None:
            rows = rows.filter(code__in=set(codes))
        self.tax_rates = {r.code: (r.rate, r.inclusive) for r in rows}
        self.quantum = rules.quantum

    def money(self, value: Decimal) -> Decimal:
        return value.quantize(self.quantum, rounding=ROUND_HALF_UP)

    def line_tax(self, tax_code: str, line_total: Decimal) -> Decimal:
        tax = line_tax(self, tax_code, line_total)  # type: ignore[arg-type]
        if tax is None:
            raise NoPrice(f"Tax code {tax_code} is not known on this till.", code="unknown_tax")
        return tax

    def inclusive(self, tax_code: str) -> bool:
        return self.tax_rates[tax_code][1]


# --- reading what the cashier typed ---------------------------------------------------------


def parse_decimal(value: object, *, what: str, error: type = InvalidAmount) -> Decimal:
    if isinstance(value, float):
        raise error(f"{what}: send decimals as strings, not floats.")
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise error(f"{what}: {value!r} is not a decimal number.") from None
    if not number.is_finite():
        raise error(f"{what}: {value!r} is not a decimal number.")
    return number


def amount_of(value: object, rules: StoreRules, *, what: str, allow_zero: bool = False) -> Decimal:
    """A money amount the cashier typed: not negative, at most the currency's decimals."""
    amount = parse_decimal(value, what=what)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"{what} must be {'zero or more' if allow_zero else 'positive'}.")
    if amount != amount.quantize(rules.quantum) or amount > MAX_AMOUNT:
        raise InvalidAmount(
            f"{what} {amount} has more than the {rules.minor_units} decimals of {rules.currency}"
            if amount <= MAX_AMOUNT
            else f"{what} {amount} is too large."
        )
    return rules.money(amount)


def qty_of(value: object, *, weighed: bool, what: str = "qty") -> Decimal:
    qty = parse_decimal(value, what=what, error=InvalidQuantity)
    if qty <= 0 or qty > MAX_QTY:
        raise InvalidQuantity(f"{what} must be more than 0 and at most {MAX_QTY}.")
    if weighed:
        if qty != qty.quantize(QTY_QUANTUM):
            raise InvalidQuantity(f"{what} {qty}: a weight has at most 3 decimals (kg).")
        return qty.quantize(QTY_QUANTUM)
    if qty != qty.to_integral_value():
        raise InvalidQuantity(f"{what} {qty}: this product is sold in whole units.")
    return qty.quantize(Decimal(1))


def qty_text(qty: Decimal, *, weighed: bool) -> str:
    return str(qty.quantize(QTY_QUANTUM)) if weighed else str(qty.quantize(Decimal(1)))


# --- products and prices --------------------------------------------------------------------


@dataclass(frozen=True)
class Scanned:
    """What a scanned or typed code resolved to."""

    product: LocalProduct
    code: str
    qty: Decimal | None = None  # a weight embedded in the barcode
    label_price: Decimal | None = None  # a price embedded in the barcode


def _embedded(code: str) -> tuple[str, str, str] | None:
    """(prefix, item, value) of an in-store EAN-13 (prefixes 20–29), else None."""
    if len(code) != 13 or not code.isascii() or not code.isdigit() or code[0] != "2":
        return None
    if gs1_check_digit(code[:12]) != int(code[12]):
        return None
    return code[:2], code[2:7], code[7:12]


def _product_by_code(code: str) -> LocalProduct | None:
    barcode = LocalBarcode.objects.select_related("product").filter(code=code).first()
    if barcode is not None:
        return barcode.product
    return LocalProduct.objects.filter(sku=code).first()


def _product_by_item(prefix: str, item: str, *, price: bool = False) -> LocalProduct | None:
    """The product of an in-store item number: registered under this prefix with its value
    zeroed, else under another in-store prefix (one item, a weight and a price label), else
    the item number as SKU.

    A *price* label (``price``) sets what the customer pays, so it is honoured only for a
    product the store registered under a price prefix (``TILL_PRICE_PREFIXES``): never by
    its item number as SKU, nor by a weight-prefix registration, or any 13 digits typed at
    the till would name their own price."""
    allowed = (
        [str(p) for p in settings.TILL_PRICE_PREFIXES] if price else [str(p) for p in range(20, 30)]
    )
    zeroed = {}
    for other in [prefix] + [p for p in allowed if p != prefix]:
        body = f"{other}{item}00000"
        zeroed[body + str(gs1_check_digit(body))] = other
    rows = LocalBarcode.objects.select_related("product").filter(code__in=list(zeroed))
    found = sorted(rows, key=lambda row: (zeroed[row.code] != prefix, row.code))
    if found:
        return found[0].product
    if price:
        return None
    return LocalProduct.objects.filter(sku__in=[item, str(int(item))]).order_by("sku").first()


def scan_resolve(code: str, rules: StoreRules) -> Scanned:
    """A barcode or SKU to a product: a registered barcode first, then a SKU, then an in-store
    EAN-13 with an embedded weight or price (found by the code with its value zeroed, or, for
    a weight, by its item number as SKU; see ``_product_by_item``)."""
    code = code.strip()
    if not code:
        raise UnknownCode("Scan a barcode or type a SKU.")
    product = _product_by_code(code)
    scanned: Scanned | None = Scanned(product=product, code=code) if product else None
    parts = _embedded(code) if product is None else None
    if parts is not None:
        prefix, item, value = parts
        kind = (
            "weight"
            if prefix in settings.TILL_WEIGHT_PREFIXES
            else "price"
            if prefix in settings.TILL_PRICE_PREFIXES
            else None
        )
        if kind is not None:
            found = _product_by_item(prefix, item, price=kind == "price")
            if found is not None:
                if kind == "weight":
                    scanned = Scanned(found, code, qty=Decimal(int(value)) / 1000)
                else:
                    scanned = Scanned(found, code, label_price=Decimal(int(value)) * rules.quantum)
    if scanned is None:
        raise UnknownCode(f"No product has the barcode or SKU {code}.")
    if not scanned.product.active:
        raise ProductInactive(f"{scanned.product.sku} {scanned.product.name} is not sold any more.")
    if scanned.qty is not None and not scanned.product.weighed:
        raise InvalidQuantity(f"{code} carries a weight, but {scanned.product.sku} is not weighed.")
    return scanned


def list_price(sku: str, day: dt.date) -> Decimal | None:
    """The store's price of ``sku`` on ``day`` (the latest valid_from that covers it)."""
    return (
        LocalPrice.objects.filter(sku=sku, valid_from__lte=day)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=day))
        .order_by("-valid_from")
        .values_list("price", flat=True)
        .first()
    )


def price_of(product: LocalProduct, day: dt.date, rules: StoreRules) -> Decimal:
    price = list_price(product.sku, day)
    if price is None:
        raise NoPrice(f"{product.sku} {product.name} has no price on {day}.")
    return rules.money(price)


def embedded_price_line(
    *, label: Decimal, unit_price: Decimal, rules: StoreRules
) -> tuple[Decimal, Decimal]:
    """(qty, discount) of a weighed item whose label carries its price: the smallest weight
    (3 decimals) whose amount reaches the label, and the rounding difference as a discount,
    so the customer pays exactly the label and ``qty × unit_price − discount`` holds."""
    if unit_price <= 0:
        raise NoPrice("A weighed item with a zero price cannot be priced from its label.")
    qty = (label / unit_price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    while rules.money(qty * unit_price) < label:
        qty += QTY_QUANTUM
    qty = max(qty, QTY_QUANTUM)
    discount = rules.money(qty * unit_price) - label
    return qty, discount


# --- pricing a basket -----------------------------------------------------------------------


@dataclass
class PricedLine:
    line: dict[str, Any]
    qty: Decimal
    unit_price: Decimal
    discount: Decimal  # the line's own and its share of the basket discount
    line_total: Decimal
    tax: Decimal


@dataclass
class PricedBasket:
    lines: list[PricedLine] = field(default_factory=list)
    basket_discount: Decimal = ZERO
    net: Decimal = ZERO
    tax: Decimal = ZERO
    gross: Decimal = ZERO
    paid: Decimal = ZERO  # Σ(amount − change)
    change: Decimal = ZERO
    due: Decimal = ZERO


def _allocate(total: Decimal, weights: Sequence[Decimal], quantum: Decimal) -> list[Decimal]:
    """Split ``total`` over ``weights`` in whole minor units, largest remainder first (ties to
    the earlier line), so the shares add up to ``total`` exactly."""
    whole = sum(weights, ZERO)
    if total == 0 or whole <= 0:
        return [ZERO for _ in weights]
    raw = [total * w / whole for w in weights]
    shares = [r.quantize(quantum, rounding=ROUND_DOWN) for r in raw]
    left = int((total - sum(shares, ZERO)) / quantum)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - shares[i]), i))
    for i in order[:left]:
        shares[i] += quantum
    return shares


def basket_discount_amount(
    discount: Mapping[str, Any] | None, subtotal: Decimal, rules: StoreRules
) -> Decimal:
    if not discount:
        return ZERO
    if discount.get("percent") is not None:
        amount = rules.money(subtotal * Decimal(discount["percent"]) / 100)
    else:
        amount = Decimal(discount["amount"])
    return min(amount, subtotal)


def price_basket(
    lines: Sequence[dict[str, Any]],
    *,
    rules: StoreRules,
    taxes: TaxTable,
    discount: Mapping[str, Any] | None = None,
    tenders: Sequence[Mapping[str, Any]] = (),
) -> PricedBasket:
    priced = PricedBasket()
    money = rules.money
    own = []
    for line in lines:
        qty, unit_price = Decimal(line["qty"]), Decimal(line["unit_price"])
        own.append(money(qty * unit_price - Decimal(line.get("discount") or "0")))
    subtotal = sum(own, ZERO)
    priced.basket_discount = basket_discount_amount(discount, subtotal, rules)
    shares = _allocate(priced.basket_discount, own, rules.quantum)
    exclusive = ZERO
    for line, share in zip(lines, shares, strict=True):
        qty, unit_price = Decimal(line["qty"]), Decimal(line["unit_price"])
        line_discount = Decimal(line.get("discount") or "0") + share
        line_total = money(qty * unit_price - line_discount)
        tax = taxes.line_tax(line["tax_code"], line_total)
        if not taxes.inclusive(line["tax_code"]):
            exclusive += tax
        priced.tax += tax
        priced.gross += line_total
        priced.lines.append(PricedLine(line, qty, unit_price, line_discount, line_total, tax))
    priced.gross += exclusive
    priced.net = priced.gross - priced.tax
    priced.paid = sum(
        (Decimal(t["amount"]) - Decimal(t.get("change") or "0") for t in tenders), ZERO
    )
    priced.change = sum((Decimal(t.get("change") or "0") for t in tenders), ZERO)
    priced.due = max(priced.gross - priced.paid, ZERO)
    return priced


def round_up(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_UP)
