"""What a store node keeps in its own SQLite database: the mirror of master data, its sync
state and its outbox.

Node mode only (``ERP_ROLE=node``); at head office these tables exist (one code base, one set
of migrations) and stay empty. The mirror is keyed by business keys (``sku``, ``code``, the
feed's price key), never by head office's ids, and every row carries the change feed's
``version``: an upsert is applied when its version is at least the stored one
(``sync.node.feed``), and the pull ``generation`` that last saw it (a full pull from nothing
removes what it did not see). Only the sync agent writes the mirror; only the till's services
(through ``stores.outbox``) append to the outbox.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

__all__ = [
    "LocalBarcode",
    "LocalBasket",
    "LocalCashMovement",
    "LocalCashier",
    "LocalPinLockout",
    "LocalPrice",
    "LocalProduct",
    "LocalReceipt",
    "LocalRegister",
    "LocalStoreConfig",
    "LocalTaxRate",
    "LocalTillSession",
    "NodeState",
    "OutboxBatch",
    "OutboxEvent",
]

LOCAL_MONEY = {"max_digits": 14, "decimal_places": 4}


# --- the mirror of head office's master data ------------------------------------------------


class LocalProduct(models.Model):
    sku = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=8)
    tax_code = models.CharField(max_length=16)
    active = models.BooleanField(default=True)
    weighed = models.BooleanField(default=False)
    version = models.BigIntegerField()
    generation = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class LocalBarcode(models.Model):
    """A barcode of a product; replaced as a whole with each change of its product."""

    code = models.CharField(max_length=64, primary_key=True)
    product = models.ForeignKey(
        LocalProduct, on_delete=models.CASCADE, related_name="barcodes", db_column="sku"
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} → {self.product_id}"


class LocalPrice(models.Model):
    """A price of this store's price list; ``key`` is the feed's ``SKU@valid_from``.

    No foreign key to the product: a price may arrive before its product does."""

    key = models.CharField(max_length=128, primary_key=True)
    sku = models.CharField(max_length=64, db_index=True)
    price = models.DecimalField(**LOCAL_MONEY)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    version = models.BigIntegerField()
    generation = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["sku", "valid_from"]

    def __str__(self) -> str:
        return f"{self.sku} {self.price} from {self.valid_from}"


class LocalTaxRate(models.Model):
    code = models.CharField(max_length=16, primary_key=True)
    name = models.CharField(max_length=120, blank=True)
    rate = models.DecimalField(max_digits=7, decimal_places=4)
    inclusive = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    version = models.BigIntegerField()
    generation = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.rate} %"


class LocalCashier(models.Model):
    """A cashier of this store. ``pin_hash`` is head office's slow hash, checked locally so a
    cashier can sign in while head office is unreachable; the PIN itself never reaches here."""

    code = models.CharField(max_length=32, primary_key=True)
    name = models.CharField(max_length=120)
    role = models.CharField(max_length=16)
    pin_hash = models.CharField(max_length=256)
    active = models.BooleanField(default=True)
    version = models.BigIntegerField()
    generation = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class LocalRegister(models.Model):
    code = models.CharField(max_length=16, primary_key=True)
    name = models.CharField(max_length=120, blank=True)
    active = models.BooleanField(default=True)
    version = models.BigIntegerField()
    generation = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class LocalStoreConfig(models.Model):
    """The store's configuration as the feed sends it (time zone, currency and its minor
    units, price list, offline rules, supervisor operations), kept whole."""

    code = models.CharField(max_length=16, primary_key=True)
    data = models.JSONField()
    version = models.BigIntegerField()
    generation = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


# --- the node's own state ---------------------------------------------------------------------


class NodeState(models.Model):
    """Who this node is and where its sync stands: one row (id 1), written by ``node_init``
    and the sync agent.

    ``node_key`` is kept in plain text on purpose: the node must present it on every request
    to head office, which stores only its digest. It is as secret as the data directory that
    holds this database (keep that readable by the node's user only); it is never shown, and
    ``node_init`` with a new key replaces it when head office rotates keys.

    ``next_seq`` is the register's next event number. ``stores.outbox.outbox_append`` takes it
    with a conditional ``UPDATE … RETURNING`` inside the sale's transaction, so a rolled-back
    sale gives its number back and two writers can never take the same one.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    hq_url = models.CharField(max_length=500)
    store_code = models.CharField(max_length=16)
    register_code = models.CharField(max_length=16)
    node_key = models.CharField(max_length=200)
    # pull: where this node stands in its store's change feed
    cursor = models.TextField(blank=True)
    pull_etag = models.CharField(max_length=100, blank=True)
    # A pull from no cursor serves HQ's whole current state (without tombstones): it runs in
    # a new generation, and when it is complete the mirror rows it did not see are removed.
    pull_generation = models.BigIntegerField(default=0)
    resyncing = models.BooleanField(default=False)
    last_pull_at = models.DateTimeField(null=True, blank=True)
    # push and the health of the link
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_sync_ok_at = models.DateTimeField(null=True, blank=True)
    online = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # what head office holds for this register: high water (from push answers and status)
    # and its last status answer for the register (held, conflicts, rejected, gaps)
    hq_high_water = models.BigIntegerField(default=0)
    hq_status = models.JSONField(null=True, blank=True)
    next_seq = models.BigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "node state"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="node_state_single_row"),
            models.CheckConstraint(condition=Q(next_seq__gte=1), name="node_state_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"node {self.store_code}/{self.register_code}"


class OutboxEvent(models.Model):
    """One event of this register, waiting for (or answered by) head office.

    ``seq`` is the register's sequence number and the primary key: gap-free because it is
    taken in the transaction that writes the row. ``payload`` is the event exactly as it is
    sent, so every attempt sends the same bytes. ``status`` is ``pending`` until a push
    answer names the event, then head office's answer; ``acked_at`` is set for the answers
    after which the event is never sent again and counts no longer in the outbox depth
    (accepted, duplicate, held, conflict). A ``rejected`` event is not sent again either, but
    stays unacknowledged, and in the depth, until head office has fixed or voided it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        ACCEPTED = "accepted", "accepted"
        DUPLICATE = "duplicate", "duplicate"
        HELD = "held", "held"
        CONFLICT = "conflict", "conflict"
        REJECTED = "rejected", "rejected"

    seq = models.BigIntegerField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=32)
    receipt_no = models.CharField(max_length=64, blank=True)
    business_date = models.DateField()
    payload = models.TextField()
    created_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    acked_at = models.DateTimeField(null=True, blank=True)
    batch_id = models.UUIDField(null=True, blank=True, help_text="The batch that was answered.")
    code = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(condition=Q(seq__gte=1), name="outbox_seq_positive"),
            models.CheckConstraint(
                condition=Q(
                    status__in=["pending", "accepted", "duplicate", "held", "conflict", "rejected"]
                ),
                name="outbox_status_known",
            ),
        ]
        indexes = [models.Index(fields=["status", "seq"], name="outbox_status_seq")]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} ({self.status})"


class OutboxBatch(models.Model):
    """The batch in flight: at most one (``slot`` is 1 and unique), kept until head office's
    answer is recorded, so a retry after a lost answer sends the same ``batch_id`` and the
    same events (``events`` is the JSON array as sent) and gets head office's stored answer.
    """

    slot = models.PositiveSmallIntegerField(unique=True, default=1, editable=False)
    batch_id = models.UUIDField(primary_key=True)
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    event_count = models.PositiveIntegerField()
    events = models.TextField()
    created_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "outbox batches"
        constraints = [
            models.CheckConstraint(condition=Q(slot=1), name="outbox_batch_one_in_flight"),
            models.CheckConstraint(
                condition=Q(last_seq__gte=models.F("first_seq")), name="outbox_batch_range"
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id} ({self.first_seq}–{self.last_seq})"


# --- the till's own records (written only by ``stores.till.services``) ------------------------


class LocalTillSession(models.Model):
    """A cashier's shift on this register, from its ``session_open`` to its Z-report."""

    session_id = models.CharField(max_length=64, primary_key=True)
    cashier = models.CharField(max_length=32)
    opening_float = models.DecimalField(**LOCAL_MONEY)
    opened_at = models.DateTimeField()
    business_date = models.DateField()
    open_seq = models.BigIntegerField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_seq = models.BigIntegerField(null=True, blank=True)
    counted_cash = models.DecimalField(**LOCAL_MONEY, null=True, blank=True)
    z_report = models.JSONField(null=True, blank=True)
    # True while open, NULL once closed: unique, so one register has one open shift at most.
    open_slot = models.BooleanField(null=True, default=True, unique=True, editable=False)

    class Meta:
        ordering = ["open_seq"]

    def __str__(self) -> str:
        return f"session {self.session_id}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class LocalBasket(models.Model):
    """A basket being rung up: its lines, tenders and basket discount as a working document
    (JSON), priced again on every change; it becomes a ``LocalReceipt`` when completed."""

    class Status(models.TextChoices):
        OPEN = "open", "open"
        COMPLETED = "completed", "completed"
        VOIDED = "voided", "voided"

    basket_id = models.UUIDField(primary_key=True)
    session = models.ForeignKey(LocalTillSession, on_delete=models.PROTECT, related_name="baskets")
    cashier = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    lines = models.JSONField(default=list)
    tenders = models.JSONField(default=list)
    discount = models.JSONField(null=True, blank=True, help_text="The basket discount, if any.")
    next_line_no = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    void_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "completed", "voided"]), name="till_basket_status"
            )
        ]

    def __str__(self) -> str:
        return f"basket {self.basket_id} ({self.status})"


