"""Held events are released by a real Celery worker on Redis, sent when the product commits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from erp.celery import app as celery_app
from inventory.models import TaxRate
from inventory.services import product_create
from stores.services import node_key_issue
from sync.models import Event
from sync.push.service import batch_push
from tests.factories import PriceFactory, ProductFactory, RegisterFactory, StoreFactory
from tests.sync.builders import Till, batch

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker() -> Iterator[str]:
    """A real ``celery -A erp worker`` on the test database, consuming a queue of its own."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://… (make test-postgres sets it)")
    queue = f"tb-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "ERP_ENV": "test",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "erp", "worker", "-Q", queue, "-c", "1",
         "--pool", "solo", "-l", "warning", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if celery_app.control.ping(destination=None, timeout=0.5):
                break
        yield queue
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_held_sale_is_applied_by_the_worker_when_its_product_is_created(worker: str) -> None:
    # given: a sale of a SKU head office does not know yet, held at ingestion
    store = StoreFactory(code="S01")
    RegisterFactory(store=store, code="R1")
    known = ProductFactory(sku="KNOWN")
    PriceFactory(product=known, price_list=store.price_list, price="1.99")
    node_key, _ = node_key_issue(actor=None, store=store)
    till = Till()
    sale = till.sale([("NEWSKU", "2", "3.50")])
    result = batch_push(node_key=node_key, body=batch([sale]))
    assert b'"held"' in result.body
    assert Event.objects.get(event_id=sale["event_id"]).status == "held"

    # when: the product is created (the task is sent on commit, to the worker through Redis)
    assert celery_app.conf.task_always_eager is False
    product_create(actor=None, sku="NEWSKU", name="New", tax_rate=TaxRate.objects.get(code="STD"))

    # then: the worker applied it, exactly once
    assert _wait_for(lambda: Event.objects.get(event_id=sale["event_id"]).status == "applied")
    from inventory.models import StockMove
    from stores.models import Sale

    assert Sale.objects.filter(event_id=sale["event_id"]).count() == 1
    assert StockMove.objects.filter(source_event=sale["event_id"]).count() == 1
