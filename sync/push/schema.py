"""The push payload of sync protocol v1, as msgspec structures.

msgspec validates a 500-sale batch in a few milliseconds (DRF serializers take ~150 ms), which
is what lets ingestion run near the database's own speed. Amounts and quantities are decimal
*strings*: a JSON number is refused, so no float ever reaches a money column. Extra fields
are allowed (the protocol leaves them free) and kept in the stored canonical JSON.

The structures are not tracked by the garbage collector (``gc=False``: they hold strings,
numbers, lists and dicts, and nothing refers back to them), so a batch's thousands of them do
not make the collector run more often.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
import types
import uuid
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

# Amounts: up to 10 integer digits and 4 decimals (the columns' precision). Quantities: 3.
# Anchored with \Z, not $: msgspec searches with Python's re, whose $ also matches before a
# final newline ("2\n" would pass, and reach the database).
_MONEY = r"-?[0-9]{1,10}(\.[0-9]{1,4})?"
_QTY = r"-?[0-9]{1,10}(\.[0-9]{1,3})?"
Money = Annotated[str, msgspec.Meta(pattern=rf"^{_MONEY}\Z")]
Qty = Annotated[str, msgspec.Meta(pattern=rf"^{_QTY}\Z")]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ShortCode = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
Text = Annotated[str, msgspec.Meta(max_length=500)]
# Bounded by the columns they are stored in (a longer value would fail the whole batch there).
CashierCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Reason = Annotated[str, msgspec.Meta(max_length=200)]
Reference = Annotated[str, msgspec.Meta(max_length=120)]
SeqRef = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
LineNo = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
Instant = Annotated[dt.datetime, msgspec.Meta(tz=True)]

EVENT_TYPES = (
    "sale",
    "return",
    "session_open",
    "session_close",
    "cash_movement",
    "stock_adjustment",
    "stock_count",
    "device_status",
)
EventType = Literal[
    "sale",
    "return",
    "session_open",
    "session_close",
    "cash_movement",
    "stock_adjustment",
    "stock_count",
    "device_status",
]


class Batch(msgspec.Struct, gc=False):
    batch_id: uuid.UUID
    events: list[msgspec.Raw]
    node_time: Instant | None = None


class Envelope(msgspec.Struct, gc=False):
    event_id: uuid.UUID
    type: EventType
    register: ShortCode
    seq: Seq
    occurred_at: Instant
    business_date: dt.date
    data: dict[str, Any]


class SaleLine(msgspec.Struct, gc=False):
    line_no: LineNo
    sku: Code
    qty: Qty
    unit_price: Money
    tax_code: ShortCode
    line_total: Money
    discount: Money = "0"
    price_override_reason: Reason | None = None
    original_line_no: LineNo | None = None


class SaleTender(msgspec.Struct, gc=False):
    method: ShortCode
    amount: Money
    change: Money = "0"
    reference: Reference | None = None
    offline_authorized: bool = False


class Totals(msgspec.Struct, gc=False):
    net: Money
    tax: Money
    gross: Money


class SaleData(msgspec.Struct, gc=False):
    receipt_no: Code
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")]
    lines: Annotated[list[SaleLine], msgspec.Meta(min_length=1, max_length=1000)]
    tenders: Annotated[list[SaleTender], msgspec.Meta(max_length=50)]
    totals: Totals
    basket_id: Code | None = None
    cashier: CashierCode | None = None
    session_id: Code | None = None


class ReturnData(SaleData):
    original_event_id: uuid.UUID | None = None


class SessionOpenData(msgspec.Struct, gc=False):
    session_id: Code
    cashier: CashierCode
    opening_float: Money


class SessionCloseData(msgspec.Struct, gc=False):
    session_id: Code
    first_seq: SeqRef
    last_seq: SeqRef
    sale_count: Count
    return_count: Count
    gross: Money
    tax: Money
    tenders: dict[ShortCode, Money]
    counted_cash: Money


class CashMovementData(msgspec.Struct, gc=False):
    kind: Literal["pay_in", "pay_out", "drop"]
    amount: Money
    session_id: Code | None = None
    reason: Reason | None = None


class AdjustmentLine(msgspec.Struct, gc=False):
    sku: Code
    qty_delta: Qty
    reason: Literal["damage", "theft", "receipt", "transfer_in", "transfer_out", "other"]
    reference: Text | None = None


class StockAdjustmentData(msgspec.Struct, gc=False):
    lines: Annotated[list[AdjustmentLine], msgspec.Meta(min_length=1, max_length=5000)]


class CountLine(msgspec.Struct, gc=False):
    sku: Code
    counted_qty: Qty


class StockCountData(msgspec.Struct, gc=False):
    count_id: Code
    lines: Annotated[list[CountLine], msgspec.Meta(min_length=1, max_length=50_000)]


class DeviceStatusData(msgspec.Struct, gc=False):
    device: Code
    kind: Literal["printer", "scale", "scanner", "drawer"]
    state: Literal["ok", "offline", "paper_out", "cover_open", "error"]
    detail: Text | None = None


DATA_TYPES: dict[str, type[msgspec.Struct]] = {
    "sale": SaleData,
    "return": ReturnData,
    "session_open": SessionOpenData,
    "session_close": SessionCloseData,
    "cash_movement": CashMovementData,
    "stock_adjustment": StockAdjustmentData,
    "stock_count": StockCountData,
    "device_status": DeviceStatusData,
}


# --- the fast path for sales and returns ----------------------------------------------------------
#
# A pattern is checked with one Python regex call per value, about 0.55 µs each: a 500-sale batch
# has some 11,500 decimal strings, so the patterns alone were about 6 ms of it. Sales and returns
# (nearly every event of a push) are therefore converted first into variants of their structures
# whose decimal strings are only length-bounded, and those strings are then checked together,
# one regex call over each event's amounts and one over its quantities. Only an event that fails
# either is converted again with the structures above, which raises msgspec's own error naming
# the field, so what an event is refused for does not depend on the path taken.

_DECIMAL_TEXT = Annotated[str, msgspec.Meta(max_length=16)]  # as long as Money and Qty allow


def _loosened(tp: Any) -> Any:
    """``tp`` with Money and Qty replaced by length-bounded text, structures included."""
    if tp in (Money, Qty):
        return _DECIMAL_TEXT
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _loose_struct(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return Annotated[(_loosened(args[0]), *tp.__metadata__)]
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, [_loosened(arg) for arg in args])
    if origin is list:
        return list[_loosened(args[0])]
    if origin is dict:
        return dict[_loosened(args[0]), _loosened(args[1])]
    return tp


@functools.cache
def _loose_struct(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A subclass of ``cls`` (so ``isinstance`` holds) with the same fields, order and defaults,
    each of its types :func:`_loosened`."""
    fields = []
    for f in msgspec.structs.fields(cls):
        loose = _loosened(f.type)
        fields.append(
            (f.name, loose) if f.default is msgspec.NODEFAULT else (f.name, loose, f.default)
        )
    return msgspec.defstruct(f"Loose{cls.__name__}", fields, bases=(cls,), gc=False)


