"""Month-end close: a job in idempotent steps, restartable at any point.

``period_close_start`` creates the job and sends the task on commit. The task
(``books.tasks.period_close``, ``acks_late`` + ``reject_on_worker_lost``) runs
``period_close_run``, whose steps can each run again with no second effect:

1. ``begin``: the period goes open → closing (already closing: nothing to do);
2. ``post``: every unposted store-day of the period is posted (ranges already covered are
   skipped, so a restarted close never posts twice);
3. ``reconcile``: held events whose blocker arrived are applied; every store-day's posted
   sale lines are checked against the lines ingested;
4. ``check``: blocking exceptions still open in the period refuse the lock, unless finance
   gave an override reason (recorded on the job and the period); refused, the period goes
   back to open;
5. ``lock``: in one transaction, the close report is stored and the period is closed (the
   database refuses any line dated into it from then on) and the job finishes.

A worker killed in the middle leaves the message unacknowledged; the broker hands it to
another worker, which starts again at step 1 and passes quickly over what was done.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from books import selectors
from books.errors import BlockingExceptions, CloseInProgress, CloseInterrupted, PeriodClosed
from books.models import CloseReport, FiscalPeriod, Job
from books.posting import store_days_post
from books.posting.common import ADVISORY_KEY
from erp.errors import ValidationFailed

STEPS = ("begin", "post", "reconcile", "check", "lock")


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


@transaction.atomic
def period_close_start(
    *,
    period: FiscalPeriod,
    actor: Any,
    override_reason: str = "",
    now: dt.datetime | None = None,
) -> Job:
    """Start closing ``period``; returns the job. A close already queued or running is
    returned (asking twice starts one close) and its task is sent again, which resumes a
    close whose worker died."""
    from books.tasks import period_close

    period = FiscalPeriod.objects.select_for_update().get(pk=period.pk)
    if period.is_locked():
        raise PeriodClosed(f"Period {period.code} is already closed.")
    running = period.jobs.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING]).first()
    if running is not None:
        if override_reason and running.override_reason != override_reason:
            raise CloseInProgress(
                f"A close of {period.code} is already {running.state}; wait for it to finish.",
                details={"job": str(running.pk)},
            )
        # Asking again sends the task again: a job whose worker died (and whose message the
        # broker has not handed out yet) resumes now. Two runs of one job are harmless: every
        # step is idempotent and the lock step locks the period row.
        running_id = str(running.pk)
        transaction.on_commit(lambda: period_close.delay(running_id))
        return running
    now = now or timezone.now()
    from stores.models import Store

    unfinished = sorted(
        store.code
        for store in Store.objects.filter(active=True)
        if now.astimezone(store.tzinfo).date() <= period.end
    )
    if unfinished:
        raise ValidationFailed(
            f"{period.code} is not over yet in {', '.join(unfinished[:5])}"
            f"{' …' if len(unfinished) > 5 else ''}: close it once its last day has ended "
            "everywhere.",
            code="period_not_over",
        )
    earlier_open = FiscalPeriod.objects.filter(start__lt=period.start).exclude(
        status=FiscalPeriod.Status.CLOSED
    )
    if earlier_open.exists():
        raise ValidationFailed(
            f"Close {earlier_open.order_by('start').first().code} first: periods close in order.",
            code="earlier_period_open",
        )
    job = Job.objects.create(
        kind="period_close",
        period=period,
        override_reason=override_reason.strip(),
        created_by=_user(actor),
        created_at=timezone.now(),
        message="queued",
    )
    job_id = str(job.pk)
    transaction.on_commit(lambda: period_close.delay(job_id))
    return job


def _progress(job: Job, step: str, message: str) -> None:
    index = STEPS.index(step)
    Job.objects.filter(pk=job.pk).update(
        step=step, progress=int(100 * index / len(STEPS)), message=message
    )
    job.step = step


def _pause() -> None:
    if settings.BOOKS_CLOSE_STEP_PAUSE:
        time.sleep(settings.BOOKS_CLOSE_STEP_PAUSE)


def period_close_run(*, job_id: str, now: dt.datetime | None = None) -> Job | None:
    """Run (or resume) a close job to its end. Returns the job, None when it is gone."""
    job = Job.objects.select_related("period").filter(pk=job_id).first()
    if job is None or job.state in (Job.State.SUCCEEDED, Job.State.FAILED):
        return job
    now = now or timezone.now()
    started = (
        Job.objects.filter(pk=job.pk)
        .exclude(state__in=(Job.State.SUCCEEDED, Job.State.FAILED))
        .update(
            state=Job.State.RUNNING, started_at=job.started_at or now, attempts=job.attempts + 1
        )
    )
    if not started:  # finished by another run of it since it was read
        job.refresh_from_db()
        return job
    steps: dict[str, Callable[[Job, dt.datetime], str]] = {
        "begin": _begin,
        "post": _post,
        "reconcile": _reconcile,
        "check": _check,
        "lock": _lock,
    }
    try:
        for step in STEPS:
            if Job.objects.filter(pk=job.pk).values_list("state", flat=True).first() != (
                Job.State.RUNNING
            ):
                break  # another run of this job (a redelivery) finished it meanwhile
            _progress(job, step, f"{step}…")
            message = steps[step](job, now)
            Job.objects.filter(pk=job.pk).update(message=message)
            _pause()
    except BlockingExceptions as exc:
        _fail(job, exc.message, {"code": exc.code, **(exc.details or {})})
    except (PeriodClosed, CloseInterrupted) as exc:
        _fail(job, exc.message, {"code": exc.code})
    except OperationalError:
        raise  # the database was unavailable or a lock timed out: the task retries the job
    except Exception as exc:
        # a fault, not a refusal: the job says so (finance may start a new close) and the
        # error goes on to the worker's log
        _fail(job, f"the close failed: {exc}", {"code": "close_failed"})
        raise
    job.refresh_from_db()
    return job


def _fail(job: Job, message: str, result: dict[str, Any]) -> None:
    with transaction.atomic():
        period = FiscalPeriod.objects.select_for_update().get(pk=job.period_id)
        # Only a job still running fails: one that another run of it finished stays as it is.
        failed = Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
            state=Job.State.FAILED, message=message, result=result, finished_at=timezone.now()
        )
        if failed and period.status == FiscalPeriod.Status.CLOSING:
            period.status = FiscalPeriod.Status.OPEN
            period._change_reason = f"close refused: {message}"  # type: ignore[attr-defined]
            period.save(update_fields=["status"])


def _begin(job: Job, now: dt.datetime) -> str:
    with transaction.atomic():
        period = FiscalPeriod.objects.select_for_update().get(pk=job.period_id)
        if period.status == FiscalPeriod.Status.CLOSED:
            raise PeriodClosed(f"Period {period.code} is already closed.")
        if period.status == FiscalPeriod.Status.OPEN:
            period.status = FiscalPeriod.Status.CLOSING
            period._change_reason = f"close job {job.pk}"  # type: ignore[attr-defined]
            period.save(update_fields=["status"])
    return "period is closing"


def _post(job: Job, now: dt.datetime) -> str:
    result = store_days_post(through=job.period.end, now=now, actor=job.created_by)
    return f"posted {result.entries} entries for {result.store_days} store-days"


def _reconcile(job: Job, now: dt.datetime) -> str:
    from sync.held import held_events_sweep

    applied = held_events_sweep()
    if applied:
        store_days_post(through=job.period.end, now=now, actor=job.created_by)
    missing = selectors.unposted_store_days(period=job.period)
    Job.objects.filter(pk=job.pk).update(
        result={"held_applied": applied, "unposted_store_days": [[s, str(d)] for s, d in missing]}
    )
    return f"{applied} held events applied; {len(missing)} store-days differ from the journal"


def _check(job: Job, now: dt.datetime) -> str:
    blocking = list(selectors.blocking_exceptions(period=job.period)[:50])
    # what reconcile found just before (every run of the job runs reconcile first)
    missing = Job.objects.get(pk=job.pk).result.get("unposted_store_days", [])
    if (blocking or missing) and not job.override_reason:
        raise BlockingExceptions(
            f"{len(blocking)} blocking exception(s) and {len(missing)} unposted store-day(s) in "
            f"{job.period.code}: resolve them, or close with an override reason.",
            details={
                "exceptions": [e.pk for e in blocking],
                "unposted_store_days": missing,
            },
        )
    if blocking or missing:
        return f"overridden: {job.override_reason}"
    return "no blocking exceptions"


def close_report_build(*, period: FiscalPeriod) -> dict[str, Any]:
    """The close report's content, as JSON-ready strings."""
    trial = selectors.trial_balance(period_code=period.code)
    exceptions = selectors.period_exceptions(period=period)
    return {
        "period": period.code,
        "trial_balance": [
            {
                "code": r.code,
                "name": r.name,
                "currency": r.currency,
                "debit": str(r.debit),
                "credit": str(r.credit),
            }
            for r in trial
        ],
        "sales_and_tax_by_store": [
            {k: str(v) for k, v in row.items()}
            for row in selectors.sales_and_tax_by_store(period=period)
        ],
        "stock_valuation": [
            {k: str(v) for k, v in row.items()} for row in selectors.stock_valuation(day=period.end)
        ],
        "late_arrivals": [
            {
                "entry": e.pk,
                "store": e.store.code if e.store else "",
                "business_date": str(e.business_date),
                "date": str(e.date),
            }
            for e in selectors.late_entries(period=period)
        ],
        "exceptions": [
            {
                "id": e.pk,
                "type": e.type,
                "severity": e.severity,
                "status": e.status,
                "store": e.store.code,
                "business_date": str(e.business_date or ""),
                "message": e.message,
            }
            for e in exceptions
        ],
    }


