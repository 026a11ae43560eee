"""The store node's outbox: every event of this register, numbered 1, 2, 3 … with no gaps,
kept until head office has acknowledged it and its high water has passed it.

``outbox_append`` runs inside the till operation's own transaction, so the sale and its event
commit together or not at all (and survive ``kill -9`` together: SQLite in WAL mode). The sync
agent (``sync.node.agent``) takes batches with ``outbox_batch_take``, records head office's
answer with ``outbox_batch_answered`` and prunes with ``outbox_prune``; each is one short
transaction, never held open across a network call.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from erp.errors import ApplicationError
from stores.local import LocalStoreConfig, NodeState, OutboxBatch, OutboxEvent

EVENT_TYPES = (
    "sale",
    "return",
    "session_open",
    "session_close",
    "cash_movement",
    "stock_adjustment",
    "stock_count",
    "device_status",
)
RECEIPT_TYPES = ("sale", "return")
# Answers after which an event is never sent again and leaves the outbox depth.
ACKNOWLEDGED = ("accepted", "duplicate", "held", "conflict")
RESULT_STATUSES = (*ACKNOWLEDGED, "rejected")

Status = OutboxEvent.Status


class NodeNotInitialised(ApplicationError):
    status = 409
    code = "node_not_initialised"
    default_message = (
        "This node is not set up yet: run manage.py node_init --hq URL --store CODE "
        "--register CODE --key KEY."
    )


class OutboxError(ApplicationError):
    code = "outbox_error"


class AnswerMismatch(OutboxError):
    """Head office's answer does not answer the batch that was sent: nothing is recorded."""

    code = "answer_mismatch"


def receipt_number(store_code: str, register_code: str, seq: int) -> str:
    """``STORE-REGISTER-SEQ``, the seq zero-padded to six digits (``S01-R1-001042``), so the
    receipts of a register sort and read in order; longer seqs simply grow."""
    return f"{store_code}-{register_code}-{seq:06d}"


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise TypeError("a naive datetime in event data; instants carry an offset")
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not allowed in event data")


