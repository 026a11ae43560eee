"""Warm a web worker up before its first request (called from ``erp/wsgi.py``).

A worker's first push otherwise pays, on top of its own work, for what every later one reuses:
importing and connecting the broker transport for the posting run it sends after commit
(kombu's Redis transport, about 100 ms to import), the database connection, and the catalogue
entries of each table and index the push touches, which every new PostgreSQL backend loads on
first use. On a 2-core machine four workers paying that at once made their first batches
about twice as slow as the rest, which is what a p99 over a few hundred batches reports.

Each step is best-effort: a worker whose database or broker is down at start-up still starts,
and its first request finds the problem and answers it the usual way.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection

log = logging.getLogger(__name__)

# What a push reads or writes.
PUSH_TABLES = (
    "sync_batch",
    "sync_event",
    "sync_eventconflict",
    "sync_deadletter",
    "sync_registersyncstate",
    "sync_nodesyncstate",
    "sync_reconciliationexception",
    "stores_store",
    "stores_register",
    "stores_nodekey",
    "stores_sale",
    "stores_saleline",
    "stores_tender",
    "inventory_product",
    "inventory_price",
    "inventory_taxrate",
    "inventory_stockmove",
    "inventory_stocklevel",
)


def worker_warm_up() -> None:
    """Import, connect and load what a push needs, so the first one costs what later ones do."""
    _imports()
    if settings.ERP_ROLE != "hq":
        return  # a store node takes no pushes
    _broker()
    _database()


def _imports() -> None:
    # Imported inside functions on the push path (to keep app dependencies one-way).
    import books.posting
    import books.tasks  # noqa: F401
    import sync.tasks  # noqa: F401


def _broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from erp.celery import app

    app.finalize(auto=True)  # binds the tasks, as the first .delay() would
    # A connection of the pool the producers publish through: resolving its transport imports
    # it, and connecting now leaves it open for the first send.
    with app.pool.acquire(block=True) as conn:
        try:
            conn.connect()
        except (OSError, *conn.connection_errors):  # the transport's own "cannot connect"
            log.warning("warm-up: the broker could not be reached", exc_info=True)


def _database() -> None:
    if connection.vendor != "postgresql" or not settings.DATABASES["default"]["CONN_MAX_AGE"]:
        return  # the connection would be closed before the first request used it
    try:
        with connection.cursor() as cursor:
            for table in PUSH_TABLES:
                # Planning the query opens the table and its indexes in this backend.
                cursor.execute(f"SELECT 1 FROM {table} LIMIT 0")
    except DatabaseError:
        log.warning("warm-up: the database could not be reached", exc_info=True)
        connection.close()