def _lock(job: Job, now: dt.datetime) -> str:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # No posting run is writing while the period locks (the journal's triggers also
            # make any other writer and this close wait for each other on the period row).
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_KEY])
        period = FiscalPeriod.objects.select_for_update().get(pk=job.period_id)
        if period.status == FiscalPeriod.Status.CLOSED:
            return "already locked"
        if Job.objects.select_for_update().get(pk=job.pk).state != Job.State.RUNNING:
            return "stopped: another run of this job finished it"
        if period.status != FiscalPeriod.Status.CLOSING:
            raise CloseInterrupted(
                f"Period {period.code} was reopened while this close ran (another run of the "
                "close was refused); start the close again."
            )
        content = close_report_build(period=period)
        content["override_reason"] = job.override_reason
        CloseReport.objects.update_or_create(
            period=period, defaults={"job": job, "content": content, "created_at": now}
        )
        period.status = FiscalPeriod.Status.CLOSED
        period.closed_at = timezone.now()
        period.closed_by = job.created_by
        period.override_reason = job.override_reason
        period._change_reason = f"closed by job {job.pk}"  # type: ignore[attr-defined]
        period._history_user = job.created_by  # type: ignore[attr-defined]
        period.save(update_fields=["status", "closed_at", "closed_by", "override_reason"])
        Job.objects.filter(pk=job.pk).update(
            state=Job.State.SUCCEEDED,
            progress=100,
            step="done",
            message=f"{period.code} closed",
            finished_at=period.closed_at,
            result={
                **(Job.objects.get(pk=job.pk).result or {}),
                "trial_balance_lines": len(content["trial_balance"]),
                "late_arrivals": len(content["late_arrivals"]),
            },
        )
    return "locked"