def _refuse_floats(value: object, path: str = "data") -> None:
    """Money and quantities travel as decimal strings; a float would round them silently."""
    if isinstance(value, float):
        raise OutboxError(
            f"{path} is a float ({value!r}); send amounts and quantities as Decimal or string."
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_floats(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_floats(item, f"{path}[{index}]")


def encode_event(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _store_zone() -> zoneinfo.ZoneInfo | None:
    config = LocalStoreConfig.objects.values_list("data", flat=True).first()
    name = config.get("timezone") if isinstance(config, dict) else None
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def outbox_append(
    *,
    type: str,
    payload: Mapping[str, Any],
    occurred_at: dt.datetime,
    business_date: dt.date,
) -> OutboxEvent:
    """Append one event with the register's next seq, inside the caller's transaction.

    The first statement is the write that takes the seq (``UPDATE … RETURNING``): on SQLite
    it needs the database's write lock, so two processes appending at once are serialised and
    can never take the same seq; on PostgreSQL it locks the row. If the caller's transaction
    rolls back, so does the seq: numbers stay gap-free. For a ``sale`` or ``return`` the
    receipt number ``STORE-REGISTER-SEQ`` is set in the event's data (it is only known now).
    """
    if not connection.in_atomic_block:
        raise OutboxError(
            "outbox_append must run inside the till operation's transaction "
            "(transaction.atomic), so the event commits with what it records."
        )
    if type not in EVENT_TYPES:
        raise OutboxError(f"Unknown event type {type!r}; known: {', '.join(EVENT_TYPES)}.")
    if timezone.is_naive(occurred_at):
        raise OutboxError("occurred_at must be an aware datetime (an instant with its offset).")
    if not isinstance(business_date, dt.date) or isinstance(business_date, dt.datetime):
        raise OutboxError("business_date must be a date.")
    _refuse_floats(payload)

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {NodeState._meta.db_table} SET next_seq = next_seq + 1 WHERE id = 1 "
            "RETURNING next_seq - 1, store_code, register_code"
        )
        row = cursor.fetchone()
    if row is None:
        raise NodeNotInitialised()
    seq, store_code, register_code = int(row[0]), row[1], row[2]

    data = dict(payload)
    receipt_no = ""
    if type in RECEIPT_TYPES:
        receipt_no = receipt_number(store_code, register_code, seq)
        given = data.pop("receipt_no", None)
        if given not in (None, "", receipt_no):
            raise OutboxError(
                f"The receipt number is the outbox's to give ({receipt_no}), not {given!r}."
            )
        data = {"receipt_no": receipt_no, **data}

    zone = _store_zone()
    instant = occurred_at.astimezone(zone) if zone else occurred_at
    event_id = uuid.uuid4()
    event = {
        "event_id": str(event_id),
        "type": type,
        "register": register_code,
        "seq": seq,
        "occurred_at": instant.isoformat(timespec="milliseconds"),
        "business_date": business_date.isoformat(),
        "data": data,
    }
    try:
        text = encode_event(event)
    except (TypeError, ValueError) as exc:
        raise OutboxError(f"The event data cannot be sent: {exc}.") from exc
    return OutboxEvent.objects.create(
        seq=seq,
        event_id=event_id,
        type=type,
        receipt_no=receipt_no,
        business_date=business_date,
        payload=text,
        created_at=timezone.now(),
    )


# --- reads ----------------------------------------------------------------------------------


def _unacknowledged() -> Q:
    return Q(acked_at__isnull=True)


def outbox_depth() -> int:
    """Events not yet acknowledged by head office (pending, and rejected until fixed there)."""
    return OutboxEvent.objects.filter(_unacknowledged()).count()


def outbox_pending_count() -> int:
    """Events still to be sent."""
    return OutboxEvent.objects.filter(status=Status.PENDING).count()


def oldest_unsent_age(*, now: dt.datetime | None = None) -> dt.timedelta | None:
    """How long the oldest unacknowledged event has waited; None when there is none."""
    oldest = OutboxEvent.objects.filter(_unacknowledged()).aggregate(at=Min("created_at"))["at"]
    if oldest is None:
        return None
    return max((now or timezone.now()) - oldest, dt.timedelta(0))


def outbox_attention() -> list[dict[str, Any]]:
    """What an operator must look at: conflicts and rejections (and held events, which head
    office will apply by itself once what they wait for arrives)."""
    rows = OutboxEvent.objects.filter(
        status__in=[Status.CONFLICT, Status.REJECTED, Status.HELD]
    ).order_by("seq")
    return [
        {
            "kind": row.status,
            "seq": row.seq,
            "event_id": str(row.event_id),
            "type": row.type,
            "receipt_no": row.receipt_no,
            "code": row.code,
            "message": row.message,
        }
        for row in rows
    ]


def node_state() -> NodeState | None:
    return NodeState.objects.filter(pk=1).first()


def node_setup(
    *, hq_url: str, store_code: str, register_code: str, node_key: str, next_seq: int = 1
) -> tuple[NodeState, bool]:
    """Store who this node is (``node_init``). On a node already set up only head office's
    URL and the key change: the register, its numbering and the sync position stay."""
    with transaction.atomic():
        state = NodeState.objects.filter(pk=1).first()
        if state is None:
            state = NodeState.objects.create(
                hq_url=hq_url,
                store_code=store_code,
                register_code=register_code,
                node_key=node_key,
                next_seq=next_seq,
            )
            return state, True
        if (state.store_code, state.register_code) != (store_code, register_code):
            raise OutboxError(
                f"This node is already register {state.register_code} of store {state.store_code}."
            )
        state.hq_url, state.node_key = hq_url, node_key
        state.save(update_fields=["hq_url", "node_key", "updated_at"])
        return state, False


# --- the sync agent's side ------------------------------------------------------------------


@dataclass(frozen=True)
class BatchAnswerSummary:
    counts: dict[str, int]
    high_water: int | None
    pruned: int


def outbox_batch_take(*, limit: int, now: dt.datetime | None = None) -> OutboxBatch | None:
    """The batch to send: the one in flight if there is one (a retry sends it again, same id,
    same events), else a new one of the oldest pending events, in seq order. None when there
    is nothing to send. A new batch is committed before anything is sent."""
    # Read first, outside a transaction: an idle agent polls often, and on SQLite a write
    # transaction takes the lock the till's next sale needs.
    if (
        not OutboxBatch.objects.exists()
        and not OutboxEvent.objects.filter(status=Status.PENDING).exists()
    ):
        return None
    with transaction.atomic():
        in_flight = OutboxBatch.objects.first()
        if in_flight is not None:
            return in_flight
        events = list(
            OutboxEvent.objects.filter(status=Status.PENDING)
            .order_by("seq")
            .values_list("seq", "payload")[: max(1, limit)]
        )
        if not events:
            return None
        return OutboxBatch.objects.create(
            batch_id=uuid.uuid4(),
            first_seq=events[0][0],
            last_seq=events[-1][0],
            event_count=len(events),
            events="[" + ",".join(payload for _, payload in events) + "]",
            created_at=now or timezone.now(),
        )


def outbox_batch_attempted(*, batch: OutboxBatch, now: dt.datetime | None = None) -> None:
    OutboxBatch.objects.filter(pk=batch.pk).update(
        attempts=batch.attempts + 1, last_attempt_at=now or timezone.now()
    )
    batch.attempts += 1


def outbox_batch_drop(*, batch: OutboxBatch) -> None:
    """Forget the batch in flight after head office refused it whole (it applied nothing):
    its events stay pending and go out again in a new batch."""
    OutboxBatch.objects.filter(pk=batch.pk).delete()


def batch_event_ids(batch: OutboxBatch) -> list[str]:
    return [event["event_id"] for event in json.loads(batch.events)]


def outbox_batch_answered(
    *,
    batch: OutboxBatch,
    results: Sequence[Mapping[str, Any]],
    high_water: int | None,
    now: dt.datetime | None = None,
) -> BatchAnswerSummary:
    """Record head office's answer to ``batch``: each event's status, the register's high
    water; then prune and forget the batch. One transaction.

    The answer must name the batch's events in order, one result each; otherwise it answers
    something else and nothing is recorded (``AnswerMismatch``), the batch stays in flight.
    """
    now = now or timezone.now()
    ids = batch_event_ids(batch)
    answered = [str(r.get("event_id")) for r in results]
    if answered != ids:
        raise AnswerMismatch(
            f"Head office answered {len(results)} result(s) that do not match the "
            f"{len(ids)} event(s) of batch {batch.batch_id}; nothing recorded."
        )
    counts: dict[str, int] = {}
    by_status: dict[str, list[str]] = {}
    unknown = sorted({str(r.get("status")) for r in results} - set(RESULT_STATUSES))
    if unknown:
        raise AnswerMismatch(f"Head office answered unknown status(es): {', '.join(unknown)}.")
    with transaction.atomic():
        plain = [r for r in results if r["status"] in ("accepted", "duplicate")]
        for status in ("accepted", "duplicate"):
            chosen = [r["event_id"] for r in plain if r["status"] == status]
            if chosen:
                by_status[status] = chosen
                OutboxEvent.objects.filter(event_id__in=chosen).update(
                    status=status, acked_at=now, batch_id=batch.batch_id, code="", message=""
                )
        for result in results:
            status = result["status"]
            counts[status] = counts.get(status, 0) + 1
            if status in ("accepted", "duplicate"):
                continue
            OutboxEvent.objects.filter(event_id=result["event_id"]).update(
                status=status,
                acked_at=now if status in ACKNOWLEDGED else None,
                batch_id=batch.batch_id,
                code=str(result.get("code") or "")[:64],
                message=str(result.get("message") or ""),
            )
        OutboxBatch.objects.filter(pk=batch.pk).delete()
        if high_water is not None:
            NodeState.objects.filter(pk=1).update(hq_high_water=high_water, last_push_at=now)
        else:
            NodeState.objects.filter(pk=1).update(last_push_at=now)
        pruned = outbox_prune(high_water=high_water) if high_water is not None else 0
    return BatchAnswerSummary(counts=counts, high_water=high_water, pruned=pruned)


def outbox_prune(*, high_water: int, register_status: Mapping[str, Any] | None = None) -> int:
    """Delete acknowledged events at or below head office's ``high_water``; returns how many.

    Accepted and duplicate events go as soon as high water passes them. Held and conflicting
    events stay, for the operator to see, until head office's status (``register_status``,
    its answer for this register) shows none of that kind left: held ones applied, conflicts
    resolved. A rejected event is never acknowledged by a push answer; once head office's
    high water has passed it and it reports no rejected event, staff there fixed or voided
    it: it is acknowledged then, and goes too.
    """
    with transaction.atomic():
        at_or_below = Q(seq__lte=high_water)
        if register_status is not None:
            now = timezone.now()
            if not register_status.get("rejected"):
                OutboxEvent.objects.filter(
                    at_or_below, status=Status.REJECTED, acked_at__isnull=True
                ).update(acked_at=now, message="Fixed or voided at head office.")
        kinds = [Status.ACCEPTED, Status.DUPLICATE]
        if register_status is not None:
            if not register_status.get("held"):
                kinds.append(Status.HELD)
            if not register_status.get("conflicts"):
                kinds.append(Status.CONFLICT)
            if not register_status.get("rejected"):
                kinds.append(Status.REJECTED)
        deleted, _ = OutboxEvent.objects.filter(
            at_or_below, status__in=kinds, acked_at__isnull=False
        ).delete()
    return deleted
