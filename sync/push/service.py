"""``batch_push``: one push request, applied exactly once, answered the same way every time.

In one transaction: claim the batch id (a concurrent request with the same id waits on the
unique key and then replays the stored answer), lock the sync state of the registers it
names (primary-key order), classify each event against what is stored (duplicate, conflict,
held, new), store the new ones, apply them, move each register's high water, store the
answer with the batch. A crash anywhere before commit leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from erp.bulk import array_literal, insert_rows, select_rows
from erp.errors import ApplicationError
from stores.models import NodeKey, Register, Sale, Store
from sync.exception_queue import Problem, Type, exceptions_raise, exceptions_resolve_automatically
from sync.models import Batch, Event, EventConflict
from sync.push.apply import Applier, Catalogue
from sync.push.parse import Incoming, ParsedBatch, parse_batch
from sync.selectors import contiguous_high, gap_ranges, high_water_from, iso_utc


class ForbiddenRegister(ApplicationError):
    status = 403
    code = "forbidden_register"
    default_message = "The batch names a register that is not one of this store's."


class BatchIdReused(ApplicationError):
    status = 422
    code = "batch_id_reused"
    default_message = "This batch_id was used before for a different batch."


class BatchInProgress(ApplicationError):
    status = 409
    code = "batch_in_progress"
    default_message = "A request with this batch_id is still being processed; retry shortly."


@dataclass
class PushResult:
    body: bytes
    replayed: bool
    applied_sales: list[str]
    held_skus: list[str]
    held_originals: list[str]


_encoder = msgspec.json.Encoder()
_ATTEMPTS = 3


def batch_push(*, node_key: NodeKey, body: bytes) -> PushResult:
    """Process one push body for ``node_key``'s store. Raises ApplicationError for whole-batch
    refusals; otherwise returns the answer (also stored, for replays)."""
    return batch_ingest(store_id=node_key.store_id, node_key=node_key, body=body)


def batch_ingest(*, store_id: int, node_key: NodeKey | None, body: bytes) -> PushResult:
    """The push pipeline for a store; ``node_key`` None for a batch made at head office."""
    parsed = parse_batch(body)
    store = Store.objects.select_related("currency").get(pk=store_id)
    registers = {r.code: r for r in Register.objects.filter(store=store)}
    foreign = sorted(
        {e.register_code for e in parsed.events if e.register_code is not None} - set(registers)
    )
    if foreign:
        raise ForbiddenRegister(
            f"Register{'s' if len(foreign) > 1 else ''} {', '.join(foreign)} "
            f"{'are' if len(foreign) > 1 else 'is'} not one of store {store.code}'s; "
            "nothing was applied.",
            details={"registers": foreign},
        )
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            owns_transaction = not connection.in_atomic_block
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "SET LOCAL lock_timeout = %s",
                            [f"{settings.SYNC_LOCK_TIMEOUT_SECONDS}s"],
                        )
                return _process(
                    node_key=node_key,
                    store=store,
                    registers=registers,
                    parsed=parsed,
                    owns_transaction=owns_transaction,
                )
        except IntegrityError:
            # A concurrent batch committed one of these events (or seqs) between our reads and
            # our writes, outside the registers we locked (one event id under two registers).
            # The transaction is gone; run it again and it sees that batch's rows.
            if attempt == _ATTEMPTS:
                raise
        except OperationalError as exc:
            text = str(exc).lower()
            if "deadlock" in text and attempt < _ATTEMPTS:
                continue  # PostgreSQL chose this batch as the victim: run it again
            if "lock" not in text:
                raise
            raise BatchInProgress(
                "The batch, or a register it names, is busy with another request; retry shortly.",
                headers={"Retry-After": "2"},
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _process(
    *,
    node_key: NodeKey | None,
    store: Store,
    registers: dict[str, Register],
    parsed: ParsedBatch,
    owns_transaction: bool,
) -> PushResult:
    now = timezone.now()
    batch_id = uuid.UUID(parsed.batch_id)
    claimed = insert_rows(
        "sync_batch",
        (
            ("batch_id", "uuid"), ("store_id", "bigint"), ("node_key_id", "bigint"),
            ("content_hash", "text"), ("event_count", "integer"), ("node_time", "timestamptz"),
            ("received_at", "timestamptz"), ("response", "bytea"),
        ),
        [(batch_id, store.pk, node_key.pk if node_key else None, parsed.content_hash,
          len(parsed.events), parsed.node_time, now, b"")],
        on_conflict="ON CONFLICT (batch_id) DO NOTHING",
        returning="batch_id",
    )  # fmt: skip
    if not claimed:
        earlier = (
            Batch.objects.filter(batch_id=batch_id)
            .values_list("store_id", "content_hash", "response")
            .first()
        )
        if earlier is None:  # pragma: no cover - the conflicting row is committed by now
            raise BatchInProgress(headers={"Retry-After": "1"})
        store_id, content_hash, response = earlier
        if store_id != store.pk or content_hash != parsed.content_hash:
            raise BatchIdReused(
                "This batch_id was used before with different events; use a new batch_id "
                "for a new batch. Nothing was applied."
            )
        return PushResult(body=bytes(response), replayed=True, applied_sales=[], held_skus=[],
                          held_originals=[])  # fmt: skip

    problems: list[Problem] = []
    events = parsed.events
    valid = [e for e in events if e.valid]
    register_pk = {code: r.pk for code, r in registers.items()}
    register_ids = sorted({register_pk[e.envelope.register] for e in valid})
    states = _lock_register_states(store=store, register_ids=register_ids)

    if connection.vendor == "postgresql":
        # One round trip per lookup, whatever the batch size; keys as array literals.
        id_array = array_literal(e.event_id for e in valid)
        stored = dict(
            select_rows(
                "SELECT event_id, content_hash FROM sync_event WHERE event_id = ANY(%b::uuid[])",
                [id_array],
            )
        )
        conflict_rows = (
            select_rows(
                "SELECT event_id, content_hash, reason FROM sync_eventconflict "
                "WHERE event_id = ANY(%b::uuid[])",
                [id_array],
            )
            if stored or not valid
            else []
        )
        # The batch's own (register, seq) pairs, each one probe of the unique index. The form
        # "register_id = ANY(…) AND seq = ANY(…)" let the planner, misled by statistics taken
        # when the table was small, read every event of the register and filter: a batch's
        # cost grew with the register's history (199 → 455 ms over 100,000 sales).
        pairs = sorted({(register_pk[e.envelope.register], e.envelope.seq) for e in valid})
        taken_rows = select_rows(
            "SELECT e.register_id, e.seq, e.event_id "
            "FROM unnest(%b::bigint[], %b::bigint[]) AS k(register_id, seq) "
            "JOIN sync_event e ON e.register_id = k.register_id AND e.seq = k.seq",
            [array_literal(r for r, _ in pairs), array_literal(n for _, n in pairs)],
        )
    else:
        ids = [e.envelope.event_id for e in valid]
        stored = dict(
            Event.objects.filter(event_id__in=ids).values_list("event_id", "content_hash")
        )
        conflict_rows = list(
            EventConflict.objects.filter(event_id__in=ids).values_list(
                "event_id", "content_hash", "reason"
            )
        )
        seqs = sorted({e.envelope.seq for e in valid})
        taken_rows = list(
            Event.objects.filter(register_id__in=register_ids, seq__in=seqs).values_list(
                "register_id", "seq", "event_id"
            )
        )
    known_conflicts = {(eid, digest): reason for eid, digest, reason in conflict_rows}
    taken = {(reg, seq): eid for reg, seq, eid in taken_rows}

    seen_ids: dict[uuid.UUID, str] = {}
    seen_seqs: dict[tuple[int, int], uuid.UUID] = {}
    new: list[Incoming] = []
    conflicts: list[tuple[Incoming, str, uuid.UUID]] = []
    dead: list[Incoming] = []
    for e in events:
        if not e.valid:
            code, message = e.error or ("invalid_event", "invalid")
            e.result = {"event_id": e.event_id, "status": "rejected", "code": code,
                        "message": message}  # fmt: skip
            dead.append(e)
            continue
        env = e.envelope
        key = (register_pk[env.register], env.seq)
        reason = known_conflicts.get((env.event_id, e.content_hash))
        earlier_hash = stored.get(env.event_id, seen_ids.get(env.event_id))
        if reason is not None:
            e.result = _conflict_result(e, reason)
        elif earlier_hash is not None:
            if earlier_hash == e.content_hash:
                e.result = {"event_id": e.event_id, "status": "duplicate"}
            else:
                conflicts.append((e, EventConflict.Reason.EVENT_ID_REUSED, env.event_id))
                e.result = _conflict_result(e, EventConflict.Reason.EVENT_ID_REUSED)
        elif key in taken or key in seen_seqs:
            holder = taken.get(key) or seen_seqs[key]
            conflicts.append((e, EventConflict.Reason.SEQ_TAKEN, holder))
            e.result = _conflict_result(e, EventConflict.Reason.SEQ_TAKEN)
        else:
            seen_ids[env.event_id] = e.content_hash
            seen_seqs[key] = env.event_id
            new.append(e)

    skus = {sku for e in new for sku in skus_of(e.envelope.type, e.data)}
    catalogue = Catalogue(store=store, skus=skus)
    originals = {
        e.data.original_event_id for e in new
        if e.envelope.type == "return" and e.data.original_event_id is not None
    }  # fmt: skip
    sales_known = set(
        Sale.objects.filter(event_id__in=originals).values_list("event_id", flat=True)
    )
    applier = Applier(store=store, catalogue=catalogue, now=now, problems=problems)
    # Ids and now as text, once (see insert_rows' typed): cheaper to COPY.
    event_rows = []
    batch_text, now_text = str(batch_id), now.isoformat()
    store_pk = store.pk
    waiting_skus: set[str] = set()
    waiting_originals: set[str] = set()
    applied_sales: list[str] = []  # as the applier's applied_sales, as text
    for e in new:
        env = e.envelope
        # Formatted once, for the event's row and its sale's.
        day_text, occurred_text = env.business_date.isoformat(), env.occurred_at.isoformat()
        hold = hold_reason(env.type, e.data, catalogue, sales_known)
        if hold is None:
            applier.apply(env, e.data, register_pk[env.register], day_text=day_text,
                          occurred_text=occurred_text)  # fmt: skip
            if env.type == "sale":
                sales_known.add(env.event_id)
                applied_sales.append(e.event_id)
            e.result = {"event_id": e.event_id, "status": "accepted"}
        else:
            reason, waiting_for, message = hold
            if reason == "unknown_sku":
                waiting_skus.add(waiting_for)
            else:
                waiting_originals.add(waiting_for)
            e.result = {"event_id": e.event_id, "status": "held", "code": reason,
                        "message": message}  # fmt: skip
        event_rows.append(
            (
                e.event_id, store_pk, register_pk[env.register], env.seq, env.type,
                occurred_text, day_text, now_text, batch_text, e.content_hash,
                e.canonical.decode(), "applied" if hold is None else "held",
                "" if hold is None else hold[0], "" if hold is None else hold[1],
                now_text if hold is None else None,
            )
        )  # fmt: skip
    insert_rows(
        "sync_event",
        (
            ("event_id", "uuid"), ("store_id", "bigint"), ("register_id", "bigint"),
            ("seq", "bigint"), ("type", "text"), ("occurred_at", "timestamptz"),
            ("business_date", "date"), ("received_at", "timestamptz"), ("batch_id", "uuid"),
            ("content_hash", "text"), ("payload", "text"), ("status", "text"),
            ("hold_reason", "text"), ("waiting_for", "text"), ("applied_at", "timestamptz"),
        ),
        event_rows,
        typed=True,
    )  # fmt: skip
    applier.flush_rows()
    _store_conflicts(store=store, registers=registers, batch_id=batch_id, now=now,
                     conflicts=conflicts, problems=problems)  # fmt: skip
    _store_dead_letters(store=store, batch_id=batch_id, now=now, dead=dead, problems=problems)

    high_water = _advance_high_water(
        store=store, states=states, events=[e for e in valid if e.result["status"] != "rejected"],
        registers=registers, now=now, problems=problems,
    )  # fmt: skip
    skew = None
    if node_key is not None:
        skew = _check_node_clock(node_key=node_key, store=store, node_time=parsed.node_time,
                                 now=now, problems=problems)  # fmt: skip
    exceptions_raise(problems=problems, now=now)

    response = _encoder.encode(
        {
            "batch_id": str(batch_id),
            "results": [e.result for e in events],
            "high_water": high_water,
            "server_time": iso_utc(now),
        }
    )
    Batch.objects.filter(batch_id=batch_id).update(response=response)
    result = PushResult(body=response, replayed=False,
                        applied_sales=applied_sales,
                        held_skus=sorted(waiting_skus),
                        held_originals=sorted(waiting_originals))  # fmt: skip
    _release_on_commit(result)
    from books.posting import store_days_post_on_commit

    store_days_post_on_commit(store=store, business_dates={e.envelope.business_date for e in valid})

    # Last, the rows every batch of this store contends for: stock levels (a row per SKU sold)
    # and the node's sync state. Their locks are held until commit, and another batch selling
    # one of these SKUs waits for them, so nothing else runs between taking them and
    # committing. The deferred foreign-key checks of the rows written so far (the batch's,
    # exceptions') run here, before the locks, instead of inside the commit (only when this
    # call owns the transaction: SET CONSTRAINTS lasts until its end).
    if owns_transaction and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    found = len(problems)
    applier.levels_apply()
    if node_key is not None:
        _node_state_record(node_key=node_key, store=store, node_time=parsed.node_time,
                           skew=skew, now=now)  # fmt: skip
    if len(problems) > found:
        exceptions_raise(problems=problems[found:], now=now)
    return result


def _release_on_commit(result: PushResult) -> None:
    """Once this batch commits, retry the held events it may unblock, and its own.

    Its own, too: a product (or the original sale) may commit in another transaction while
    this one is open; that transaction's release could not see the events held here, so this
    batch asks again after its commit. Retrying an event still blocked costs one lookup.
    """
    from sync.tasks import held_events_release_for_sales, held_events_release_for_skus

    sales = list(result.applied_sales)
    if sales and _returns_wait_for(sales):
        transaction.on_commit(lambda: held_events_release_for_sales.delay(sales))
    if result.held_originals:
        originals = list(result.held_originals)
        transaction.on_commit(lambda: held_events_release_for_sales.delay(originals))
    if result.held_skus:
        skus = list(result.held_skus)
        transaction.on_commit(lambda: held_events_release_for_skus.delay(skus))


def _returns_wait_for(sales: list[str]) -> bool:
    """Whether a held return waits for one of ``sales`` (event ids as text)."""
    if connection.vendor == "postgresql":
        # One array parameter: the ORM's IN list of 500 placeholders cost ~4 ms a batch.
        return bool(
            select_rows(
                "SELECT 1 FROM sync_event WHERE status = 'held' "
                "AND hold_reason = 'original_not_received' AND waiting_for = ANY(%b::text[]) "
                "LIMIT 1",
                [array_literal(sales)],  # event ids as text: nothing to quote
            )
        )
    return Event.objects.filter(
        status=Event.Status.HELD, hold_reason="original_not_received", waiting_for__in=sales
    ).exists()


def _conflict_result(e: Incoming, reason: str) -> dict[str, Any]:
    messages = {
        EventConflict.Reason.EVENT_ID_REUSED: (
            "This event_id was received before with different content; kept for investigation."
        ),
        EventConflict.Reason.SEQ_TAKEN: (
            "Another event already has this register and seq (two devices as one register?); "
            "kept for investigation."
        ),
    }
    return {"event_id": e.event_id, "status": "conflict", "code": str(reason),
            "message": messages[reason]}  # fmt: skip


def skus_of(kind: str, data: Any) -> Iterable[str]:
    if kind in ("sale", "return", "stock_adjustment", "stock_count"):
        return [line.sku for line in data.lines]
    return ()


def hold_reason(
    kind: str, data: Any, catalogue: Catalogue, sales_known: set[uuid.UUID]
) -> tuple[str, str, str] | None:
    """Why an event must wait, as (reason, what it waits for, message); None if it need not."""
    for sku in skus_of(kind, data):
        if sku not in catalogue.products:
            return ("unknown_sku", sku, f"SKU {sku} is not known yet; applied when it is.")
    if kind == "return" and data.original_event_id is not None:
        original = data.original_event_id
        if original not in sales_known:
            return (
                "original_not_received",
                str(original),
                f"The original sale {original} has not arrived yet; applied when it does.",
            )
    return None


def _lock_register_states(*, store: Store, register_ids: list[int]) -> dict[int, Any]:
    from sync.models import RegisterSyncState

    insert_rows(
        "sync_registersyncstate",
        (("register_id", "bigint"), ("store_id", "bigint"), ("high_water", "bigint"),
         ("max_seq", "bigint")),
        [(rid, store.pk, 0, 0) for rid in register_ids],
        on_conflict="ON CONFLICT (register_id) DO NOTHING",
    )  # fmt: skip
    return {
        s.register_id: s
        for s in RegisterSyncState.objects.select_for_update()
        .filter(register_id__in=register_ids)
        .order_by("register_id")
    }


def _store_conflicts(*, store, registers, batch_id, now, conflicts, problems) -> None:
    if not conflicts:
        return
    insert_rows(
        "sync_eventconflict",
        (
            ("event_id", "uuid"), ("content_hash", "text"), ("reason", "text"),
            ("store_id", "bigint"), ("register_id", "bigint"), ("seq", "bigint"),
            ("existing_event_id", "uuid"), ("payload", "text"), ("batch_id", "uuid"),
            ("received_at", "timestamptz"), ("resolution_note", "text"),
        ),
        [
            (e.envelope.event_id, e.content_hash, str(reason), store.pk,
             registers[e.envelope.register].pk, e.envelope.seq, existing, e.canonical.decode(),
             batch_id, now, "")
            for e, reason, existing in conflicts
        ],
        on_conflict="ON CONFLICT (event_id, content_hash) DO NOTHING",
    )  # fmt: skip
    for e, reason, existing in conflicts:
        problems.append(
            Problem(
                type=Type.EVENT_CONFLICT,
                store_id=store.pk,
                dedup_key=f"event_conflict:{e.envelope.event_id}:{e.content_hash}",
                message=f"{reason}: event {e.envelope.event_id} (register "
                f"{e.envelope.register}, seq {e.envelope.seq}) conflicts with {existing}.",
                register_id=registers[e.envelope.register].pk,
                business_date=e.envelope.business_date,
                event_id=e.envelope.event_id,
                details={"reason": str(reason), "existing_event_id": str(existing)},
            )
        )


def _store_dead_letters(*, store, batch_id, now, dead, problems) -> None:
    if not dead:
        return
    insert_rows(
        "sync_deadletter",
        (
            ("store_id", "bigint"), ("batch_id", "uuid"), ("position", "integer"),
            ("event_id", "text"), ("register_code", "text"), ("seq", "bigint"), ("raw", "bytea"),
            ("code", "text"), ("message", "text"), ("received_at", "timestamptz"),
            ("status", "text"), ("resolution_note", "text"),
        ),
        [
            (store.pk, batch_id, e.position, (e.event_id or "")[:64], (e.register_code or "")[:64],
             e.seq, e.raw, e.error[0], e.error[1], now, "open", "")
            for e in dead
        ],
        on_conflict="ON CONFLICT (batch_id, position) DO NOTHING",
    )  # fmt: skip
    for e in dead:
        problems.append(
            Problem(
                type=Type.REJECTED_EVENT,
                store_id=store.pk,
                dedup_key=f"rejected_event:{batch_id}:{e.position}",
                message=f"Event {e.event_id or f'#{e.position}'} of batch {batch_id} was "
                f"rejected: {e.error[1]}",
                details={"batch_id": str(batch_id), "position": e.position},
            )
        )


def register_high_water_refresh(*, register_id: int) -> int:
    """Recompute one register's high water (after a dead letter is voided). Returns it."""
    from sync.models import RegisterSyncState

    state = RegisterSyncState.objects.select_for_update().filter(register_id=register_id).first()
    if state is None:
        return 0
    register = Register.objects.select_related("store").get(pk=register_id)
    high, seqs = high_water_from(
        register_id=register_id, register_code=register.code, high=state.high_water
    )
    # max_seq stays an upper bound of every received seq (a voided dead letter is received),
    # which lets a push skip the lookup when nothing lies above high water.
    max_seq = max(state.max_seq, high, max(seqs, default=0))
    if (high, max_seq) != (state.high_water, state.max_seq):
        RegisterSyncState.objects.filter(register_id=register_id).update(
            high_water=high, max_seq=max_seq
        )
    problems: list[Problem] = []
    now = timezone.now()
    _seq_gaps_refresh(register=register, high=high, seqs=seqs, problems=problems, now=now)
    exceptions_raise(problems=problems, now=now)
    return high


