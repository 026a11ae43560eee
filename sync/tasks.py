"""Celery tasks of the sync app: thin, idempotent, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

_RETRY = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(**_RETRY)
def held_events_release_for_skus(skus: list[str]) -> int:
    from sync.held import UNKNOWN_SKU, held_events_release

    return held_events_release(reason=UNKNOWN_SKU, waiting_for=skus)


@shared_task(**_RETRY)
def held_events_release_for_sales(event_ids: list[str]) -> int:
    from sync.held import ORIGINAL_NOT_RECEIVED, held_events_release

    return held_events_release(reason=ORIGINAL_NOT_RECEIVED, waiting_for=event_ids)


@shared_task(**_RETRY)
def held_events_sweep() -> int:
    from sync.held import held_events_sweep as sweep

    return sweep()


@shared_task(**_RETRY)
def batches_purge() -> int:
    """Forget stored batch answers older than ``SYNC_BATCH_RETENTION_DAYS`` (at least 7, as
    the protocol promises). Event ids are kept forever, so a very late retry of a purged batch
    is still answered correctly: every event comes back ``duplicate``."""
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    from sync.models import Batch

    cutoff = timezone.now() - dt.timedelta(days=settings.SYNC_BATCH_RETENTION_DAYS)
    deleted, _ = Batch.objects.filter(received_at__lt=cutoff).delete()
    return deleted
