"""A posting run: ``store_days_post``, and its trigger after ingestion."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from books.models import (
    Account,
    PostedSource,
    PostingMark,
    StoreDayPosting,
)
from books.posting.aggregate import pg_aggregate, py_aggregate
from books.posting.common import (
    ADVISORY_KEY,
    MOVE_COUNTER,
    TENDER_ROLES,
    ZERO,
    Highs,
    PostingResult,
    StoreDay,
    move_class,
)
from books.posting.entries import entries_write
from books.posting.highs import cutoffs, source_highs
from stores.models import Store


def store_days_post_on_commit(*, store: Store, business_dates: set[dt.date]) -> bool:
    """After ingestion: when the batch carried events of a finished business date (a day
    just over, or a late arrival), post that store once the batch commits. Events of the
    store's current day wait for the day to end (the beat schedule posts it).

    The run is sent ``BOOKS_POST_DELAY_SECONDS`` later, once per store in that time: a node
    draining a backlog of yesterday's sales sends it in many batches, and one run after the
    last of them posts the day as one entry, where a run per batch would add a supplementary
    entry each time (and briefly hold up ingestion with its locks). Eager tasks (the embedded
    default and the tests) run at once."""
    yesterday = timezone.now().astimezone(store.tzinfo).date() - dt.timedelta(days=1)
    if not any(day <= yesterday for day in business_dates):
        return False
    from books.tasks import store_days_post as task

    store_id = store.pk
    delay = settings.BOOKS_POST_DELAY_SECONDS

    def send() -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER or delay == 0:
            task.delay([store_id])
        elif cache.add(f"books:post-pending:{store_id}", 1, timeout=delay):
            task.apply_async([store_id], countdown=delay)

    # robust: the batch is committed and answered whatever happens to the posting.
    transaction.on_commit(send, robust=True)
    return True


# --- the run -----------------------------------------------------------------------------------


def store_days_post(
    *,
    store_ids: Sequence[int] | None = None,
    through: dt.date | None = None,
    now: dt.datetime,
    actor: object = None,
) -> PostingResult:
    """Post every finished store-day that has unposted rows (see the module docstring).

    ``store_ids`` limits the run to some stores; ``through`` posts business dates up to and
    including that date (the close posts its whole period) instead of up to yesterday.
    """
    highs = source_highs()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_KEY])
        stores = list(Store.objects.select_related("currency").order_by("pk"))
        if store_ids is not None:
            wanted = set(store_ids)
            stores = [s for s in stores if s.pk in wanted]
        if not stores:
            return PostingResult(entries=0, store_days=0, sale_lines=0, late_entries=0)
        cut = cutoffs(stores=stores, through=through, now=now)
        minors = {s.pk: s.currency.minor_units for s in stores}
        prev = {
            (r["store_id"], r["business_date"]): (r["lh"], r["th"], r["mh"])
            for r in StoreDayPosting.objects.filter(store_id__in=list(cut))
            .values("store_id", "business_date")
            .annotate(lh=Max("line_high"), th=Max("tender_high"), mh=Max("move_high"))
        }
        marks = {
            m.store_id: (m.line_high, m.tender_high, m.move_high, m.through)
            for m in PostingMark.objects.filter(store_id__in=list(cut))
        }
        for store_id in cut:
            marks.setdefault(store_id, (0, 0, 0, dt.date(1, 1, 1)))
        if connection.vendor == "postgresql":
            sales, tenders, moves = pg_aggregate(cut, minors, highs, marks)
        else:
            sales, tenders, moves = py_aggregate(cut, minors, highs, prev)
        days: dict[tuple[int, dt.date], StoreDay] = {}

        def day_of(store_id: int, day: dt.date) -> StoreDay:
            key = (store_id, day)
            if key not in days:
                days[key] = StoreDay(store_id=store_id, business_date=day)
            days[key].touched = True
            return days[key]

        for sid, day, tax_code, type_, net, tax, count in sales:
            sd = day_of(sid, day)
            sd.sale_lines += count
            if type_ == "return":
                sd.add(Account.Role.RETURNS, tax_code, Decimal(net), "returns")
                sd.add(Account.Role.OUTPUT_TAX, tax_code, Decimal(tax), "output tax")
            else:
                sd.add(Account.Role.REVENUE, tax_code, -Decimal(net), "sales")
                sd.add(Account.Role.OUTPUT_TAX, tax_code, -Decimal(tax), "output tax")
        for sid, day, method, type_, amount in tenders:
            sign = Decimal(-1) if type_ == "return" else Decimal(1)
            role = TENDER_ROLES.get(method, Account.Role.OTHER_TENDER)
            day_of(sid, day).add(role, "", sign * Decimal(amount), f"tenders {method}")
        for sid, day, kind, reason, value in moves:
            sd = day_of(sid, day)
            value = Decimal(value)
            klass = move_class(kind, reason)
            sd.add(Account.Role.INVENTORY, "", value, f"stock {klass}")
            sd.add(MOVE_COUNTER[klass], "", -value, f"stock {klass}")
        _sessions_and_cash(cut=cut, day_of=day_of)
        for sd in days.values():
            residual = sum(
                (v for (role, _), v in sd.amounts.items()), ZERO
            )  # tenders vs revenue + tax: the explicit rounding line
            if residual:
                sd.add(Account.Role.ROUNDING, "", -residual, "rounding")
        result = entries_write(
            days=days, highs=highs, prev=prev, stores=stores, now=now, actor=actor
        )
        _marks_advance(cut=cut, marks=marks, highs=highs)
        return result


def _marks_advance(*, cut: dict[int, dt.date], marks, highs: Highs) -> None:
    """Everything at or below this run's highs up to its cutoff is now posted. A run with an
    earlier cutoff (the close of an old period) leaves a later mark as it is."""
    for store_id, cutoff in cut.items():
        if cutoff >= marks[store_id][3]:
            PostingMark.objects.update_or_create(
                store_id=store_id,
                defaults={
                    "line_high": highs.line,
                    "tender_high": highs.tender,
                    "move_high": highs.move,
                    "through": cutoff,
                },
            )


def _sessions_and_cash(*, cut: dict[int, dt.date], day_of) -> None:
    """Cash over/short from each session close, and cash movements, not yet posted."""
    from stores.models import CashMovement, TillSession

    posted = set(
        PostedSource.objects.filter(
            kind__in=[PostedSource.Kind.SESSION_CLOSE, PostedSource.Kind.CASH_MOVEMENT]
        ).values_list("key", flat=True)
    )
    sessions = TillSession.objects.filter(
        store_id__in=list(cut), close_event__isnull=False, opening_float__isnull=False
    ).order_by("pk")
    movements: dict[tuple[int, str], list[dict]] | None = None
    # Sessions whose close an earlier run posted: its over/short was computed from the cash
    # movements ingested by then, so one arriving later corrects the over/short, not the cash.
    closed_before: set[tuple[int, str]] = set()
    for s in sessions:
        if str(s.close_event) in posted:
            closed_before.add((s.store_id, s.session_id))
            continue
        if s.business_date is None or s.business_date > cut[s.store_id]:
            continue
        if movements is None:  # one read, and only when a session is to be posted
            movements = {}
            for m in CashMovement.objects.filter(store_id__in=list(cut)).values(
                "store_id", "session_id", "kind", "amount"
            ):
                movements.setdefault((m["store_id"], m["session_id"]), []).append(m)
        expected = (s.opening_float or ZERO) + Decimal(str((s.tenders or {}).get("cash", "0")))
        for m in movements.get((s.store_id, s.session_id), []):
            expected += {"pay_in": 1, "pay_out": -1, "drop": -1}[m["kind"]] * m["amount"]
        over = (s.counted_cash or ZERO) - expected
        sd = day_of(s.store_id, s.business_date)
        sd.sessions.append(str(s.close_event))
        if over:
            sd.add(Account.Role.CASH, "", over, f"session {s.session_id} over/short")
            sd.add(Account.Role.CASH_OVER_SHORT, "", -over, f"session {s.session_id}")
    for m in CashMovement.objects.filter(store_id__in=list(cut)).order_by("occurred_at"):
        if str(m.event_id) in posted or m.business_date > cut[m.store_id]:
            continue
        sd = day_of(m.store_id, m.business_date)
        sd.cash_movements.append(str(m.event_id))
        counter = {
            "pay_in": Account.Role.SUSPENSE,
            "pay_out": Account.Role.SUSPENSE,
            "drop": Account.Role.CASH_IN_TRANSIT,
        }[m.kind]
        sign = Decimal(1) if m.kind == "pay_in" else Decimal(-1)
        if (m.store_id, m.session_id) in closed_before:
            sd.add(
                Account.Role.CASH_OVER_SHORT,
                "",
                sign * m.amount,
                f"cash {m.kind} after session {m.session_id} was posted",
            )
        else:
            sd.add(Account.Role.CASH, "", sign * m.amount, f"cash {m.kind}")
        sd.add(counter, "", -sign * m.amount, f"cash {m.kind}")
