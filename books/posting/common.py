"""Shared pieces of a posting run: move classes, account roles, what a run collects."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from books.models import (
    Account,
)

ZERO = Decimal("0")
SOURCE_TABLES = (
    "stores_tillsession",
    "stores_sale",
    "stores_saleline",
    "stores_tender",
    "stores_cashmovement",
    "inventory_stockmove",
)
ADVISORY_KEY = 7_311_006  # books posting runs, one at a time

# Stock-move classes: how each kind/reason is booked against inventory.
SALE_CLASSES = ("sale", "return")
RECEIPT_REASONS = ("receipt",)


def move_class(kind: str, reason: str) -> str:
    if kind in SALE_CLASSES:
        return "sale"
    if kind == "count":
        return "shrinkage"
    if reason in ("receipt", "transfer_in", "transfer_out"):
        return reason
    return "shrinkage"


# counter-account role of each move class (inventory is the other side)
MOVE_COUNTER = {
    "sale": Account.Role.COGS,
    "shrinkage": Account.Role.SHRINKAGE,
    "receipt": Account.Role.GOODS_RECEIVED,
    "transfer_in": Account.Role.STOCK_IN_TRANSIT,
    "transfer_out": Account.Role.STOCK_IN_TRANSIT,
}
TENDER_ROLES = {
    "cash": Account.Role.CASH,
    "card": Account.Role.CARD_CLEARING,
    "voucher": Account.Role.VOUCHER,
}


@dataclass(frozen=True)
class Highs:
    line: int
    tender: int
    move: int


@dataclass
class StoreDay:
    """What one run posts for one store and business day (signed: + debit, − credit)."""

    store_id: int
    business_date: dt.date
    amounts: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    sale_lines: int = 0
    sessions: list[str] = field(default_factory=list)
    cash_movements: list[str] = field(default_factory=list)
    touched: bool = False

    def add(self, role: str, tax_code: str, amount: Decimal, source: str = "") -> None:
        self.amounts[(role, tax_code)] += amount
        if source:
            self.sources.setdefault((role, tax_code), source)


@dataclass(frozen=True)
class PostingResult:
    entries: int
    store_days: int
    sale_lines: int
    late_entries: int
    entry_ids: tuple[int, ...] = ()
