"""What arrives from store nodes, exactly once: batches, events, conflicts, dead letters.

Exactly-once is enforced by the database: ``Event.event_id`` is unique, so is
``(store, register, seq)``; a batch's response is stored with it and replayed. Ingestion
(``sync.push``) writes these rows with set-based SQL in one transaction per batch.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from stores.models import NodeKey, Register, Store


class Batch(models.Model):
    """One push request. ``response`` is the exact body answered, replayed for a retry."""

    batch_id = models.UUIDField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    node_key = models.ForeignKey(
        NodeKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty for a batch made at head office (a dead letter re-applied by staff).",
    )
    content_hash = models.CharField(max_length=64)
    event_count = models.PositiveIntegerField()
    node_time = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    response = models.BinaryField()

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["received_at"], name="batch_received_at")]

    def __str__(self) -> str:
        return str(self.batch_id)


class Event(models.Model):
    """A store event received once: applied at once (``accepted``) or waiting (``held``)."""

    class Status(models.TextChoices):
        APPLIED = "applied", "applied"
        HELD = "held", "held"

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    # No index of its own: the unique (register, seq) index serves lookups by register.
    register = models.ForeignKey(
        Register,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    seq = models.BigIntegerField()
    type = models.CharField(max_length=24)
    occurred_at = models.DateTimeField()
    business_date = models.DateField()
    received_at = models.DateTimeField()
    batch_id = models.UUIDField()
    content_hash = models.CharField(max_length=64)
    payload = models.TextField(help_text="The event's canonical JSON (keys sorted, compact).")
    status = models.CharField(max_length=8, choices=Status.choices)
    hold_reason = models.CharField(max_length=32, blank=True)
    waiting_for = models.CharField(max_length=64, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["store", "register", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["register", "seq"], name="event_one_per_register_seq"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="event_seq_positive"),
        ]
        indexes = [
            models.Index(
                fields=["hold_reason", "waiting_for"],
                name="event_held_waiting",
                condition=Q(status="held"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.register_id}#{self.seq}"


class EventConflict(models.Model):
    """An event stored for investigation and not applied: its id was used before with other
    content (``event_id_reused``), or its register and seq belong to another event
    (``seq_taken``: two devices believe they are the same register)."""

    class Reason(models.TextChoices):
        EVENT_ID_REUSED = "event_id_reused", "event id reused"
        SEQ_TAKEN = "seq_taken", "seq taken"

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField()
    content_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    register = models.ForeignKey(Register, on_delete=models.PROTECT, related_name="+")
    seq = models.BigIntegerField()
    existing_event_id = models.UUIDField(help_text="The event already holding the id or seq.")
    payload = models.TextField()
    batch_id = models.UUIDField()
    received_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "content_hash"], name="conflict_once_per_content"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.event_id}"


class DeadLetter(models.Model):
    """An event HQ could not understand, kept as received until staff fix or void it."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        REAPPLIED = "reapplied", "re-applied"
        VOIDED = "voided", "voided"

    id = models.BigAutoField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    batch_id = models.UUIDField()
    position = models.PositiveIntegerField(help_text="Index of the event in its batch.")
    event_id = models.CharField(max_length=64, blank=True)
    register_code = models.CharField(max_length=64, blank=True)
    seq = models.BigIntegerField(null=True, blank=True)
    raw = models.BinaryField(help_text="The event exactly as it appeared in the request body.")
    code = models.CharField(max_length=32)
    message = models.TextField()
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    history = HistoricalRecords(excluded_fields=["raw"])

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch_id", "position"], name="dead_letter_once_per_batch_position"
            )
        ]

    def __str__(self) -> str:
        return f"dead letter {self.code} ({self.event_id or 'no id'})"


class RegisterSyncState(models.Model):
    """Per register: how far HQ has received its sequence. Locked (``SELECT … FOR UPDATE``)
    by each batch that touches the register, so high water is computed without races."""

    register = models.OneToOneField(
        Register, primary_key=True, on_delete=models.PROTECT, related_name="sync_state"
    )
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    high_water = models.BigIntegerField(default=0)
    max_seq = models.BigIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_push_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["store", "register"]

    def __str__(self) -> str:
        return f"{self.register_id}: {self.high_water}"


