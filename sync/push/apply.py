"""Second stage of a push: apply accepted events to sales, stock and sessions.

An :class:`Applier` collects rows in event order and writes them set-based. A stock count
needs book stock as of its place in the sequence, so pending stock moves are flushed before
each count. Business problems never stop an event: they become reconciliation exceptions.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection

from erp.bulk import array_literal, select_rows
from inventory.ledger import (
    CountedLine,
    row_level_deltas,
    stock_count_record,
    stock_levels_apply,
    stock_move_rows_append,
)
from inventory.models import Price, Product, TaxRate
from stores.models import Store
from stores.records import (
    CashMovementRow,
    DeviceReportRow,
    cash_movements_record,
    device_reports_record,
    sale_rows_record,
    till_session_close_record,
    till_session_open_record,
)
from sync.exception_queue import Problem, Type
from sync.push import schema

ZERO = Decimal("0")


class Catalogue:
    """What the applier needs to know about products, prices and tax, loaded once per batch."""

    def __init__(self, *, store: Store, skus: set[str]) -> None:
        self.store = store
        self.tax_rates = {
            code: (rate, inclusive)
            for code, rate, inclusive in TaxRate.objects.values_list("code", "rate", "inclusive")
        }
        # SKU → product id, for the SKUs asked about that exist.
        self.products: dict[str, int] = {}
        self._prices: dict[int, list[tuple[dt.date, dt.date | None, Decimal]]] = defaultdict(list)
        if connection.vendor == "postgresql":
            rows = select_rows(
                "SELECT p.sku, p.id, pr.valid_from, pr.valid_to, pr.price "
                "FROM inventory_product p LEFT JOIN inventory_price pr "
                "ON pr.product_id = p.id AND pr.price_list_id = %b "
                "WHERE p.sku = ANY(%b::text[])",
                [store.price_list_id, array_literal(sorted(skus), quote=True)],
            )
        else:
            products = dict(Product.objects.filter(sku__in=skus).values_list("id", "sku"))
            priced = Price.objects.filter(
                price_list_id=store.price_list_id, product_id__in=list(products)
            ).values_list("product_id", "valid_from", "valid_to", "price")
            rows = [(products[pid], pid, vf, vt, price) for pid, vf, vt, price in priced]
            rows += [(sku, pid, None, None, None) for pid, sku in products.items()]
        found, prices = self.products, self._prices
        for sku, pid, valid_from, valid_to, price in rows:
            found[sku] = pid
            if valid_from is not None:
                prices[pid].append((valid_from, valid_to, price))
        self.quantum = store.currency.quantum()

    def list_price(self, product_id: int, day: dt.date) -> Decimal | None:
        for valid_from, valid_to, price in self._prices.get(product_id, ()):
            if valid_from <= day and (valid_to is None or day <= valid_to):
                return price
        return None

    def money(self, value: Decimal) -> Decimal:
        return value.quantize(self.quantum, rounding=ROUND_HALF_UP)


def line_tax(catalogue: Catalogue, tax_code: str, line_total: Decimal) -> Decimal | None:
    """Tax of one line, rounded half-up to the currency's minor unit (None: unknown code).

    Inclusive codes: the line total contains the tax, ``total × r / (100 + r)``. Exclusive
    codes: the line total is net and tax comes on top, ``total × r / 100``.
    """
    found = catalogue.tax_rates.get(tax_code)
    if found is None:
        return None
    rate, inclusive = found
    raw = line_total * rate / (Decimal(100) + rate) if inclusive else line_total * rate / 100
    return catalogue.money(raw)


class Applier:
    def __init__(
        self, *, store: Store, catalogue: Catalogue, now: dt.datetime, problems: list[Problem]
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.now = now
        self.problems = problems
        self.store_id = store.pk
        self.location_id = store.stock_location_id
        self.tz = store.tzinfo
        self._now_text = now.isoformat()
        # Rows as the record functions take them (stores.records' SALE_COLUMNS, LINE_COLUMNS,
        # TENDER_COLUMNS; inventory.ledger's MOVE_COLUMNS), built as the events are applied:
        # about 6,000 a batch, so no object per row in between.
        self._sales: list[tuple[Any, ...]] = []
        self._lines: list[tuple[Any, ...]] = []
        self._tenders: list[tuple[Any, ...]] = []
        self._moves: list[tuple[Any, ...]] = []
        self._cash: list[CashMovementRow] = []
        self._devices: list[DeviceReportRow] = []
        # Stock level changes not applied yet, and the moves they come from (for messages).
        self._deltas: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
        self._flushed_moves: list[tuple[Any, ...]] = []

    # --- entry point ---------------------------------------------------------------------

    def apply(
        self,
        envelope: schema.Envelope,
        data: Any,
        register_id: int,
        *,
        day_text: str | None = None,
        occurred_text: str | None = None,
    ) -> None:
        """Apply one event. ``day_text`` and ``occurred_text``: its business date and
        occurred_at as ISO text, if the caller has them already (formatted once per event)."""
        self._check_business_date(envelope, register_id)
        kind = envelope.type
        if kind in ("sale", "return"):
            self._sale(
                envelope,
                data,
                register_id,
                day_text or envelope.business_date.isoformat(),
                occurred_text or envelope.occurred_at.isoformat(),
            )
        elif kind == "stock_adjustment":
            self._adjustment(envelope, data)
        elif kind == "stock_count":
            self._count(envelope, data)
        elif kind == "session_open":
            till_session_open_record(
                session_id=data.session_id,
                store_id=self.store.pk,
                register_id=register_id,
                cashier=data.cashier,
                opening_float=Decimal(data.opening_float),
                opened_at=envelope.occurred_at,
                business_date=envelope.business_date,
                event_id=envelope.event_id,
            )
        elif kind == "session_close":
            till_session_close_record(
                session_id=data.session_id,
                store_id=self.store.pk,
                register_id=register_id,
                closed_at=envelope.occurred_at,
                business_date=envelope.business_date,
                event_id=envelope.event_id,
                first_seq=data.first_seq,
                last_seq=data.last_seq,
                sale_count=data.sale_count,
                return_count=data.return_count,
                gross=Decimal(data.gross),
                tax=Decimal(data.tax),
                tenders=dict(data.tenders),
                counted_cash=Decimal(data.counted_cash),
            )
        elif kind == "cash_movement":
            self._cash.append(
                CashMovementRow(
                    event_id=envelope.event_id,
                    store_id=self.store.pk,
                    register_id=register_id,
                    session_id=data.session_id or "",
                    kind=data.kind,
                    amount=Decimal(data.amount),
                    reason=data.reason or "",
                    occurred_at=envelope.occurred_at,
                    business_date=envelope.business_date,
                )
            )
        elif kind == "device_status":
            self._devices.append(
                DeviceReportRow(
                    event_id=envelope.event_id,
                    store_id=self.store.pk,
                    register_id=register_id,
                    device=data.device,
                    kind=data.kind,
                    state=data.state,
                    detail=data.detail or "",
                    occurred_at=envelope.occurred_at,
                )
            )

    def flush(self) -> None:
        """Write everything collected so far, stock levels included."""
        self.flush_rows()
        self.levels_apply()

    def flush_rows(self) -> None:
        """Write the rows collected so far; their stock level changes wait for
        :meth:`levels_apply`, which must run before the transaction ends."""
        sale_rows_record(sales=self._sales, lines=self._lines, tenders=self._tenders)
        cash_movements_record(movements=self._cash)
        device_reports_record(reports=self._devices)
        stock_move_rows_append(rows=self._moves)
        row_level_deltas(self._moves, into=self._deltas)
        self._flushed_moves += self._moves
        self._sales, self._lines, self._tenders, self._moves = [], [], [], []
        self._cash, self._devices = [], []

    def levels_apply(self) -> None:
        """Apply the flushed moves to stock levels, and raise ``negative_stock`` where a level
        went below zero. Its row locks make every other batch that sells one of these SKUs
        wait until this transaction ends, so ingestion calls it as late as it can."""
        levels = stock_levels_apply(deltas=self._deltas, now=self.now, negative_only=True)
        self._check_negative(levels, self._flushed_moves)
        self._deltas, self._flushed_moves = defaultdict(Decimal), []

    # --- by type ---------------------------------------------------------------------------

    def _sale(
        self,
        envelope: schema.Envelope,
        data: schema.SaleData,
        register_id: int,
        day_text: str,
        occurred_text: str,
    ) -> None:
        # One pass over the lines builds the sale line and its stock move as rows and checks
        # the line (the hot loop of a push: about 2,000 lines a batch); the sale's totals are
        # checked after it. Amounts go into the rows as the decimal strings they arrived as
        # (validated by the schema), the computed tax and net as Decimals.
        is_return = envelope.type == "return"
        catalogue = self.catalogue
        rates = catalogue.tax_rates
        products = catalogue.products
        money = catalogue.money
        list_price = catalogue.list_price
        line_rows = self._lines
        moves = self._moves
        location_id, store_id, now_text = self.location_id, self.store_id, self._now_text
        sign = Decimal(1) if is_return else Decimal(-1)
        kind = "return" if is_return else "sale"
        event_id, day, receipt = envelope.event_id, envelope.business_date, data.receipt_no
        # The sale's id and day as text once, for its own row, its lines', tenders' and moves'.
        event_text = str(event_id)
        common = {"register_id": register_id, "business_date": day, "event_id": event_id}
        if data.currency != self.store.currency_id:
            self._problem(
                Type.CURRENCY_MISMATCH,
                event_text,
                f"Receipt {receipt} is in {data.currency}; the store sells in "
                f"{self.store.currency_id}.",
                **common,
            )
        wrong: list[dict[str, str]] = []
        lines_total = tax_total = exclusive_tax = ZERO
        tax_known = True
        for line in data.lines:
            total = Decimal(line.line_total)
            qty = Decimal(line.qty)
            unit_price = Decimal(line.unit_price)
            product_id = products[line.sku]
            lines_total += total
            tax = net = None
            found = rates.get(line.tax_code)
            if found is None:
                tax_known = False
            else:
                tax = line_tax(catalogue, line.tax_code, total)
                tax_total += tax
                if found[1]:  # inclusive
                    net = total - tax
                else:
                    net = total
                    exclusive_tax += tax
            expected = money(qty * unit_price - Decimal(line.discount))
            if expected != total:
                wrong.append(
                    {"line_no": str(line.line_no), "expected": str(expected),
                     "line_total": str(total)}
                )  # fmt: skip
            if not line.price_override_reason:
                listed = list_price(product_id, day)
                if listed != unit_price:
                    self._problem(
                        Type.PRICE_DIFFERS,
                        f"{event_id}:{line.line_no}",
                        f"Receipt {receipt} line {line.line_no}: {line.sku} sold at "
                        f"{unit_price}, list price "
                        f"{listed if listed is not None else 'none'} on {day}.",
                        details={"sku": line.sku, "unit_price": str(unit_price),
                                 "list_price": None if listed is None else str(listed)},
                        **common,
                    )  # fmt: skip
            line_rows.append(
                (event_text, line.line_no, line.sku, line.qty, line.unit_price, line.discount,
                 line.tax_code, line.line_total, line.price_override_reason or "",
                 line.original_line_no, store_id, day_text, tax, net)
            )  # fmt: skip
            moves.append(
                (location_id, product_id, sign * qty, kind, "", receipt, day_text, event_text,
                 line.line_no, now_text)
            )  # fmt: skip
        paid = ZERO
        for position, t in enumerate(data.tenders, start=1):
            paid += Decimal(t.amount) - Decimal(t.change)
            self._tenders.append(
                (event_text, position, t.method, t.amount, t.change, t.reference or "",
                 t.offline_authorized, store_id, day_text)
            )  # fmt: skip
        totals = data.totals
        net_total, tax, gross = Decimal(totals.net), Decimal(totals.tax), Decimal(totals.gross)
        original = getattr(data, "original_event_id", None)
        self._sales.append(
            (event_text, envelope.type, store_id, register_id, envelope.seq, receipt,
             data.basket_id or "", data.session_id or "", data.cashier or "", data.currency,
             totals.net, totals.tax, totals.gross, occurred_text, day_text,
             None if original is None else str(original), now_text)
        )  # fmt: skip
        self._check_totals(
            receipt=receipt, totals=totals, net=net_total, tax=tax, gross=gross, wrong=wrong,
            tax_known=tax_known, tax_total=tax_total, gross_expected=lines_total + exclusive_tax,
            paid=paid, common=common,
        )  # fmt: skip

    def _check_totals(
        self,
        *,
        receipt: str,
        totals: schema.Totals,
        net: Decimal,
        tax: Decimal,
        gross: Decimal,
        wrong: list[dict[str, str]],
        tax_known: bool,
        tax_total: Decimal,
        gross_expected: Decimal,
        paid: Decimal,
        common: dict[str, Any],
    ) -> None:
        """A sale's totals (``totals`` as sent, ``net``/``tax``/``gross`` as Decimals) against
        what its lines and tenders add up to in ``_sale``'s pass."""
        findings = []
        if wrong:
            findings.append(f"{len(wrong)} line total(s) differ from qty × unit_price − discount")
        if not tax_known:
            findings.append("a tax code is unknown at head office")
        if tax_known and tax != tax_total:
            findings.append(f"tax {totals.tax} but the lines' tax is {tax_total}")
        if gross != gross_expected:
            findings.append(f"gross {totals.gross} but the lines add up to {gross_expected}")
        if net + tax != gross:
            findings.append(f"net {totals.net} + tax {totals.tax} is not gross {totals.gross}")
        if paid != gross:
            findings.append(f"tenders pay {paid} of gross {totals.gross}")
        if findings:
            self._problem(
                Type.TOTALS_MISMATCH,
                str(common["event_id"]),
                f"Receipt {receipt}: " + "; ".join(findings) + ".",
                details={"lines": wrong, "expected_tax": str(tax_total),
                         "expected_gross": str(gross_expected), "paid": str(paid)},
                **common,
            )  # fmt: skip

    def _adjustment(self, envelope: schema.Envelope, data: schema.StockAdjustmentData) -> None:
        event_text, day_text = str(envelope.event_id), envelope.business_date.isoformat()
        for line_no, line in enumerate(data.lines, start=1):
            self._moves.append(
                (self.location_id, self.catalogue.products[line.sku], Decimal(line.qty_delta),
                 "adjustment", line.reason, (line.reference or "")[:120], day_text, event_text,
                 line_no, self._now_text)
            )  # fmt: skip

    def _count(self, envelope: schema.Envelope, data: schema.StockCountData) -> None:
        self.flush()  # book stock as of this point in the sequence
        levels = stock_count_record(
            count_id=data.count_id,
            source_event=envelope.event_id,
            location_id=self.location_id,
            business_date=envelope.business_date,
            counted_at=envelope.occurred_at,
            lines=[
                CountedLine(
                    product_id=self.catalogue.products[line.sku],
                    counted_qty=Decimal(line.counted_qty),
                )
                for line in data.lines
            ],
            now=self.now,
        )
        del levels  # a count sets levels to what was counted: never newly negative by itself

    # --- business checks -------------------------------------------------------------------

    def _problem(self, type_: str, key: str, message: str, **kwargs: Any) -> None:
        self.problems.append(
            Problem(
                type=type_,
                store_id=self.store.pk,
                dedup_key=f"{type_}:{key}",
                message=message,
                **kwargs,
            )
        )

    def _check_business_date(self, envelope: schema.Envelope, register_id: int) -> None:
        local = envelope.occurred_at.astimezone(self.tz).date()
        if local != envelope.business_date:
            self._problem(
                Type.BUSINESS_DATE_MISMATCH,
                str(envelope.event_id),
                f"business_date {envelope.business_date} but occurred_at is {local} in "
                f"{self.store.timezone}.",
                register_id=register_id,
                business_date=envelope.business_date,
                event_id=envelope.event_id,
                details={"occurred_at": envelope.occurred_at.isoformat(), "local_date": str(local)},
            )

    def _check_negative(
        self, levels: dict[tuple[int, int], Decimal], moves: list[tuple[Any, ...]]
    ) -> None:
        """``negative_stock`` for each level below zero, naming the last of ``moves`` (rows in
        MOVE_COLUMNS order) that changed it."""
        negative = {key: qty for key, qty in levels.items() if qty < 0}
        if not negative:
            return
        last: dict[tuple[int, int], tuple[Any, ...]] = {}
        for row in reversed(moves):
            last.setdefault((row[0], row[1]), row)
        skus = {pid: sku for sku, pid in self.catalogue.products.items()}
        for (location_id, product_id), qty in negative.items():
            _, _, _, kind, _, _, day_text, event_text, _, _ = last[(location_id, product_id)]
            self._problem(
                Type.NEGATIVE_STOCK,
                f"{location_id}:{product_id}:{day_text}",
                f"{skus.get(product_id, product_id)} is at {qty} in stock at "
                f"{self.store.code} after {kind} {event_text}.",
                business_date=dt.date.fromisoformat(day_text),
                event_id=uuid.UUID(event_text),
                details={"sku": skus.get(product_id), "qty": str(qty)},
            )
