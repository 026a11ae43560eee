"""The catalogue: currencies, tax rates, products and their barcodes, price lists, locations.

Invariants live in the database where they can: unique business keys, check constraints on
amounts and units, and no two prices of one SKU in one list whose validity overlaps (an
exclusion constraint on PostgreSQL, a trigger on SQLite; see migration 0002).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import In
from simple_history.models import HistoricalRecords

from inventory.barcodes import barcode_symbology

MONEY = {"max_digits": 14, "decimal_places": 4}
QUANTITY = {"max_digits": 14, "decimal_places": 3}

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    "Use letters, digits, '-', '_' and '.', starting with a letter or digit.",
    code="invalid_code",
)


class Currency(models.Model):
    """An ISO 4217 currency. ``minor_units`` is how many decimals its amounts carry."""

    code = models.CharField(primary_key=True, max_length=3)
    name = models.CharField(max_length=80)
    minor_units = models.PositiveSmallIntegerField()

    class Meta:
        verbose_name_plural = "currencies"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(minor_units__lte=4), name="currency_minor_units_at_most_4"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)


class TaxRate(models.Model):
    """A tax rate in percent. ``inclusive`` prices already contain the tax."""

    code = models.CharField(max_length=16, unique=True, validators=[code_validator])
    name = models.CharField(max_length=80)
    rate = models.DecimalField(
        max_digits=7, decimal_places=4, help_text="Percent, for example 19.0000 or 8.8750."
    )
    inclusive = models.BooleanField(
        default=True, help_text="Prices with this tax code already include the tax."
    )
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate__gte=0) & Q(rate__lt=100), name="tax_rate_percent_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({format(self.rate.normalize(), 'f')}%)"


class Unit(models.TextChoices):
    EACH = "each", "each"
    KG = "kg", "kilogram"


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=8, choices=Unit.choices, default=Unit.EACH)
    weighed = models.BooleanField(
        default=False, help_text="Sold by weight from the scale (unit must be kg)."
    )
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, related_name="products")
    active = models.BooleanField(default=True)
    cost = models.DecimalField(
        **MONEY,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Standard cost per unit, used until the stock ledger has a weighted average.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(cost__gte=0), name="product_cost_not_negative"),
            models.CheckConstraint(
                condition=Q(weighed=False) | Q(unit="kg"), name="product_weighed_is_kg"
            ),
            models.CheckConstraint(condition=Q(unit__in=["each", "kg"]), name="product_unit_known"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    def clean(self) -> None:
        if self.weighed and self.unit != Unit.KG:
            raise ValidationError({"weighed": "A weighed product is sold in kg."})


def validate_barcode(value: str) -> None:
    try:
        barcode_symbology(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid_barcode") from exc


class Barcode(models.Model):
    code = models.CharField(max_length=13, unique=True, validators=[validate_barcode])
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="barcodes")
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=In(Length("code"), [8, 12, 13]), name="barcode_gtin_length"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def symbology(self) -> str:
        return barcode_symbology(self.code)


class PriceList(models.Model):
    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=120)
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.currency_id})"


class Price(models.Model):
    """The price of one SKU in one list from ``valid_from`` to ``valid_to`` (both inclusive).

    Dates are store-local business dates: a price valid from 2026-12-01 applies from local
    midnight in each store that uses the list. ``valid_to`` empty means open-ended.
    """

    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="prices")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="prices")
    price = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0"))])
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["price_list", "product", "valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["price_list", "product", "valid_from"], name="price_unique_start"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="price_not_negative"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="price_valid_range_ordered",
            ),
        ]
        indexes = [models.Index(fields=["product", "valid_from"], name="price_product_from")]

    def __str__(self) -> str:
        return f"{self.product_id}@{self.valid_from}: {self.price}"


class StockLocation(models.Model):
    """Where stock is kept: a store's sales floor (one per store by default) or a warehouse."""

    class Kind(models.TextChoices):
        STORE = "store", "store"
        WAREHOUSE = "warehouse", "warehouse"

    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WAREHOUSE)
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["store", "warehouse"]), name="stock_location_kind_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class StockMove(models.Model):
    """One line of the append-only stock ledger: a quantity into (+) or out of (−) a location.

    Every sale, return, adjustment and count variance writes moves; nothing updates or deletes
    them. ``source_event`` is the store event that caused the move (its UUID, as the store
    sent it), ``business_date`` the store-local date, kept on the row so that day and period
    reports need no join.
    """

    class Kind(models.TextChoices):
        SALE = "sale", "sale"
        RETURN = "return", "return"
        ADJUSTMENT = "adjustment", "adjustment"
        COUNT = "count", "count variance"

    id = models.BigAutoField(primary_key=True)
    # Indexes cost most of an append-only ledger's write time: only those reads use are kept
    # (moves of a product, of a location's day, of an event within its location's day); the
    # location's own FK index is covered by the (location, business_date, source_event) one.
    # An index on source_event alone, a random UUID, put each of a batch's 2,000 moves on a
    # random page of the ledger's largest index: with 1 M sales stored it no longer stayed in
    # memory and slowed every batch; the current day of a location is a few hot pages. To
    # find an event's moves, give its location and business date as well.
    # No database constraints: ingestion writes
    # thousands of moves a batch, and each check locks its product's and location's row (FOR
    # KEY SHARE: a tuple lock written to the heap and the WAL, and a multixact when several
    # batches hold it). Measured: 17.7 ms of a 157 ms 500-sale batch, checks of sales
    # included. Moves are written only by ingestion, with ids it read in the same transaction;
    # a product or location with moves cannot be deleted (PROTECT, in the ORM).
    location = models.ForeignKey(
        StockLocation,
        on_delete=models.PROTECT,
        related_name="moves",
        db_index=False,
        db_constraint=False,
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="stock_moves", db_constraint=False
    )
    qty_delta = models.DecimalField(**QUANTITY)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.CharField(max_length=32, blank=True)
    reference = models.CharField(max_length=120, blank=True)
    business_date = models.DateField()
    source_event = models.UUIDField()
    line_no = models.PositiveIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["location", "business_date", "source_event"],
                name="stockmove_location_date_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id} {self.qty_delta:+}"