def _advance_high_water(*, store, states, events, registers, now, problems) -> dict[str, int]:
    from sync.models import RegisterSyncState

    by_register: dict[int, list[Incoming]] = {}
    for e in events:
        by_register.setdefault(registers[e.envelope.register].pk, []).append(e)
    by_pk = {r.pk: r for r in registers.values()}
    for register_id, state in states.items():
        received = by_register.get(register_id, [])
        register = by_pk[register_id]
        fresh = sorted({e.envelope.seq for e in received if e.envelope.seq > state.high_water})
        continued = contiguous_high(state.high_water, fresh)
        if state.max_seq <= state.high_water and continued == state.high_water + len(fresh):
            # Nothing had been received above high water (max_seq bounds every received seq)
            # and this batch's seqs continue it without a hole: the usual push, no lookup.
            high, seqs = continued, []
        else:
            high, seqs = high_water_from(
                register_id=register_id, register_code=register.code, high=state.high_water
            )
        max_seq = max(
            state.max_seq,
            high,
            max(seqs, default=0),
            max((e.envelope.seq for e in received), default=0),
        )
        last_event_at = max(
            [e.envelope.occurred_at for e in received]
            + ([state.last_event_at] if state.last_event_at else []),
            default=None,
        )
        RegisterSyncState.objects.filter(register_id=register_id).update(
            high_water=high, max_seq=max_seq, last_event_at=last_event_at, last_push_at=now
        )
        _seq_gaps_refresh(register=register, high=high, seqs=seqs, problems=problems, now=now)
    return {
        code: hw
        for code, hw in RegisterSyncState.objects.filter(store=store)
        .select_related("register")
        .values_list("register__code", "high_water")
    }


