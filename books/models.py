"""The books: chart of accounts, fiscal periods, the append-only journal, postings, close jobs.

Invariants the database keeps (see ``books/migrations/0002_journal_triggers.py``):

- a journal line is a debit or a credit with a non-negative amount (check constraints);
- a posted entry balances per currency (a DEFERRABLE INITIALLY DEFERRED constraint trigger on
  PostgreSQL, checked at commit; on SQLite the service layer checks it);
- posted entries and their lines are never updated or deleted (BEFORE UPDATE/DELETE triggers
  on both backends); corrections are linked reversal entries;
- no line is dated into a closed period, and a closed period never reopens (triggers on
  both backends).
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from stores.models import Store

MONEY = {"max_digits": 18, "decimal_places": 4}


class Account(models.Model):
    """An account of the chart. ``role`` is what posting uses it for; ``store`` and
    ``tax_code`` narrow a role (a cash account of one store, the revenue of one tax rate).
    Posting picks the most specific active account of a role."""

    class Kind(models.TextChoices):
        ASSET = "asset", "asset"
        LIABILITY = "liability", "liability"
        EQUITY = "equity", "equity"
        REVENUE = "revenue", "revenue"
        EXPENSE = "expense", "expense"

    class Role(models.TextChoices):
        CASH = "cash", "cash in store"
        CASH_IN_TRANSIT = "cash_in_transit", "cash in transit (drops)"
        CARD_CLEARING = "card_clearing", "card clearing"
        VOUCHER = "voucher", "voucher liability"
        OTHER_TENDER = "other_tender", "other tenders"
        REVENUE = "revenue", "sales revenue"
        RETURNS = "returns", "sales returns"
        OUTPUT_TAX = "output_tax", "output tax"
        INVENTORY = "inventory", "inventory"
        COGS = "cogs", "cost of goods sold"
        SHRINKAGE = "shrinkage", "shrinkage"
        GOODS_RECEIVED = "goods_received", "goods received not invoiced"
        STOCK_IN_TRANSIT = "stock_in_transit", "stock in transit"
        CASH_OVER_SHORT = "cash_over_short", "cash over/short"
        ROUNDING = "rounding", "rounding"
        SUSPENSE = "suspense", "suspense"
        NONE = "", "none (manual entries only)"

    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tax_code = models.CharField(max_length=16, blank=True)
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def ledger_name(self) -> str:
        """The account's name in a plain-text journal (hledger/ledger): ``Assets:1000 Cash``."""
        top = {
            "asset": "Assets",
            "liability": "Liabilities",
            "equity": "Equity",
            "revenue": "Revenue",
            "expense": "Expenses",
        }[self.kind]
        clean = "".join(ch if ch.isalnum() or ch in " -/" else " " for ch in self.name)
        return f"{top}:{self.code} {' '.join(clean.split())}"


