"""A web worker's warm-up (``erp/warmup.py``): it loads what a push needs, and a database or
broker that is down at start-up never stops the worker from starting."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError, connection
from django.test import override_settings

from erp import warmup

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_warm_up_touches_every_push_table_without_a_warning(caplog, settings) -> None:
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 60
    with caplog.at_level(logging.WARNING, logger="erp.warmup"):
        warmup.worker_warm_up()

    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert connection.connection is not None
    # Every name in the list is a table a push touches, so a renamed table fails here.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s)",
            [list(warmup.PUSH_TABLES)],
        )
        assert cursor.fetchone()[0] == len(warmup.PUSH_TABLES)


@pytest.mark.postgres
def test_a_database_error_during_warm_up_is_logged_not_raised(caplog, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    monkeypatch.setattr(connection, "cursor", refuse)
    monkeypatch.setattr(connection, "close", lambda: None)  # the test's transaction stays open
    with caplog.at_level(logging.WARNING, logger="erp.warmup"):
        warmup._database()

    assert "database could not be reached" in caplog.text


def test_a_broker_that_is_down_is_logged_not_raised(caplog, monkeypatch) -> None:
    from kombu import Connection

    from erp.celery import app

    class Pool:
        def acquire(self, block: bool = False) -> Connection:
            return Connection("redis://127.0.0.1:1/0")  # nothing listens on port 1

    monkeypatch.setattr(type(app), "pool", Pool(), raising=False)
    with override_settings(CELERY_TASK_ALWAYS_EAGER=False), caplog.at_level(logging.WARNING):
        warmup._broker()

    assert "broker could not be reached" in caplog.text


@override_settings(ERP_ROLE="node")
def test_a_store_node_only_imports(monkeypatch) -> None:
    called = []
    monkeypatch.setattr(warmup, "_broker", lambda: called.append("broker"))
    monkeypatch.setattr(warmup, "_database", lambda: called.append("database"))

    warmup.worker_warm_up()

    assert called == []
