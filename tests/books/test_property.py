"""For random streams of sales and returns, the posted journal equals what was ingested."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from books.models import JournalEntry, JournalLine
from books.posting import store_days_post
from stores.models import Sale, SaleLine, Tender
from tests.books.conftest import LATER, push
from tests.sync.builders import Till

pytestmark = pytest.mark.django_db
CENT = Decimal("0.01")
RATES = {"STD": Decimal("19"), "RED": Decimal("7")}

line = st.tuples(
    st.sampled_from(["A", "B"]),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=2500),  # unit price in cents
    st.sampled_from(["STD", "RED"]),
)
receipt = st.tuples(
    st.sampled_from(["sale", "sale", "return"]),
    st.lists(line, min_size=1, max_size=4),
    st.sampled_from(["cash", "card", "voucher", "split"]),
    st.integers(min_value=0, max_value=2),  # business day offset
)


def _event(till: Till, kind: str, lines, method: str) -> dict:
    rendered, gross, tax = [], Decimal(0), Decimal(0)
    for sku, qty, cents, code in lines:
        price = Decimal(cents) / 100
        total = (qty * price).quantize(CENT)
        rate = RATES[code]
        t = (total * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
        gross += total
        tax += t
        rendered.append((sku, str(qty), str(price), code, total))
    event = till.sale([(sku, qty, price) for sku, qty, price, _, _ in rendered], kind=kind)
    for data_line, (_, _, _, code, _) in zip(event["data"]["lines"], rendered, strict=True):
        data_line["tax_code"] = code
    event["data"]["totals"] = {"net": str(gross - tax), "tax": str(tax), "gross": str(gross)}
    if method == "split" and gross >= Decimal("0.02"):
        half = (gross / 2).quantize(CENT)
        event["data"]["tenders"] = [
            {"method": "cash", "amount": str(half), "change": "0.00"},
            {"method": "card", "amount": str(gross - half), "change": "0.00"},
        ]
    else:
        event["data"]["tenders"] = [
            {"method": "cash" if method == "split" else method, "amount": str(gross),
             "change": "0.00"}
        ]  # fmt: skip
    return event


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=st.lists(receipt, min_size=1, max_size=12), split=st.integers(0, 12))
def test_posting_totals_equal_the_ingested_sales(shop, stream, split) -> None:
    with transaction.atomic():
        _store, key = shop(code="P01")
        till = Till(store_code="P01")
        events = []
        for kind, lines, method, offset in stream:
            till.day = Till.day + dt.timedelta(days=offset)
            events.append(_event(till, kind, lines, method))
        # some arrive after a first posting: supplementary entries must add up the same
        push(key, events[:split])
        store_days_post(now=LATER)
        push(key, events[split:])
        store_days_post(now=LATER)

        lines = JournalLine.objects.select_related("account")
        # every entry balances
        for entry in JournalEntry.objects.all():
            sums = entry.lines.aggregate(d=Sum("debit"), c=Sum("credit"))
            assert sums["d"] == sums["c"]
        posted: dict[str, Decimal] = defaultdict(Decimal)
        for ln in lines:
            posted[ln.account.role] += ln.debit - ln.credit
        sign = {"sale": 1, "return": -1}
        gross = sum((sign[s.type] * s.gross for s in Sale.objects.all()), Decimal(0))
        tax = sum((sign[s.type] * s.tax for s in Sale.objects.all()), Decimal(0))
        # revenue (net of returns) + output tax = ingested gross; output tax = ingested tax
        assert -(posted["revenue"] + posted["returns"] + posted["output_tax"]) == gross
        assert -posted["output_tax"] == tax
        tenders = defaultdict(Decimal)
        for t in Tender.objects.select_related("sale"):
            tenders[t.method] += sign[t.sale.type] * (t.amount - t.change)
        assert posted["cash"] == tenders["cash"]
        assert posted["card_clearing"] == tenders["card"]
        assert posted["voucher"] == tenders["voucher"]
        assert posted.get("rounding", Decimal(0)) == 0
        assert SaleLine.objects.count() == sum(len(lines) for _, lines, _, _ in stream)
        transaction.set_rollback(True)
