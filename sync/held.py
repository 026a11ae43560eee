"""Held events: stored at once, applied when what they wait for arrives.

An event is held when it names a SKU head office does not know yet (``unknown_sku``) or is a
return whose original sale has not arrived (``original_not_received``). Creating the product
or ingesting the sale sends a task (on commit) that retries exactly the events waiting for
it; a periodic sweep retries every held event whose blocker has arrived, so nothing waits
forever if a task is lost.
Retrying is idempotent: each event is locked and applied only while it is still held.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec
from django.db import transaction
from django.utils import timezone

from inventory.models import Product
from stores.models import Register, Sale, Store
from sync.exception_queue import exceptions_raise
from sync.models import Event
from sync.push import schema
from sync.push.apply import Applier, Catalogue
from sync.push.service import hold_reason, skus_of

UNKNOWN_SKU = "unknown_sku"
ORIGINAL_NOT_RECEIVED = "original_not_received"


def held_events_release(*, reason: str, waiting_for: Sequence[str]) -> int:
    """Retry the held events waiting for any of ``waiting_for``. Returns how many applied."""
    pks = list(
        Event.objects.filter(
            status=Event.Status.HELD, hold_reason=reason, waiting_for__in=list(waiting_for)
        )
        .order_by("store_id", "register_id", "seq")
        .values_list("pk", flat=True)
    )
    return sum(held_event_retry(event_pk=pk) for pk in pks)


def held_events_sweep() -> int:
    """Retry every held event whose blocker is gone. Returns how many applied.

    Looks at what held events wait for (distinct SKUs and sales, few even when many events
    wait), keeps those that now exist, and releases exactly their events — so events that
    still wait cost nothing and never crowd out the ones that can go.
    """
    held = Event.objects.filter(status=Event.Status.HELD)
    skus = set(held.filter(hold_reason=UNKNOWN_SKU).values_list("waiting_for", flat=True))
    originals = set(
        held.filter(hold_reason=ORIGINAL_NOT_RECEIVED).values_list("waiting_for", flat=True)
    )
    present_skus = set(Product.objects.filter(sku__in=skus).values_list("sku", flat=True))
    wanted = []
    for text in originals:
        try:
            wanted.append(uuid.UUID(text))
        except ValueError:
            continue
    present_sales = {
        str(eid)
        for eid in Sale.objects.filter(event_id__in=wanted).values_list("event_id", flat=True)
    }
    applied = 0
    if present_skus:
        applied += held_events_release(reason=UNKNOWN_SKU, waiting_for=sorted(present_skus))
    if present_sales:
        applied += held_events_release(
            reason=ORIGINAL_NOT_RECEIVED, waiting_for=sorted(present_sales)
        )
    return applied


def held_event_retry(*, event_pk: int) -> bool:
    """Apply one held event if nothing blocks it any more. True if it was applied now."""
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(pk=event_pk, status="held").first()
        if event is None:
            return False  # gone, or applied by a concurrent retry
        store = Store.objects.select_related("currency").get(pk=event.store_id)
        envelope = msgspec.json.decode(event.payload.encode(), type=schema.Envelope)
        data = msgspec.convert(envelope.data, schema.DATA_TYPES[envelope.type])
        catalogue = Catalogue(store=store, skus=set(skus_of(envelope.type, data)))
        original = getattr(data, "original_event_id", None)
        sales_known: set[uuid.UUID] = set(
            Sale.objects.filter(event_id=original).values_list("event_id", flat=True)
        ) if original else set()  # fmt: skip
        still = hold_reason(envelope.type, data, catalogue, sales_known)
        if still is not None:
            if (still[0], still[1]) != (event.hold_reason, event.waiting_for):
                Event.objects.filter(pk=event.pk).update(hold_reason=still[0], waiting_for=still[1])
            return False
        now = timezone.now()
        problems: list = []
        applier = Applier(store=store, catalogue=catalogue, now=now, problems=problems)
        register = Register.objects.get(pk=event.register_id)
        applier.apply(envelope, data, register.pk)
        applier.flush()
        exceptions_raise(problems=problems, now=now)
        Event.objects.filter(pk=event.pk).update(
            status=Event.Status.APPLIED, hold_reason="", waiting_for="", applied_at=now
        )
        if envelope.type == "sale":
            sale_id = str(envelope.event_id)
            if Event.objects.filter(
                status=Event.Status.HELD, hold_reason=ORIGINAL_NOT_RECEIVED, waiting_for=sale_id
            ).exists():
                from sync.tasks import held_events_release_for_sales

                transaction.on_commit(lambda: held_events_release_for_sales.delay([sale_id]))
        return True
