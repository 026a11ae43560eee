"""Stores, their registers and the keys their nodes authenticate with."""

from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import In
from simple_history.models import HistoricalRecords

from inventory.models import Currency, PriceList, StockLocation, code_validator

MONEY = {"max_digits": 14, "decimal_places": 4}

# Till operations a store can put behind a supervisor's PIN (store configuration).
SUPERVISOR_OPERATIONS = (
    "price_override",
    "line_discount",
    "basket_discount",
    "void_line",
    "void_basket",
    "return_with_receipt",
    "return_without_receipt",
    "cash_pay_out",
    "cash_drop",
    "stock_adjustment",
    "reprint",
)
DEFAULT_SUPERVISOR_OPERATIONS = (
    "price_override",
    "line_discount",
    "basket_discount",
    "return_without_receipt",
    "cash_pay_out",
)


def default_supervisor_operations() -> list[str]:
    return list(DEFAULT_SUPERVISOR_OPERATIONS)


def validate_supervisor_operations(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Give a list of operation names.", code="invalid")
    unknown = sorted(set(value) - set(SUPERVISOR_OPERATIONS))
    if unknown:
        raise ValidationError(
            f"Unknown till operation(s): {', '.join(unknown)}. Known: "
            f"{', '.join(SUPERVISOR_OPERATIONS)}.",
            code="unknown_operation",
        )
    if len(set(value)) != len(value):
        raise ValidationError("An operation is listed twice.", code="duplicate")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"{value!r} is not an IANA time zone name (for example Europe/Berlin).",
            code="invalid_timezone",
        )


class Store(models.Model):
    code = models.CharField(max_length=16, unique=True, validators=[code_validator])
    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, validators=[validate_timezone])
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    price_list = models.ForeignKey(PriceList, on_delete=models.PROTECT, related_name="stores")
    stock_location = models.OneToOneField(
        StockLocation,
        on_delete=models.PROTECT,
        related_name="store",
        help_text="The location that this store's tills sell from.",
    )
    active = models.BooleanField(default=True)
    # Offline rules: what a till may do while head office is unreachable. They reach the
    # node through the change feed as part of the store's configuration.
    offline_card_limit = models.DecimalField(
        **MONEY,
        default=Decimal("50"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Largest card payment a till accepts offline (store-and-forward), in the "
        "store's currency. 0 refuses cards while offline.",
    )
    offline_warn_hours = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(720)],
        help_text="Hours without a successful sync before the till warns the cashier.",
    )
    supervisor_operations = models.JSONField(
        default=default_supervisor_operations,
        blank=True,
        validators=[validate_supervisor_operations],
        help_text="Till operations that need a supervisor's code and PIN: "
        + ", ".join(SUPERVISOR_OPERATIONS)
        + ".",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(offline_card_limit__gte=0), name="store_offline_card_limit_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(offline_warn_hours__gte=1), name="store_offline_warn_hours_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def clean(self) -> None:
        price_list = getattr(self, "price_list", None) if self.price_list_id else None
        if (
            price_list is not None
            and self.currency_id
            and price_list.currency_id != self.currency_id
        ):
            raise ValidationError(
                {
                    "price_list": f"Price list {price_list.code} is in {price_list.currency_id}, "
                    f"but the store sells in {self.currency_id}."
                }
            )


class Register(models.Model):
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="registers")
    code = models.CharField(max_length=16, validators=[code_validator])
    name = models.CharField(max_length=120, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["store", "code"]
        constraints = [
            models.UniqueConstraint(fields=["store", "code"], name="register_code_unique_in_store")
        ]

    def __str__(self) -> str:
        return f"{self.store.code}/{self.code}"


class Cashier(models.Model):
    """Someone who signs in at a till with a code and a PIN, in the stores they work in.

    Only a slow hash of the PIN is stored (Django's password hashers). The hash travels to the
    store nodes in the change feed, so a till can check a PIN while head office is unreachable.
    """

    class Role(models.TextChoices):
        CASHIER = "cashier", "cashier"
        SUPERVISOR = "supervisor", "supervisor"

    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=120)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CASHIER)
    pin_hash = models.CharField(max_length=256, editable=False)
    active = models.BooleanField(default=True)
    stores = models.ManyToManyField(
        Store, through="CashierStore", related_name="cashiers", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The PIN hash stays out of history: a history view must not become a hash dump.
    history = HistoricalRecords(excluded_fields=["pin_hash"])

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["cashier", "supervisor"]), name="cashier_role_known"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class CashierStore(models.Model):
    """A cashier works in a store: the store's nodes receive the cashier in their feed."""

    cashier = models.ForeignKey(Cashier, on_delete=models.CASCADE, related_name="memberships")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="cashier_memberships")
    history = HistoricalRecords()

    class Meta:
        ordering = ["cashier", "store"]
        constraints = [
            models.UniqueConstraint(fields=["cashier", "store"], name="cashier_store_unique")
        ]

    def __str__(self) -> str:
        return f"{self.cashier_id} in {self.store_id}"


