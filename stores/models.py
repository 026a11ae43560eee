"""Stores, their registers and the keys their nodes authenticate with."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import In
from simple_history.models import HistoricalRecords

from inventory.models import Currency, PriceList, StockLocation, code_validator


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

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