class FiscalPeriod(models.Model):
    """A calendar month of the books: ``YYYY-MM``, open → closing → closed."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        CLOSING = "closing", "closing"
        CLOSED = "closed", "closed"

    code = models.CharField(max_length=7, unique=True)
    start = models.DateField()
    end = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    override_reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gte=models.F("start")), name="period_ordered"),
            models.CheckConstraint(
                condition=Q(status__in=["open", "closing", "closed"]), name="period_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"

    def is_locked(self) -> bool:
        return self.status == self.Status.CLOSED

    def can_post(self) -> bool:
        return self.status != self.Status.CLOSED

    @staticmethod
    def code_for(day: dt.date) -> str:
        return f"{day.year:04d}-{day.month:02d}"


class _GuardedQuerySet(models.QuerySet):
    """Posted journal rows refuse deletion here too: on SQLite this is the whole rule."""

    def delete(self):  # type: ignore[override]
        from books.errors import EntryImmutable

        model = self.model
        posted = (
            self.filter(status="posted")
            if model is JournalEntry
            else self.filter(entry__status="posted")
        )
        if posted.exists():
            raise EntryImmutable()
        return super().delete()


class JournalEntry(models.Model):
    class Kind(models.TextChoices):
        DAILY_SALES = "daily_sales", "daily store posting"
        SUPPLEMENTARY = "supplementary", "supplementary store posting (late arrivals)"
        REVERSAL = "reversal", "reversal"
        MANUAL = "manual", "manual"

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        POSTED = "posted", "posted"

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.POSTED)
    date = models.DateField(help_text="The date the entry is booked on (its period).")
    period = models.ForeignKey(FiscalPeriod, on_delete=models.PROTECT, related_name="entries")
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    business_date = models.DateField(
        null=True, blank=True, help_text="The store-day whose events the entry carries."
    )
    late = models.BooleanField(
        default=False, help_text="Carries events whose business date is in a closed period."
    )
    description = models.CharField(max_length=300)
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = _GuardedQuerySet.as_manager()

    class Meta:
        ordering = ["date", "id"]
        verbose_name_plural = "journal entries"
        indexes = [models.Index(fields=["store", "business_date"], name="entry_store_day")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["draft", "posted"]), name="entry_status_known"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.date} {self.description}"

    def delete(self, *args, **kwargs):  # type: ignore[override]
        from books.errors import EntryImmutable

        if self.status == self.Status.POSTED:
            raise EntryImmutable()
        return super().delete(*args, **kwargs)


class JournalLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    date = models.DateField(help_text="The entry's date, kept on the line for the period lock.")
    debit = models.DecimalField(**MONEY, default=0)
    credit = models.DecimalField(**MONEY, default=0)
    currency = models.CharField(max_length=3)
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    tax_code = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=200, blank=True)
    source = models.CharField(
        max_length=200, blank=True, help_text="What the amount comes from (events, ranges)."
    )

    objects = _GuardedQuerySet.as_manager()

    class Meta:
        ordering = ["entry", "id"]
        indexes = [models.Index(fields=["account", "date"], name="line_account_date")]
        constraints = [
            models.CheckConstraint(
                condition=Q(debit__gte=0) & Q(credit__gte=0), name="line_amounts_not_negative"
            ),
            models.CheckConstraint(
                condition=(Q(debit=0) & Q(credit__gt=0)) | (Q(credit=0) & Q(debit__gt=0)),
                name="line_debit_or_credit",
            ),
        ]

    def __str__(self) -> str:
        side = f"Dr {self.debit}" if self.debit else f"Cr {self.credit}"
        return f"{self.account_id} {side} {self.currency}"

    def delete(self, *args, **kwargs):  # type: ignore[override]
        from books.errors import EntryImmutable

        if self.entry.status == JournalEntry.Status.POSTED:
            raise EntryImmutable()
        return super().delete(*args, **kwargs)


class StoreDayPosting(models.Model):
    """One posting run's share of a store-day: which source rows went into which entry.

    Sale lines, tenders and stock moves are append-only with increasing ids, so a posting
    covers, per store-day, the rows with ids in ``(previous high, high]``. Nothing is written
    back to the source rows; a row that arrives later has a higher id and goes into a
    supplementary entry of its own. Sessions (closed by an update) and cash movements (UUID
    keys) are few and listed one by one in :class:`PostedSource`.
    """

    id = models.BigAutoField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    business_date = models.DateField()
    entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="postings"
    )
    line_low = models.BigIntegerField(default=0)
    line_high = models.BigIntegerField(default=0)
    tender_low = models.BigIntegerField(default=0)
    tender_high = models.BigIntegerField(default=0)
    move_low = models.BigIntegerField(default=0)
    move_high = models.BigIntegerField(default=0)
    sale_lines = models.IntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["store", "business_date", "id"]
        indexes = [models.Index(fields=["store", "business_date"], name="posting_store_day")]

    def __str__(self) -> str:
        return f"{self.store_id} {self.business_date} → {self.entry_id}"


class PostingMark(models.Model):
    """Per store: every source row with an id at or below the highs *and* a business date
    up to ``through`` is posted. A run therefore reads only rows above the highs or after
    ``through`` — recent ones — instead of the store's whole history."""

    store = models.OneToOneField(Store, on_delete=models.PROTECT, related_name="+")
    line_high = models.BigIntegerField(default=0)
    tender_high = models.BigIntegerField(default=0)
    move_high = models.BigIntegerField(default=0)
    through = models.DateField()

    def __str__(self) -> str:
        return f"{self.store_id} ≤ {self.through}"


class PostedSource(models.Model):
    """A session close or cash movement that went into an entry (few per store-day)."""

    class Kind(models.TextChoices):
        SESSION_CLOSE = "session_close", "session close"
        CASH_MOVEMENT = "cash_movement", "cash movement"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=64)
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="sources")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="posted_source_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class ItemCost(models.Model):
    """Weighted average cost of one product at one stock location, as posting keeps it.

    Each posting run values the receipts it sees at the product's catalogue cost, folds them
    into the average, and values every outgoing move of the run at the new average (a
    periodic weighted average, one period per run)."""

    location_id = models.BigIntegerField()
    product_id = models.BigIntegerField()
    qty = models.DecimalField(max_digits=18, decimal_places=3, default=0)
    avg_cost = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["location_id", "product_id"], name="item_cost_once")
        ]

    def __str__(self) -> str:
        return f"{self.location_id}/{self.product_id} @ {self.avg_cost}"


class Job(models.Model):
    """A long-running job (month-end close) with visible state and progress."""

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, default="period_close")
    period = models.ForeignKey(FiscalPeriod, on_delete=models.PROTECT, related_name="jobs")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    step = models.CharField(max_length=32, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    override_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.period_id} {self.state}"


class CloseReport(models.Model):
    """What a period looked like when it was locked: kept, so the report never changes."""

    period = models.OneToOneField(FiscalPeriod, on_delete=models.PROTECT, related_name="report")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    content = models.JSONField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"close report {self.period_id}"