class NodeKey(models.Model):
    """A store node's API key. Only its SHA-256 digest is stored; the key is shown once.

    The key reads ``tbk_<prefix>_<secret>``: the prefix finds the row without scanning, the
    digest of the whole key proves it. Several keys of one store may be active at once, so a
    node can rotate without downtime.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="node_keys")
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords(excluded_fields=["last_used_at"])

    class Meta:
        ordering = ["store", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=In(Length("digest"), [64]), name="node_key_digest_is_sha256"
            )
        ]

    def __str__(self) -> str:
        return f"{self.store.code} key {self.prefix}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# --- what stores report: sessions, sales and returns, cash movements, device states ------------
# Rows below are written only by sync ingestion, in the transaction that records the event;
# their primary key is the event's UUID (or the session's), so a replay cannot add a second.

QUANTITY = {"max_digits": 14, "decimal_places": 3}


class TillSession(models.Model):
    """A cashier's shift on a register, from ``session_open`` to ``session_close`` (Z-report)."""

    id = models.BigAutoField(primary_key=True)
    # The node names its sessions; names are unique within a store only, so that one store's
    # node can never touch another store's shift.
    session_id = models.CharField(max_length=64)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="sessions")
    register = models.ForeignKey(Register, on_delete=models.PROTECT, related_name="sessions")
    cashier = models.CharField(max_length=32, blank=True)
    opening_float = models.DecimalField(**MONEY, null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_event = models.UUIDField(null=True, blank=True, unique=True)
    business_date = models.DateField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_event = models.UUIDField(null=True, blank=True, unique=True)
    first_seq = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    sale_count = models.IntegerField(null=True, blank=True)
    return_count = models.IntegerField(null=True, blank=True)
    gross = models.DecimalField(**MONEY, null=True, blank=True)
    tax = models.DecimalField(**MONEY, null=True, blank=True)
    tenders = models.JSONField(null=True, blank=True, help_text="Z-report tender totals")
    counted_cash = models.DecimalField(**MONEY, null=True, blank=True)

    class Meta:
        ordering = ["store", "register", "opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["store", "session_id"], name="session_unique_in_store")
        ]

    def __str__(self) -> str:
        return f"session {self.session_id}"


class Sale(models.Model):
    """A completed sale or return as the till recorded it. Returns carry positive amounts;
    ``type`` gives the sign."""

    class Type(models.TextChoices):
        SALE = "sale", "sale"
        RETURN = "return", "return"

    event_id = models.UUIDField(primary_key=True)
    type = models.CharField(max_length=8, choices=Type.choices)
    # FK indexes are left to the composite ones below (store, date) and (register, seq). No
    # database constraint: its check locks the store's and the register's row (FOR KEY SHARE)
    # once per sale, and every concurrent batch of the store locks the same two rows. Stores
    # and registers are never deleted while they have sales (PROTECT, in the ORM).
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="sales", db_index=False, db_constraint=False
    )
    register = models.ForeignKey(
        Register,
        on_delete=models.PROTECT,
        related_name="sales",
        db_index=False,
        db_constraint=False,
    )
    seq = models.BigIntegerField()
    receipt_no = models.CharField(max_length=64)
    basket_id = models.CharField(max_length=64, blank=True)
    session_id = models.CharField(max_length=64, blank=True)
    cashier = models.CharField(max_length=32, blank=True)
    currency = models.CharField(max_length=3)
    net = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    gross = models.DecimalField(**MONEY)
    occurred_at = models.DateTimeField()
    business_date = models.DateField()
    original_event = models.UUIDField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["store", "register", "seq"]
        indexes = [
            models.Index(fields=["store", "business_date"], name="sale_store_business_date"),
            models.Index(fields=["register", "seq"], name="sale_register_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.receipt_no}"


class SaleLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Written in the same statement batch as its sale, by ingestion only: a foreign-key check
    # would verify what the transaction itself just inserted (see the performance notes).
    # No index of its own either: see the Meta.
    sale = models.ForeignKey(
        Sale, on_delete=models.PROTECT, related_name="lines", db_index=False, db_constraint=False
    )
    line_no = models.PositiveIntegerField()
    sku = models.CharField(max_length=64)
    qty = models.DecimalField(**QUANTITY)
    unit_price = models.DecimalField(**MONEY)
    discount = models.DecimalField(**MONEY)
    tax_code = models.CharField(max_length=16)
    line_total = models.DecimalField(**MONEY)
    # The line's tax and net amount as ingestion computed and checked them, at the rate in
    # force then (null: a tax code head office did not know): the books post these, so a rate
    # changed between the sale and its posting cannot change what was charged.
    tax = models.DecimalField(**MONEY, null=True, blank=True)
    net = models.DecimalField(**MONEY, null=True, blank=True)
    price_override_reason = models.CharField(max_length=200, blank=True)
    original_line_no = models.PositiveIntegerField(null=True, blank=True)
    # Store and date are kept on the line so day reports aggregate without a join.
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    business_date = models.DateField()

    class Meta:
        ordering = ["sale", "line_no"]
        # One index serves a store's lines, a store-day's and a sale's (give its store and
        # business date: ``stores.selectors.sale_details``). An index on the sale alone, a
        # random UUID, put each of a batch's 2,000 lines on a random page of a large index,
        # and after every checkpoint wrote that page whole into the WAL again (a full-page
        # image): with tenders, 2,650 of a batch's 3,650 writes to random index pages (the
        # events' and sales' own ids are the rest). A store's current day is a few hot pages.
        indexes = [
            models.Index(fields=["store", "business_date", "sale"], name="saleline_store_date_sale")
        ]

    def __str__(self) -> str:
        return f"{self.sku} × {self.qty}"


class Tender(models.Model):
    id = models.BigAutoField(primary_key=True)
    sale = models.ForeignKey(
        Sale, on_delete=models.PROTECT, related_name="tenders", db_index=False, db_constraint=False
    )
    position = models.PositiveSmallIntegerField()
    method = models.CharField(max_length=16)
    amount = models.DecimalField(**MONEY)
    change = models.DecimalField(**MONEY)
    reference = models.CharField(max_length=120, blank=True)
    offline_authorized = models.BooleanField(default=False)
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    business_date = models.DateField()

    class Meta:
        ordering = ["sale", "position"]
        # A store's tenders of a day (the books' day view and posting), by store alone, and a
        # sale's (with its store and business date): see SaleLine.
        indexes = [
            models.Index(fields=["store", "business_date", "sale"], name="tender_store_date_sale")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount}"


class CashMovement(models.Model):
    class Kind(models.TextChoices):
        PAY_IN = "pay_in", "pay in"
        PAY_OUT = "pay_out", "pay out"
        DROP = "drop", "drop"

    event_id = models.UUIDField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="cash_movements")
    register = models.ForeignKey(Register, on_delete=models.PROTECT, related_name="+")
    session_id = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    business_date = models.DateField()

    class Meta:
        ordering = ["store", "occurred_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


class DeviceReport(models.Model):
    """A device state a node reported (printer out of paper, scale offline, …)."""

    event_id = models.UUIDField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="device_reports")
    register = models.ForeignKey(Register, on_delete=models.PROTECT, related_name="+")
    device = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)
    state = models.CharField(max_length=16)
    detail = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["store", "device", "occurred_at"]
        indexes = [models.Index(fields=["store", "device", "occurred_at"], name="device_latest")]

    def __str__(self) -> str:
        return f"{self.device}: {self.state}"


from stores.local import *  # noqa: F403,E402
