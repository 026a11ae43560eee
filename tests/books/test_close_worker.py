"""Month-end close on a real Celery worker through Redis, including a worker killed with
SIGKILL in the middle of the close and a new worker finishing it with nothing posted twice."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from books.close import period_close_start
from books.models import FiscalPeriod, Job, JournalEntry, StoreDayPosting
from books.services import period_ensure
from erp.celery import app as celery_app
from tests.books.conftest import push
from tests.sync.builders import Till

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY = 4  # seconds before Redis hands an unacknowledged task to another worker


def _wait_for(predicate: Callable[[], bool], seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.fixture
def workers() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``celery -A erp worker`` processes on the test database and a queue of this test's
    own; each is stopped (or already killed) at the end."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://…")
    queue = f"tb-books-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    started: list[subprocess.Popen] = []

    def start(pause: int = 0) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY),
            "BOOKS_CLOSE_STEP_PAUSE": str(pause),
            "ERP_ENV": "test",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "erp", "worker", "-Q", queue, "-c", "1",
             "--pool", "solo", "-l", "warning", "--without-mingle", "--without-gossip",
             "-n", f"{queue}-{len(started)}@%h"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        started.append(process)
        name = f"{queue}-{len(started) - 1}@"
        _wait_for(
            lambda: any(
                name in key for reply in celery_app.control.ping(timeout=0.5) for key in reply
            ),
            30,
        )
        return process

    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        yield start
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def _month_of_sales(shop) -> None:
    _store, key = shop()
    till = Till()
    for day in (1, 2, 15, 30):
        till.day = dt.date(2026, 11, day)
        push(key, [till.sale([("A", "2", "1.99")]), till.sale([("B", "1", "3.50")])])


def test_a_worker_closes_the_period(shop, workers) -> None:
    # given
    _month_of_sales(shop)
    workers()

    # when: finance starts the close; the task goes through Redis once the request commits
    job = period_close_start(period=period_ensure(day=dt.date(2026, 11, 1)), actor=None)

    # then
    assert _wait_for(lambda: Job.objects.get(pk=job.pk).state == Job.State.SUCCEEDED)
    assert FiscalPeriod.objects.get(code="2026-11").status == "closed"
    assert JournalEntry.objects.filter(period__code="2026-11").count() == 4


def test_a_close_killed_mid_way_is_finished_by_the_next_worker_once(shop, workers) -> None:
    # given: a worker that pauses between the close's steps
    _month_of_sales(shop)
    first = workers(pause=3)
    job = period_close_start(period=period_ensure(day=dt.date(2026, 11, 1)), actor=None)

    # when: it is killed with SIGKILL after it has posted, before it locked
    assert _wait_for(lambda: Job.objects.get(pk=job.pk).step in ("reconcile", "check"))
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    stopped = Job.objects.get(pk=job.pk)
    assert stopped.state == Job.State.RUNNING
    assert FiscalPeriod.objects.get(code="2026-11").status == "closing"
    posted_before = JournalEntry.objects.count()
    assert posted_before == 4
    time.sleep(VISIBILITY + 1)  # the unacknowledged task becomes visible again
    workers()

    # then: the new worker takes the same task and finishes the close, posting nothing twice
    assert _wait_for(lambda: Job.objects.get(pk=job.pk).state == Job.State.SUCCEEDED, 90)
    done = Job.objects.get(pk=job.pk)
    assert done.attempts == 2
    assert FiscalPeriod.objects.get(code="2026-11").status == "closed"
    assert JournalEntry.objects.count() == posted_before
    assert StoreDayPosting.objects.count() == 4
