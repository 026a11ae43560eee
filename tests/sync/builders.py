"""Build sync-protocol events and batches as a store node would send them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass
class Till:
    """A register that numbers its events 1, 2, 3 … like a real node."""

    register: str = "R1"
    store_code: str = "S01"
    timezone: str = "Europe/Berlin"
    seq: int = 0
    day: dt.date = dt.date(2026, 11, 23)
    tax_rates: dict[str, tuple[Decimal, bool]] = field(
        default_factory=lambda: {"STD": (Decimal("19"), True)}
    )

    def _envelope(self, kind: str, data: dict[str, Any], **over: Any) -> dict[str, Any]:
        self.seq += 1
        local = dt.datetime.combine(
            self.day, dt.time(10, 0), ZoneInfo(self.timezone)
        ) + dt.timedelta(seconds=self.seq % 36_000)
        event = {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "register": self.register,
            "seq": self.seq,
            "occurred_at": local.isoformat(),
            "business_date": self.day.isoformat(),
            "data": data,
        }
        event.update(over)
        return event

    def sale(
        self, lines: list[tuple[str, str, str]], *, kind: str = "sale", **over: Any
    ) -> dict[str, Any]:
        """``lines``: (sku, qty, unit_price) with tax code STD; totals computed correctly."""
        rendered, gross, tax = [], Decimal(0), Decimal(0)
        for n, (sku, qty, price) in enumerate(lines, start=1):
            total = (Decimal(qty) * Decimal(price)).quantize(CENT, rounding=ROUND_HALF_UP)
            rate, _ = self.tax_rates["STD"]
            line_tax = (total * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
            gross += total
            tax += line_tax
            rendered.append(
                {"line_no": n, "sku": sku, "qty": qty, "unit_price": price, "discount": "0.00",
                 "tax_code": "STD", "line_total": money(total), "price_override_reason": None}
            )  # fmt: skip
        data = {
            "receipt_no": f"{self.store_code}-{self.register}-{self.seq + 1:06d}",
            "basket_id": str(uuid.uuid4()),
            "cashier": "C7",
            "currency": "EUR",
            "lines": rendered,
            "tenders": [{"method": "cash", "amount": money(gross), "change": "0.00"}],
            "totals": {"net": money(gross - tax), "tax": money(tax), "gross": money(gross)},
            "session_id": "sess-1",
        }
        data.update(over.pop("data", {}))
        return self._envelope(kind, data, **over)

    def return_of(
        self, original: dict[str, Any] | None, lines: list[tuple[str, str, str]]
    ) -> dict[str, Any]:
        event = self.sale(lines, kind="return")
        event["data"]["original_event_id"] = original["event_id"] if original else None
        for line in event["data"]["lines"]:
            line["original_line_no"] = line["line_no"] if original else None
        return event

    def adjustment(self, sku: str, qty_delta: str, reason: str = "damage") -> dict[str, Any]:
        return self._envelope(
            "stock_adjustment",
            {"lines": [{"sku": sku, "qty_delta": qty_delta, "reason": reason, "reference": None}]},
        )

    def count(self, counted: dict[str, str]) -> dict[str, Any]:
        return self._envelope(
            "stock_count",
            {"count_id": str(uuid.uuid4()),
             "lines": [{"sku": sku, "counted_qty": q} for sku, q in counted.items()]},
        )  # fmt: skip

    def session_open(self, session_id: str = "sess-1") -> dict[str, Any]:
        return self._envelope(
            "session_open", {"session_id": session_id, "cashier": "C7", "opening_float": "100.00"}
        )

    def device(self, state: str = "paper_out") -> dict[str, Any]:
        return self._envelope(
            "device_status",
            {"device": "printer-1", "kind": "printer", "state": state, "detail": None},
        )


def batch(
    events: list[dict[str, Any]], *, batch_id: str | None = None, node_time: str | None = None
) -> bytes:
    return json.dumps(
        {
            "batch_id": batch_id or str(uuid.uuid4()),
            "node_time": node_time or dt.datetime.now(dt.UTC).isoformat(),
            "events": events,
        }
    ).encode()
