"""Celery tasks of the books: thin, idempotent, safe to run twice (and to be redelivered)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

_IDEMPOTENT = {
    # Both tasks can run again from the start with no second effect (see books.posting and
    # books.close), so a task whose worker died is redelivered rather than lost.
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(**_IDEMPOTENT)
def store_days_post(store_ids: list[int] | None = None) -> int:
    """Post every finished store-day with unposted rows (all stores, or ``store_ids``)."""
    from django.utils import timezone

    from books.posting import store_days_post as post

    return post(store_ids=store_ids, now=timezone.now()).entries


@shared_task(**_IDEMPOTENT, soft_time_limit=3300, time_limit=3600)
def period_close(job_id: str) -> str:
    from books.close import period_close_run

    job = period_close_run(job_id=job_id)
    return job.state if job is not None else "gone"