class StockLevel(models.Model):
    """On-hand quantity per location and product: the sum of its moves, kept by one atomic
    ``INSERT … ON CONFLICT DO UPDATE SET qty = qty + excluded.qty`` per move, so concurrent
    uploads never lose an update."""

    id = models.BigAutoField(primary_key=True)
    location = models.ForeignKey(
        StockLocation, on_delete=models.PROTECT, related_name="levels", db_index=False
    )  # the unique (location, product) index serves it
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock_levels")
    qty = models.DecimalField(**QUANTITY, default=Decimal("0"))
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["location", "product"]
        constraints = [
            models.UniqueConstraint(
                fields=["location", "product"], name="stocklevel_one_per_location_product"
            )
        ]

    def __str__(self) -> str:
        return f"{self.location_id}/{self.product_id}: {self.qty}"


class StockCount(models.Model):
    """A full or partial count of a location, with the book stock at the moment it was applied.

    Each counted line records ``book_qty`` and ``variance = counted_qty − book_qty``; the
    variance is also written as a stock move of kind ``count``, so the ledger stays the only
    source of on-hand quantities.
    """

    count_id = models.CharField(max_length=64)
    source_event = models.UUIDField(unique=True)
    location = models.ForeignKey(StockLocation, on_delete=models.PROTECT, related_name="counts")
    business_date = models.DateField()
    counted_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-counted_at"]

    def __str__(self) -> str:
        return f"count {self.count_id} at {self.location_id}"


class StockCountLine(models.Model):
    count = models.ForeignKey(StockCount, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    counted_qty = models.DecimalField(**QUANTITY)
    book_qty = models.DecimalField(**QUANTITY)
    variance = models.DecimalField(**QUANTITY)

    class Meta:
        ordering = ["count", "product"]
        constraints = [
            models.UniqueConstraint(fields=["count", "product"], name="stockcountline_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.counted_qty} (book {self.book_qty})"