class NodeSyncState(models.Model):
    """Per node key: its last push and pull, and the skew of its clock against HQ's."""

    node_key = models.OneToOneField(
        NodeKey, primary_key=True, on_delete=models.PROTECT, related_name="sync_state"
    )
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_node_time = models.DateTimeField(null=True, blank=True)
    clock_skew_seconds = models.FloatField(
        null=True, blank=True, help_text="Node clock minus HQ clock at the last push (seconds)."
    )
    last_pull_at = models.DateTimeField(
        null=True, blank=True, help_text="Last master-data pull (to the minute)."
    )
    pull_current_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last pull that reached the end of the feed: the node held head office's "
        "master data as of then.",
    )

    class Meta:
        ordering = ["store"]

    def __str__(self) -> str:
        return f"{self.node_key_id}: skew {self.clock_skew_seconds}"


class ReconciliationException(models.Model):
    """A business problem found in what stores sent, for a person to resolve.

    Raised at ingestion (the sale is kept regardless) and, later, by reconciliation. Some
    resolve themselves when their cause disappears (a sequence gap filled by a late upload).
    ``dedup_key`` makes raising the same problem twice a no-op.
    """

    class Type(models.TextChoices):
        TOTALS_MISMATCH = "totals_mismatch", "totals do not add up"
        PRICE_DIFFERS = "price_differs", "price differs from the price list"
        NEGATIVE_STOCK = "negative_stock", "negative stock"
        BUSINESS_DATE_MISMATCH = "business_date_mismatch", "business date disagrees with time"
        CLOCK_SKEW = "clock_skew", "node clock skew"
        SEQ_GAP = "seq_gap", "gap in a register's sequence"
        CURRENCY_MISMATCH = "currency_mismatch", "currency differs from the store's"
        LATE_FOR_CLOSED_PERIOD = "late_for_closed_period", "arrived after its period closed"
        EVENT_CONFLICT = "event_conflict", "conflicting event"
        REJECTED_EVENT = "rejected_event", "rejected event"

    class Severity(models.TextChoices):
        INFO = "info", "info"
        WARNING = "warning", "warning"
        BLOCKING = "blocking", "blocking"

    class Status(models.TextChoices):
        OPEN = "open", "open"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        RESOLVED = "resolved", "resolved"

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=32, choices=Type.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    register = models.ForeignKey(
        Register, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    business_date = models.DateField(null=True, blank=True)
    event_id = models.UUIDField(null=True, blank=True)
    dedup_key = models.CharField(max_length=200, unique=True)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["store", "business_date"], name="exception_store_date"),
            models.Index(fields=["status", "type"], name="exception_status_type"),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.store_id} ({self.status})"


# --- the master-data change feed (pull) ---------------------------------------------------------


class FeedChange(models.Model):
    """The latest change of one entity as one store scope sees it: the compacted change feed.

    Database triggers (``sync.feed.triggers``) write these rows in the transaction that
    changes the master data, whatever the path: admin, API, bulk upsert, COPY, raw SQL,
    migrations. There is one row per ``(entity, scope, entity_key)``; each change moves the row
    to the changing transaction (``txid``) and gives it a new ``version``, so a node starting
    from nothing reads the current state, and a node following its cursor reads every change.
    A delete leaves the row as a tombstone (``op = delete``).

    ``scope`` is ``global`` (products, tax rates), ``pl:<price list id>`` (prices) or
    ``store:<store id>`` (configuration, registers, cashiers, and the prices a store receives
    when it changes price list). ``txid`` is the PostgreSQL transaction id (0 on SQLite, whose
    writers are serialised); the pull serves rows by snapshot visibility of ``txid`` in the
    order ``(txid, version, id)``.
    """

    entity = models.CharField(max_length=16)
    scope = models.CharField(max_length=32)
    entity_key = models.CharField(max_length=128)
    obj_id = models.BigIntegerField(null=True, blank=True)
    op = models.CharField(max_length=8)
    txid = models.BigIntegerField()
    version = models.BigIntegerField()

    class Meta:
        ordering = ["txid", "version", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "scope", "entity_key"], name="feed_change_one_per_entity"
            ),
            models.CheckConstraint(
                condition=Q(op__in=["upsert", "delete"]), name="feed_change_op_known"
            ),
        ]
        indexes = [
            models.Index(fields=["scope", "txid", "version", "id"], name="feed_change_position")
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.entity_key} ({self.scope}) v{self.version} {self.op}"


class FeedClock(models.Model):
    """SQLite only: the counter that gives feed changes their version (one row, id 1).

    PostgreSQL uses the sequence ``sync_feed_version``; SQLite has no sequences, and its
    writers are serialised, so a counter row read and bumped by the triggers is exact.
    """

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"feed clock {self.value}"