class LocalReceipt(models.Model):
    """A completed sale or return of this register as it was sent (``data`` is the event's
    data), kept after the outbox is pruned: returns by receipt number and reprints read it."""

    event_id = models.UUIDField(primary_key=True)
    type = models.CharField(max_length=8)
    seq = models.BigIntegerField(unique=True)
    receipt_no = models.CharField(max_length=64, unique=True)
    basket_id = models.CharField(max_length=64, blank=True, db_index=True)
    session_id = models.CharField(max_length=64, db_index=True)
    cashier = models.CharField(max_length=32)
    occurred_at = models.DateTimeField()
    business_date = models.DateField()
    gross = models.DecimalField(**LOCAL_MONEY)
    tax = models.DecimalField(**LOCAL_MONEY)
    data = models.JSONField()
    receipt_text = models.TextField()
    # For a sale: quantities returned so far by line_no (decimal strings).
    returned = models.JSONField(default=dict)
    original_receipt_no = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(
                condition=Q(type__in=["sale", "return"]), name="till_receipt_type"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.receipt_no}"


class LocalCashMovement(models.Model):
    """A pay-in, pay-out or drop in a session, for its Z-report."""

    event_id = models.UUIDField(primary_key=True)
    seq = models.BigIntegerField(unique=True)
    session = models.ForeignKey(
        LocalTillSession, on_delete=models.PROTECT, related_name="cash_movements"
    )
    kind = models.CharField(max_length=8)
    amount = models.DecimalField(**LOCAL_MONEY)
    reason = models.CharField(max_length=200, blank=True)
    cashier = models.CharField(max_length=32)
    authorised_by = models.CharField(max_length=32, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


class LocalPinLockout(models.Model):
    """Failed PIN attempts of one cashier code, shared by every process of the node (sign-in
    page, ``X-Cashier-Pin`` and supervisor approval): ``stores.till.auth`` locks the code for a
    while after too many in a row and deletes the row on a success."""

    code = models.CharField(max_length=32, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"PIN failures of {self.code}: {self.failures}"
