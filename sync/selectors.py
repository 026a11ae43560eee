"""Reads of sync state: what HQ holds per register, as the status endpoint and the monitor show."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from stores.models import NodeKey, Register, Store
from sync.models import (
    DeadLetter,
    Event,
    EventConflict,
    NodeSyncState,
    ReconciliationException,
    RegisterSyncState,
)


def register_gaps(*, register_id: int, high_water: int, max_seq: int) -> list[list[int]]:
    """Missing ranges ``[from, to]`` between high water and the highest seq received."""
    if max_seq <= high_water:
        return []
    seqs = set(
        Event.objects.filter(register_id=register_id, seq__gt=high_water).values_list(
            "seq", flat=True
        )
    ) | set(
        EventConflict.objects.filter(register_id=register_id, seq__gt=high_water).values_list(
            "seq", flat=True
        )
    )
    gaps: list[list[int]] = []
    start = None
    for n in range(high_water + 1, max_seq + 1):
        if n not in seqs and start is None:
            start = n
        elif n in seqs and start is not None:
            gaps.append([start, n - 1])
            start = None
    return gaps


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def store_sync_overview(*, store: Store) -> list[dict[str, Any]]:
    """Per register of ``store``: high water, gaps, last event and push, counts that need a
    person (held, conflicts, open dead letters)."""
    states = {s.register_id: s for s in RegisterSyncState.objects.filter(store=store)}
    held = dict(
        Event.objects.filter(store=store, status=Event.Status.HELD)
        .values_list("register_id")
        .annotate(n=Count("id"))
    )
    conflicts = dict(
        EventConflict.objects.filter(store=store, resolved_at__isnull=True)
        .values_list("register_id")
        .annotate(n=Count("id"))
    )
    rejected = dict(
        DeadLetter.objects.filter(store=store, status=DeadLetter.Status.OPEN)
        .values_list("register_code")
        .annotate(n=Count("id"))
    )
    rows = []
    for register in Register.objects.filter(store=store).order_by("code"):
        state = states.get(register.pk)
        high = state.high_water if state else 0
        rows.append(
            {
                "register": register,
                "code": register.code,
                "high_water": high,
                "max_seq": state.max_seq if state else 0,
                "gaps": register_gaps(
                    register_id=register.pk, high_water=high, max_seq=state.max_seq
                )
                if state
                else [],
                "last_event_at": state.last_event_at if state else None,
                "last_push_at": state.last_push_at if state else None,
                "held": held.get(register.pk, 0),
                "conflicts": conflicts.get(register.pk, 0),
                "rejected": rejected.get(register.code, 0),
            }
        )
    return rows


def sync_status(*, node_key: NodeKey) -> dict[str, Any]:
    store = node_key.store
    registers = {
        row["code"]: {
            "high_water": row["high_water"],
            "gaps": row["gaps"],
            "last_event_at": _iso(row["last_event_at"]),
            "held": row["held"],
            "conflicts": row["conflicts"],
            "rejected": row["rejected"],
        }
        for row in store_sync_overview(store=store)
    }
    node = NodeSyncState.objects.filter(node_key=node_key).first()
    nodes = [
        {
            "key_prefix": s.node_key.prefix,
            "last_push_at": _iso(s.last_push_at),
            "clock_skew_seconds": s.clock_skew_seconds,
        }
        for s in NodeSyncState.objects.filter(store=store).select_related("node_key")
    ]
    return {
        "server_time": _iso(timezone.now()),
        "store": store.code,
        "registers": registers,
        "node": {
            "key_prefix": node_key.prefix,
            "last_push_at": _iso(node.last_push_at) if node else None,
            "clock_skew_seconds": node.clock_skew_seconds if node else None,
        },
        "nodes": nodes,
    }


def node_sync_overview(*, store: Store) -> list[dict[str, Any]]:
    """Per node key of ``store`` (active ones, and revoked ones that have pushed): its last
    push and clock skew, and whether the skew is beyond ``SYNC_MAX_CLOCK_SKEW``."""
    limit = settings.SYNC_MAX_CLOCK_SKEW
    rows = []
    for key in (
        NodeKey.objects.filter(store=store).select_related("sync_state").order_by("-created_at")
    ):
        state = getattr(key, "sync_state", None)
        if state is None and not key.is_active:
            continue
        skew = state.clock_skew_seconds if state else None
        rows.append(
            {
                "node_key": key,
                "key_prefix": key.prefix,
                "label": key.label,
                "active": key.is_active,
                "last_push_at": state.last_push_at if state else None,
                "last_node_time": state.last_node_time if state else None,
                "clock_skew_seconds": skew,
                "skew_exceeded": skew is not None and abs(skew) > limit,
            }
        )
    return rows


def exception_list() -> QuerySet[ReconciliationException]:
    return ReconciliationException.objects.select_related(
        "store", "register", "resolved_by"
    ).order_by("-created_at", "-id")
