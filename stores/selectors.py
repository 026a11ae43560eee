"""Reads of stores, registers and node keys."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from stores.models import NodeKey, Register, Store


def store_list() -> QuerySet[Store]:
    return Store.objects.select_related(
        "currency", "price_list", "stock_location"
    ).prefetch_related(Prefetch("registers", queryset=Register.objects.order_by("code")))


def register_list(*, store: Store) -> QuerySet[Register]:
    return Register.objects.filter(store=store).select_related("store")


def node_key_list(*, store: Store) -> QuerySet[NodeKey]:
    return NodeKey.objects.filter(store=store).select_related("store", "created_by", "revoked_by")