# Money and Qty with possessive quantifiers: the same strings (a decimal point or a comma must
# follow the digits, so giving some back never helps), matched in under half the time.
_MONEY_ONE = r"-?[0-9]{1,10}+(?:\.[0-9]{1,4}+)?+"
_QTY_ONE = r"-?[0-9]{1,10}+(?:\.[0-9]{1,3}+)?+"
_MONEY_RUN = re.compile(rf"{_MONEY_ONE}(?:,{_MONEY_ONE})*+")
_QTY_RUN = re.compile(rf"{_QTY_ONE}(?:,{_QTY_ONE})*+")


def _runs_match(pattern: re.Pattern[str], values: list[str]) -> bool:
    """Whether every one of ``values`` matches ``pattern``'s element: they are joined with
    commas, and the count of commas rules out a value that is itself two joined by one."""
    joined = ",".join(values)
    return joined.count(",") == len(values) - 1 and pattern.fullmatch(joined) is not None


def sale_decimals_valid(data: SaleData) -> bool:
    """Whether the decimal strings of a sale or return, converted into its loose structure
    (:data:`LOOSE_DATA_TYPES`), all meet Money and Qty."""
    lines = data.lines
    totals = data.totals
    money = [totals.net, totals.tax, totals.gross]
    for line in lines:
        money += (line.unit_price, line.line_total, line.discount)
    for tender in data.tenders:
        money += (tender.amount, tender.change)
    return _runs_match(_MONEY_RUN, money) and _runs_match(_QTY_RUN, [ln.qty for ln in lines])


# The event types with a fast path: their loose structure and its check.
LOOSE_DATA_TYPES: dict[str, tuple[type[msgspec.Struct], Any]] = {
    "sale": (_loose_struct(SaleData), sale_decimals_valid),
    "return": (_loose_struct(ReturnData), sale_decimals_valid),
}
