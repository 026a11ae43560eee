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
