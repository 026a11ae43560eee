from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Throttle counters live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()


# Data that migrations load (currencies, the role groups). A transactional test ends with a
# flush that empties every table, so the next test would find none: reload it when missing.
_MIGRATION_DATA = [
    ("inventory.migrations.0002_currencies_and_database_invariants", "load_currencies"),
    ("erp.migrations.0001_roles", "create_roles"),
    ("sync.migrations.0002_roles", "grant_sync_rights"),
    ("books.migrations.0003_default_chart_and_roles", "load"),
]


@pytest.fixture(autouse=True)
def _migration_data(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db", "live_server"}:
        return
    transactional = bool(marker and marker.kwargs.get("transaction")) or bool(
        names & {"transactional_db", "live_server"}
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    from books.models import Account
    from inventory.models import Currency

    if (
        Currency.objects.exists()
        and Group.objects.filter(name="auditor").exists()
        and Account.objects.exists()
    ):
        return
    for module, function in _MIGRATION_DATA:
        getattr(importlib.import_module(module), function)(apps, None)


@pytest.fixture
def make_client(db: None) -> Callable[..., APIClient]:
    """An API client signed in with a DRF token as a user of the given roles."""

    def make(*roles: str, superuser: bool = False) -> APIClient:
        from rest_framework.authtoken.models import Token

        user = UserFactory(roles=list(roles), is_superuser=superuser)
        token, _ = Token.objects.get_or_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        client.user = user  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
def staff_client(make_client: Callable[..., APIClient]) -> APIClient:
    return make_client("staff")


@pytest.fixture
def auditor_client(make_client: Callable[..., APIClient]) -> APIClient:
    return make_client("auditor")


@pytest.fixture
def finance_client(make_client: Callable[..., APIClient]) -> APIClient:
    return make_client("finance")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