def _seq_gaps_refresh(
    *, register: Register, high: int, seqs: list[int], problems: list[Problem], now: dt.datetime
) -> None:
    """Raise a ``seq_gap`` exception per missing range, and resolve those that were filled.

    Only gaps up to the last received seq looked at (``seqs`` is one page) are judged: an
    exception for a gap beyond that page is left as it is.
    """
    from sync.models import ReconciliationException

    prefix = f"seq_gap:{register.pk}:"
    gaps = gap_ranges(high, seqs)
    for start, end in gaps:
        problems.append(
            Problem(
                type=Type.SEQ_GAP,
                store_id=register.store_id,
                dedup_key=f"{prefix}{start}",
                message=f"Register {register.code} has not sent seq {start}"
                + (f"–{end}" if end != start else "")
                + f"; high water is {high}.",
                register_id=register.pk,
                details={"from": start, "to": end},
            )
        )
    judged_up_to = seqs[-1] if seqs else high
    current = {f"{prefix}{start}" for start, _ in gaps}
    filled = [
        key
        for key in ReconciliationException.objects.filter(dedup_key__startswith=prefix)
        .exclude(status=ReconciliationException.Status.RESOLVED)
        .values_list("dedup_key", flat=True)
        if key not in current and int(key.rsplit(":", 1)[1]) <= judged_up_to
    ]
    if filled:
        exceptions_resolve_automatically(
            dedup_keys=filled, note="The missing events arrived or were voided.", now=now
        )


