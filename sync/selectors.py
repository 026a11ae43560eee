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

SEQ_PAGE = 5000


def received_seqs(
    *, register_id: int, register_code: str, above: int, limit: int = SEQ_PAGE
) -> list[int]:
    """The lowest received seqs above ``above``, sorted — at most about ``limit`` of them.

    Received, for high water, means stored events, conflicts, and dead letters staff voided
    (a rejected event holds high water back only until it is fixed or voided). Bounded, so a
    register with a long tail after an old gap costs a page per batch, not its whole tail.
    """
    sources = [
        Event.objects.filter(register_id=register_id, seq__gt=above),
        EventConflict.objects.filter(register_id=register_id, seq__gt=above),
        DeadLetter.objects.filter(
            store__registers=register_id,
            register_code=register_code,
            status=DeadLetter.Status.VOIDED,
            seq__gt=above,
        ),
    ]
    merged: set[int] = set()
    ceiling: int | None = None
    for queryset in sources:
        page = list(queryset.order_by("seq").values_list("seq", flat=True)[:limit])
        merged.update(page)
        if len(page) == limit:  # this source goes on past its page: trust nothing beyond it
            ceiling = page[-1] if ceiling is None else min(ceiling, page[-1])
    return sorted(n for n in merged if ceiling is None or n <= ceiling)


def contiguous_high(high: int, seqs: list[int]) -> int:
    """The largest n ≥ ``high`` such that every seq in (high, n] is in ``seqs`` (sorted)."""
    for seq in seqs:
        if seq == high + 1:
            high = seq
        elif seq > high + 1:
            break
    return high


def high_water_from(*, register_id: int, register_code: str, high: int) -> tuple[int, list[int]]:
    """Advance ``high`` over every contiguous received seq. Returns the new high water and
    the page of received seqs above it (for gap reporting)."""
    while True:
        seqs = received_seqs(register_id=register_id, register_code=register_code, above=high)
        advanced = contiguous_high(high, seqs)
        if advanced == high or len(seqs) < SEQ_PAGE:
            return advanced, [n for n in seqs if n > advanced]
        high = advanced


MAX_GAPS_REPORTED = 100


def gap_ranges(high: int, seqs: list[int]) -> list[tuple[int, int]]:
    """Missing ``(from, to)`` ranges between ``high`` and the received ``seqs`` above it.

    Walks the received seqs, not the numbers between them: a till that jumps to seq 10**15
    costs one range, not 10**15 steps. At most ``MAX_GAPS_REPORTED`` ranges, lowest first.
    """
    gaps: list[tuple[int, int]] = []
    previous = high
    for seq in seqs:
        if seq <= previous:
            continue
        if seq > previous + 1:
            gaps.append((previous + 1, seq - 1))
            if len(gaps) == MAX_GAPS_REPORTED:
                break
        previous = seq
    return gaps


def register_gaps(*, register_id: int, register_code: str, high_water: int) -> list[list[int]]:
    """Missing ranges ``[from, to]`` between high water and the highest seq received."""
    _, seqs = high_water_from(register_id=register_id, register_code=register_code, high=high_water)
    return [[a, b] for a, b in gap_ranges(high_water, seqs)]


def iso_utc(value: dt.datetime | None) -> str | None:
    """An instant as RFC 3339 in UTC with milliseconds and a ``Z``, as the protocol answers."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
                    register_id=register.pk, register_code=register.code, high_water=high
                )
                if state and state.max_seq > high
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
            "last_event_at": iso_utc(row["last_event_at"]),
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
            "last_push_at": iso_utc(s.last_push_at),
            "last_pull_at": iso_utc(s.last_pull_at),
            "pull_current_at": iso_utc(s.pull_current_at),
            "clock_skew_seconds": s.clock_skew_seconds,
        }
        for s in NodeSyncState.objects.filter(store=store).select_related("node_key")
    ]
    return {
        "server_time": iso_utc(timezone.now()),
        "store": store.code,
        "registers": registers,
        "node": {
            "key_prefix": node_key.prefix,
            "last_push_at": iso_utc(node.last_push_at) if node else None,
            "last_pull_at": iso_utc(node.last_pull_at) if node else None,
            "pull_current_at": iso_utc(node.pull_current_at) if node else None,
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
                "last_pull_at": state.last_pull_at if state else None,
                "pull_current_at": state.pull_current_at if state else None,
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
