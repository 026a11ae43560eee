"""Daily posting: one balanced entry per store-day, from what ingestion stored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum

from books.models import JournalEntry, JournalLine, StoreDayPosting
from books.posting import store_days_post
from books.selectors import entry_for_sale, entry_for_stock_move, trial_balance
from inventory.models import StockMove
from tests.books.conftest import LATER, push
from tests.sync.builders import Till

pytestmark = pytest.mark.django_db


def _by_role(entry: JournalEntry) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for line in entry.lines.select_related("account"):
        key = f"{line.account.role}:{line.tax_code}" if line.tax_code else line.account.role
        out[key] = out.get(key, Decimal(0)) + line.debit - line.credit
    return out


def test_a_store_day_becomes_one_balanced_entry(shop) -> None:
    # given: two sales and a return on one day, paid cash and card
    _store, key = shop()
    till = Till()
    first = till.sale([("A", "2", "1.99"), ("B", "1", "3.50")])
    second = till.sale([("B", "2", "3.50")])
    second["data"]["tenders"] = [{"method": "card", "amount": "7.00", "change": "0.00"}]
    refund = till.return_of(first, [("A", "1", "1.99")])
    push(key, [first, second, refund])

    # when
    result = store_days_post(now=LATER)

    # then: one entry, balanced, revenue and tax per rate, tenders per method, COGS at cost
    assert result.entries == 1
    entry = JournalEntry.objects.get()
    assert entry.kind == "daily_sales"
    assert entry.business_date == dt.date(2026, 11, 23)
    totals = entry.lines.aggregate(d=Sum("debit"), c=Sum("credit"))
    assert totals["d"] == totals["c"]
    amounts = _by_role(entry)
    gross = Decimal("3.98") + Decimal("3.50") + Decimal("7.00")
    tax = Decimal("0.64") + Decimal("0.56") + Decimal("1.12")
    assert amounts["revenue:STD"] == -(gross - tax)
    assert amounts["returns:STD"] == Decimal("1.99") - Decimal("0.32")
    assert amounts["output_tax:STD"] == -(tax - Decimal("0.32"))
    assert amounts["cash"] == Decimal("7.48") - Decimal("1.99")
    assert amounts["card_clearing"] == Decimal("7.00")
    # 2 A + 3 B sold, 1 A back: cost 0.50 × 1 + 1.00 × 3
    assert amounts["cogs"] == Decimal("3.50")
    assert amounts["inventory"] == Decimal("-3.50")
    assert entry_for_sale(event_id=first["event_id"]) == entry
    assert entry_for_sale(event_id=refund["event_id"]) == entry
    move = StockMove.objects.filter(source_event=second["event_id"]).get()
    assert entry_for_stock_move(move_id=move.pk) == entry


def test_a_tax_rate_changed_before_posting_does_not_change_the_tax_charged(shop) -> None:
    # given: 10 × A (1.99, STD 19 % inclusive) ingested: tax 3.18 on 19.90
    from inventory.models import TaxRate
    from stores.models import SaleLine

    _store, key = shop()
    push(key, [Till().sale([("A", "10", "1.99")])])
    assert SaleLine.objects.get().tax == Decimal("3.18")

    # when: the rate is changed to 16 % before the day is posted
    TaxRate.objects.filter(code="STD").update(rate=Decimal("16"))
    store_days_post(now=LATER)

    # then: the books carry the tax the sale was charged and checked with
    amounts = _by_role(JournalEntry.objects.get())
    assert amounts["output_tax:STD"] == Decimal("-3.18")
    assert amounts["revenue:STD"] == -(Decimal("19.90") - Decimal("3.18"))


def test_posting_twice_posts_nothing_the_second_time(shop) -> None:
    _store, key = shop()
    till = Till()
    push(key, [till.sale([("A", "1", "1.99")])])
    assert store_days_post(now=LATER).entries == 1
    assert store_days_post(now=LATER).entries == 0
    assert JournalEntry.objects.count() == 1


def test_a_late_sale_for_a_posted_day_gets_a_supplementary_entry(shop) -> None:
    _store, key = shop()
    till = Till()
    push(key, [till.sale([("A", "1", "1.99")])])
    store_days_post(now=LATER)
    late = till.sale([("B", "1", "3.50")])
    push(key, [late])

    store_days_post(now=LATER)

    entries = list(JournalEntry.objects.order_by("id"))
    assert [e.kind for e in entries] == ["daily_sales", "supplementary"]
    assert entry_for_sale(event_id=late["event_id"]) == entries[1]
    assert StoreDayPosting.objects.count() == 2


def test_today_is_not_posted_until_it_is_over(shop) -> None:
    _store, key = shop()
    till = Till()
    push(key, [till.sale([("A", "1", "1.99")])])
    during = dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC)
    assert store_days_post(now=during).entries == 0
    assert store_days_post(now=during + dt.timedelta(days=1)).entries == 1


def test_stock_adjustments_and_receipts_are_valued_at_weighted_average_cost(shop) -> None:
    _store, key = shop()
    till = Till()
    push(key, [till.adjustment("A", "10", reason="receipt"), till.adjustment("A", "-2")])
    store_days_post(now=LATER)
    amounts = _by_role(JournalEntry.objects.get())
    assert amounts["inventory"] == Decimal("4.00")  # +10 × 0.50 − 2 × 0.50
    assert amounts["goods_received"] == Decimal("-5.00")
    assert amounts["shrinkage"] == Decimal("1.00")


def test_trial_balance_sums_to_zero(shop) -> None:
    _store, key = shop()
    till = Till()
    push(key, [till.sale([("A", "3", "1.99")]), till.sale([("B", "1", "3.50")])])
    store_days_post(now=LATER)
    rows = trial_balance(period_code="2026-11")
    assert sum(r.debit for r in rows) == sum(r.credit for r in rows) > 0
    assert JournalLine.objects.count() == len(JournalLine.objects.values("id"))


def test_cash_over_short_comes_from_the_session_close(shop) -> None:
    # given: float 100, cash sales 3.98, a 10.00 pay-out, counted 92.98 (one euro short)
    _store, key = shop()
    till = Till()
    opened = till.session_open()
    sale = till.sale([("A", "2", "1.99")])
    pay_out = till._envelope(
        "cash_movement",
        {"session_id": "sess-1", "kind": "pay_out", "amount": "10.00", "reason": "window cleaner"},
    )
    closed = till._envelope(
        "session_close",
        {"session_id": "sess-1", "first_seq": 1, "last_seq": 4, "sale_count": 1,
         "return_count": 0, "gross": "3.98", "tax": "0.64", "tenders": {"cash": "3.98"},
         "counted_cash": "92.98"},
    )  # fmt: skip
    push(key, [opened, sale, pay_out, closed])

    # when
    store_days_post(now=LATER)

    # then
    amounts = _by_role(JournalEntry.objects.get())
    assert amounts["cash_over_short"] == Decimal("1.00")
    assert amounts["suspense"] == Decimal("10.00")  # the pay-out, for finance to allocate
    assert amounts["cash"] == Decimal("3.98") - Decimal("10.00") - Decimal("1.00")
    # posted once: a second run finds the session and the movement already posted
    assert store_days_post(now=LATER).entries == 0


def test_a_pay_out_arriving_after_its_session_was_posted_corrects_the_over_short(shop) -> None:
    # given: float 100, a cash sale of 3.98, a 10.00 pay-out, counted 93.98 (exact); the
    # pay-out (seq 3) is held up, so the session's close is posted first, 10.00 short
    _store, key = shop()
    till = Till()
    opened = till.session_open()
    sale = till.sale([("A", "2", "1.99")])
    pay_out = till._envelope(
        "cash_movement",
        {"session_id": "sess-1", "kind": "pay_out", "amount": "10.00", "reason": "window cleaner"},
    )
    closed = till._envelope(
        "session_close",
        {"session_id": "sess-1", "first_seq": 1, "last_seq": 4, "sale_count": 1,
         "return_count": 0, "gross": "3.98", "tax": "0.64", "tenders": {"cash": "3.98"},
         "counted_cash": "93.98"},
    )  # fmt: skip
    push(key, [opened, sale, closed])
    store_days_post(now=LATER)

    # when: the pay-out arrives and is posted
    push(key, [pay_out])
    store_days_post(now=LATER)

    # then: over the two entries the drawer was exact and the cash account holds what is in it
    totals: dict[str, Decimal] = {}
    for entry in JournalEntry.objects.all():
        for role, amount in _by_role(entry).items():
            totals[role] = totals.get(role, Decimal(0)) + amount
    assert totals.get("cash_over_short", Decimal(0)) == 0
    assert totals["suspense"] == Decimal("10.00")
    assert totals["cash"] == Decimal("3.98") - Decimal("10.00")


@pytest.mark.django_db(transaction=True)
def test_ingesting_a_finished_day_posts_it_once_the_batch_commits(shop) -> None:
    # given: today's sales wait for the day to end; a batch for an earlier day does not
    from django.utils import timezone

    store, key = shop()
    till = Till()
    till.day = timezone.now().astimezone(store.tzinfo).date()
    push(key, [till.sale([("A", "1", "1.99")])])
    assert not JournalEntry.objects.exists()

    till.day = till.day - dt.timedelta(days=1)
    push(key, [till.sale([("B", "1", "3.50")])])

    # then: the posting task ran on commit (eagerly here) and posted yesterday only
    entry = JournalEntry.objects.get()
    assert entry.business_date == till.day


@pytest.mark.django_db(transaction=True)
def test_a_backlog_in_many_batches_is_posted_by_one_delayed_run(
    shop, settings, monkeypatch
) -> None:
    # given: a broker (tasks not eager) and a one-minute posting delay
    from django.core.cache import cache
    from django.utils import timezone

    from books import tasks

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.BOOKS_POST_DELAY_SECONDS = 60
    cache.clear()
    sent: list[tuple[list[int], int]] = []
    monkeypatch.setattr(
        tasks.store_days_post,
        "apply_async",
        lambda args, countdown: sent.append((args, countdown)),
    )
    store, key = shop()
    till = Till()
    till.day = timezone.now().astimezone(store.tzinfo).date() - dt.timedelta(days=1)

    # when: yesterday's sales arrive in three batches
    for _ in range(3):
        push(key, [till.sale([("A", "1", "1.99")])])

    # then: one run is sent, a minute later; nothing is posted yet
    assert sent == [([store.pk], 60)]
    assert not JournalEntry.objects.exists()