def _check_node_clock(*, node_key, store, node_time, now, problems) -> float | None:
    """The node's clock skew at this push (None without node_time); raises or resolves
    ``clock_skew``."""
    skew = (node_time - now).total_seconds() if node_time is not None else None
    prefix = f"clock_skew:{node_key.pk}:"
    if skew is not None and abs(skew) > settings.SYNC_MAX_CLOCK_SKEW:
        day = now.astimezone(store.tzinfo).date()
        problems.append(
            Problem(
                type=Type.CLOCK_SKEW,
                store_id=store.pk,
                dedup_key=f"{prefix}{day}",
                message=f"Node key {node_key.prefix} of {store.code} is {skew:+.0f} s off "
                f"head office's clock (limit {settings.SYNC_MAX_CLOCK_SKEW} s).",
                business_date=day,
                details={"skew_seconds": skew, "node_key": node_key.prefix},
            )
        )
    else:
        exceptions_resolve_automatically(
            prefix=prefix, note="The node's clock is back within the limit.", now=now
        )
    return skew


def _node_state_record(*, node_key, store, node_time, skew, now) -> None:
    """The node's last push, in one statement that leaves its pull columns alone."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sync_nodesyncstate (node_key_id, store_id, last_push_at, "
            "last_node_time, clock_skew_seconds) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (node_key_id) DO UPDATE SET store_id = excluded.store_id, "
            "last_push_at = excluded.last_push_at, last_node_time = excluded.last_node_time, "
            "clock_skew_seconds = excluded.clock_skew_seconds",
            [node_key.pk, store.pk, now, node_time, skew],
        )
