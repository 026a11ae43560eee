"""Exactly once, whatever the network does: a stream of store events delivered as one clean
upload and delivered in pieces — split into batches any way, whole batches resent with the
same batch_id, events resent in new batches, registers interleaved arbitrarily, any prefix of
a register resent — leaves the same database state.

Within a register the node never reorders events across batches (``sync-protocol.md``, node
behaviour), so every delivery plan here keeps each register's order. Across registers
anything goes. Two facts legitimately depend on the order in which registers' events are
applied and are kept out of the stream: stock counts (book stock at the moment of the count)
and negative stock (a level that dips below zero in one order and not another); stock starts
high enough that no order makes it negative.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from inventory.ledger import Move, stock_moves_record
from inventory.models import Product, StockLevel, StockMove
from stores.models import CashMovement, Register, Sale, SaleLine, Store, Tender, TillSession
from sync.models import Event, ReconciliationException, RegisterSyncState
from tests.factories import RegisterFactory
from tests.sync.builders import batch
from tests.sync.conftest import PRICES, SKU_A, SKU_B, SKU_KG

pytestmark = pytest.mark.django_db

NS = uuid.UUID("0c5e3c1e-7a57-4d6b-a0a5-2f1e3e9a9c11")
BERLIN = ZoneInfo("Europe/Berlin")
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
DAY = "2026-11-23"
CENT = Decimal("0.01")
UNKNOWN_SKU = "NOT-IN-CATALOGUE"
REGISTERS = ("R1", "R2", "R3")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


# --- the stream ---------------------------------------------------------------------------------


class Stream:
    """Events as 2-3 store nodes' registers would number them, in the order they happened."""

    def __init__(self, registers: list[str]) -> None:
        self.registers = registers
        self.events: list[dict[str, Any]] = []
        self.seq = dict.fromkeys(registers, 0)
        self.session: dict[str, str | None] = dict.fromkeys(registers)
        self.sales: list[dict[str, Any]] = []

    def add(self, register: str, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        n = len(self.events)
        self.seq[register] += 1
        event = {
            "event_id": str(uuid.uuid5(NS, f"event-{n}")),
            "type": kind,
            "register": register,
            "seq": self.seq[register],
            "occurred_at": (T0 + dt.timedelta(seconds=37 * n)).isoformat(),
            "business_date": DAY,
            "data": data,
        }
        self.events.append(event)
        return event

    def of(self, register: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["register"] == register]


def _sale_data(stream: Stream, register: str, lines: list[dict[str, Any]], tender: str) -> dict:
    gross = sum((Decimal(line["line_total"]) for line in lines), Decimal(0))
    tax = sum(
        (
            (Decimal(line["line_total"]) * 19 / 119).quantize(CENT, rounding=ROUND_HALF_UP)
            for line in lines
        ),
        Decimal(0),
    )
    n = len(stream.events) + 1
    return {
        "receipt_no": f"S01-{register}-{n:06d}",
        "basket_id": str(uuid.uuid5(NS, f"basket-{n}")),
        "cashier": "C7",
        "currency": "EUR",
        "lines": lines,
        "tenders": [{"method": tender, "amount": money(gross), "change": "0.00"}],
        "totals": {"net": money(gross - tax), "tax": money(tax), "gross": money(gross)},
        "session_id": stream.session[register],
    }


@st.composite
def sale_lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    lines = []
    skus = [SKU_A, SKU_B, SKU_KG, SKU_A, SKU_B, SKU_KG, UNKNOWN_SKU]
    for line_no in range(1, draw(st.integers(1, 3)) + 1):
        sku = draw(st.sampled_from(skus))
        if sku == SKU_KG:  # weighed: a decimal quantity in kg
            qty = f"{Decimal(draw(st.integers(5, 2500))) / 1000:.3f}"
        else:
            qty = str(draw(st.integers(1, 4)))
        price = PRICES.get(sku, Decimal("3.00"))
        pricing = draw(st.sampled_from(["list", "list", "list", "other", "override"]))
        if pricing != "list":
            price += Decimal("0.10")
        total = money(Decimal(qty) * price)
        if draw(st.integers(0, 9)) == 0:  # a till that adds up wrongly
            total = money(Decimal(total) + CENT)
        lines.append(
            {"line_no": line_no, "sku": sku, "qty": qty, "unit_price": str(price),
             "discount": "0.00", "tax_code": "STD", "line_total": total,
             "price_override_reason": "manager" if pricing == "override" else None}
        )  # fmt: skip
    return lines


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    registers = list(REGISTERS[: draw(st.integers(2, 3))])
    stream = Stream(registers)
    for _ in range(draw(st.integers(1, 24))):
        register = draw(st.sampled_from(registers))
        kind = draw(
            st.sampled_from(["sale", "sale", "sale", "return", "adjustment", "cash", "session"])
        )
        if kind == "return" and not stream.sales:
            kind = "sale"
        if kind == "sale":
            lines = draw(sale_lines())
            tender = draw(st.sampled_from(["cash", "card"]))
            stream.sales.append(
                stream.add(register, "sale", _sale_data(stream, register, lines, tender))
            )
        elif kind == "return":
            original = draw(st.sampled_from(stream.sales))
            chosen = draw(
                st.lists(st.sampled_from(original["data"]["lines"]), min_size=1, unique_by=id)
            )
            lines = [
                {**line, "line_no": n, "original_line_no": line["line_no"]}
                for n, line in enumerate(chosen, start=1)
            ]
            data = _sale_data(stream, register, lines, "cash")
            with_receipt = draw(st.integers(0, 4)) > 0
            data["original_event_id"] = original["event_id"] if with_receipt else None
            if not with_receipt:
                for line in lines:
                    line["original_line_no"] = None
            stream.add(register, "return", data)
        elif kind == "adjustment":
            lines = []
            for sku in draw(st.lists(st.sampled_from([SKU_A, SKU_B, SKU_KG]), min_size=1,
                                     max_size=2, unique=True)):  # fmt: skip
                delta = draw(st.integers(1, 20) | st.integers(-5, -1))
                lines.append(
                    {"sku": sku, "qty_delta": str(delta),
                     "reason": "receipt" if delta > 0 else "damage", "reference": None}
                )  # fmt: skip
            stream.add(register, "stock_adjustment", {"lines": lines})
        elif kind == "cash":
            stream.add(
                register,
                "cash_movement",
                {"session_id": stream.session[register],
                 "kind": draw(st.sampled_from(["pay_in", "pay_out", "drop"])),
                 "amount": f"{draw(st.integers(1, 500))}.00", "reason": "float"},
            )  # fmt: skip
        else:
            current = stream.session[register]
            if current is None:
                session_id = f"{register}-sess-{len(stream.events)}"
                stream.session[register] = session_id
                stream.add(
                    register,
                    "session_open",
                    {"session_id": session_id, "cashier": "C7", "opening_float": "100.00"},
                )
            else:
                stream.session[register] = None
                stream.add(
                    register,
                    "session_close",
                    {"session_id": current, "first_seq": 1, "last_seq": stream.seq[register] + 1,
                     "sale_count": 1, "return_count": 0, "gross": "10.00", "tax": "1.60",
                     "tenders": {"cash": "10.00"}, "counted_cash": "110.00"},
                )  # fmt: skip
    return stream


# --- the database state that must not depend on delivery ----------------------------------------


def _d(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).normalize()


def snapshot() -> dict[str, Any]:
    codes = dict(Register.objects.values_list("pk", "code"))
    skus = dict(Product.objects.values_list("pk", "sku"))
    return {
        "events": sorted(
            (str(e), codes[r], seq, status, digest, reason, waiting)
            for e, r, seq, status, digest, reason, waiting in Event.objects.values_list(
                "event_id",
                "register_id",
                "seq",
                "status",
                "content_hash",
                "hold_reason",
                "waiting_for",
            )
        ),
        "sales": sorted(
            (
                str(s.event_id),
                s.type,
                codes[s.register_id],
                s.seq,
                s.receipt_no,
                s.basket_id,
                s.session_id,
                s.cashier,
                s.currency,
                _d(s.net),
                _d(s.tax),
                _d(s.gross),
                s.occurred_at,
                s.business_date,
                str(s.original_event),
            )
            for s in Sale.objects.all()
        ),
        "lines": sorted(
            (
                str(ln.sale_id),
                ln.line_no,
                ln.sku,
                _d(ln.qty),
                _d(ln.unit_price),
                _d(ln.discount),
                ln.tax_code,
                _d(ln.line_total),
                ln.price_override_reason,
                ln.original_line_no,
            )
            for ln in SaleLine.objects.all()
        ),
        "tenders": sorted(
            (str(t.sale_id), t.position, t.method, _d(t.amount), _d(t.change), t.reference)
            for t in Tender.objects.all()
        ),
        "moves": Counter(
            (
                str(m.source_event),
                m.line_no,
                m.kind,
                _d(m.qty_delta),
                skus[m.product_id],
                m.reason,
                m.business_date,
            )
            for m in StockMove.objects.all()
        ),
        "levels": sorted(
            (skus[level.product_id], level.location_id, _d(level.qty))
            for level in StockLevel.objects.all()
        ),
        "high_water": sorted(
            (codes[s.register_id], s.high_water, s.max_seq) for s in RegisterSyncState.objects.all()
        ),
        "sessions": sorted(
            (
                s.session_id,
                codes[s.register_id],
                s.cashier,
                _d(s.opening_float),
                str(s.open_event),
                str(s.close_event),
                s.last_seq,
                _d(s.counted_cash),
            )
            for s in TillSession.objects.all()
        ),
        "cash": sorted(
            (str(c.event_id), c.kind, _d(c.amount), c.session_id)
            for c in CashMovement.objects.all()
        ),
        "exceptions": sorted(
            ReconciliationException.objects.exclude(type="clock_skew").values_list(
                "dedup_key", "status"
            )
        ),
    }


class _RollBack(Exception):
    pass


def state_after(deliver) -> dict[str, Any]:
    """Run ``deliver`` against the fixtures' database and return the snapshot; roll back."""
    found: dict[str, Any] = {}
    cache.clear()  # throttle counters
    try:
        with transaction.atomic():
            deliver()
            found.update(snapshot())
            raise _RollBack
    except _RollBack:
        pass
    return found


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def scenery(store: Store, registers: dict[str, Register], products: dict[str, Product]) -> None:
    RegisterFactory(store=store, code="R3")
    seed = uuid.uuid5(NS, "opening stock")
    stock_moves_record(
        moves=[
            Move(location_id=store.stock_location_id, product_id=product.pk,
                 qty_delta=Decimal("10000"), kind="adjustment", business_date=dt.date(2026, 11, 1),
                 source_event=seed, line_no=n, reason="receipt")
            for n, product in enumerate(products.values(), start=1)
        ],
        now=timezone.now(),
    )  # fmt: skip


# --- the property --------------------------------------------------------------------------------


@pytest.mark.usefixtures("scenery")
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(stream=streams(), data=st.data())
def test_any_delivery_leaves_the_same_state_as_one_clean_upload(
    stream: Stream, data: st.DataObject, push, django_capture_on_commit_callbacks
) -> None:
    batches_sent = 0

    def send(events: list[dict[str, Any]], batch_id: str | None = None) -> tuple[bytes, Any]:
        nonlocal batches_sent
        batches_sent += 1
        body = batch(events, batch_id=batch_id or str(uuid.uuid5(NS, f"batch-{batches_sent}")))
        with django_capture_on_commit_callbacks(execute=True):  # held events released on commit
            response = push(body)
        assert response.status_code == 200, response.content
        answer = response.json()
        assert [r["event_id"] for r in answer["results"]] == [e["event_id"] for e in events]
        return body, response

    def clean() -> None:
        _, response = send(stream.events)
        statuses = {r["status"] for r in response.json()["results"]}
        assert statuses <= {"accepted", "held"}

    def in_pieces() -> None:
        per_register = {r: stream.of(r) for r in stream.registers}
        delivered = dict.fromkeys(stream.registers, 0)
        received: set[str] = set()
        sent: list[tuple[bytes, bytes]] = []

        def deliver(events: list[dict[str, Any]], body_id: str | None = None) -> None:
            body, response = send(events, body_id)
            for event, result in zip(events, response.json()["results"], strict=True):
                if event["event_id"] in received:
                    assert result["status"] == "duplicate", result
                else:
                    assert result["status"] in ("accepted", "held"), result
                    if result.get("code") == "original_not_received":
                        note("a return waited for its sale from another batch")
                received.add(event["event_id"])
            sent.append((body, response.content))

        for _ in range(data.draw(st.integers(2, 16), label="operations")):
            op = data.draw(st.sampled_from(["next", "next", "next", "resend", "prefix"]))
            pending = [r for r in stream.registers if delivered[r] < len(per_register[r])]
            if op == "next" and pending:
                chosen = data.draw(st.lists(st.sampled_from(pending), min_size=1, unique=True))
                take = {r: data.draw(st.integers(1, min(4, len(per_register[r]) - delivered[r])))
                        for r in chosen}  # fmt: skip
                # interleave registers arbitrarily; each register's own events stay in order
                order = data.draw(st.permutations([r for r in chosen for _ in range(take[r])]))
                queues = {r: iter(per_register[r][delivered[r] : delivered[r] + take[r]])
                          for r in chosen}  # fmt: skip
                deliver([next(queues[r]) for r in order])
                for r in chosen:
                    delivered[r] += take[r]
            elif op == "resend" and sent:
                body, first_answer = data.draw(st.sampled_from(sent))
                with django_capture_on_commit_callbacks(execute=True):
                    again = push(body)
                assert again.content == first_answer  # byte for byte
                note("a whole batch resent with its batch_id")
            elif op == "prefix":
                register = data.draw(st.sampled_from(stream.registers))
                if per_register[register]:
                    k = data.draw(st.integers(1, len(per_register[register])))
                    deliver(per_register[register][:k])  # a retry, maybe with newer events
                    delivered[register] = max(delivered[register], k)
        note(f"{len(sent)} batches")
        rest = [e for r in stream.registers for e in per_register[r][delivered[r] :]]
        if rest:
            deliver(rest)

    expected = state_after(clean)
    actual = state_after(in_pieces)

    assert expected["events"], "the stream is never empty"
    for part in expected:
        assert actual[part] == expected[part], part
