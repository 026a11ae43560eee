"""Scenery of the change-feed tests: three stores on three price lists in three currencies.

- S01 Berlin, list DE in EUR (2 decimals), registers R1 and R2;
- S02 Zurich, list CH in CHF (2 decimals), register Z1;
- S03 Tokyo, list JP in JPY (no decimals), register T1.
"""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from inventory.models import Currency, TaxRate
from tests.sync.feed import scenery
from tests.sync.feed.scenery import Shop


@pytest.fixture(autouse=True)
def _migration_data(request: pytest.FixtureRequest) -> None:
    """Replaces the root fixture of that name for these tests: they need the currencies a
    flush removed (the transactional tests on PostgreSQL), not the role groups, whose
    reloading costs about a second per test. Tests elsewhere still reload both when missing."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    if not Currency.objects.exists():
        migration = "inventory.migrations.0002_currencies_and_database_invariants"
        importlib.import_module(migration).load_currencies(apps, None)


@pytest.fixture
def std_rate() -> TaxRate:
    return scenery.rate("STD", "19")


@pytest.fixture
def berlin(std_rate: TaxRate) -> Shop:
    return scenery.shop("S01", "DE", "EUR", registers=("R1", "R2"))


@pytest.fixture
def zurich(std_rate: TaxRate) -> Shop:
    return scenery.shop("S02", "CH", "CHF", registers=("Z1",), timezone="Europe/Zurich")


@pytest.fixture
def tokyo(std_rate: TaxRate) -> Shop:
    return scenery.shop("S03", "JP", "JPY", registers=("T1",), timezone="Asia/Tokyo")


@pytest.fixture(autouse=True)
def _quick_commits(request: pytest.FixtureRequest) -> None:
    """PostgreSQL: these tests commit hundreds of small transactions; not waiting for each WAL
    flush (this session only) changes nothing they observe and halves their setup time."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or connection.vendor != "postgresql":
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
