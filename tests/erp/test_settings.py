"""Settings come from the environment and fail loudly: each case starts a real Django process.

A bad value must stop start-up with ``ImproperlyConfigured`` naming the variable; with nothing
set, HQ runs embedded (SQLite, eager Celery); production settings pass ``check --deploy``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

# Anything the project reads, so the child sees only what a test sets.
_PROJECT_PREFIXES = ("ERP_", "DJANGO_", "DATABASE_", "CELERY_", "REDIS_", "API_", "SYNC_")
_PROJECT_NAMES = {"BULK_MAX_ROWS", "CACHE_KEY_PREFIX", "DEMO_ADMIN_PASSWORD"}

PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "engine": s.DATABASES["default"]["ENGINE"],
    "name": str(s.DATABASES["default"]["NAME"]),
    "eager": s.CELERY_TASK_ALWAYS_EAGER,
    "broker": s.CELERY_BROKER_URL,
    "debug": s.DEBUG,
    "erp_env": s.ERP_ENV,
    "sync_max_events": s.SYNC_MAX_EVENTS,
}))
"""


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python <args>`` in the project directory with a clean environment plus ``env``."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_PROJECT_PREFIXES) and key not in _PROJECT_NAMES
    }
    clean["DJANGO_SETTINGS_MODULE"] = "erp.settings"
    clean["ERP_DATA_DIR"] = str(tmp_path)
    clean["PYTHONDONTWRITEBYTECODE"] = "1"
    clean.update(env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def settings_of(tmp_path: Path, **env: str) -> dict:
    result = run(tmp_path, "-c", PRINT_SETTINGS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        "ERP_ENV": "production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(45),  # 60 characters
        "DJANGO_ALLOWED_HOSTS": "x.example",
    }
    env.update(overrides)
    return env


GOOD_SECRET = "k" * 10 + secrets.token_urlsafe(45)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ERP_ENV": "bogus"}, "ERP_ENV"),
        ({"ERP_ROLE": "till"}, "ERP_ROLE"),
        ({"SYNC_MAX_EVENTS": "abc"}, "SYNC_MAX_EVENTS"),
        ({"SYNC_MAX_EVENTS": "0"}, "SYNC_MAX_EVENTS"),
        ({"SYNC_MAX_EVENTS": "1.5"}, "SYNC_MAX_EVENTS"),
        ({"API_PAGE_SIZE": "-1"}, "API_PAGE_SIZE"),
        ({"SYNC_MAX_BYTES": "100"}, "SYNC_MAX_BYTES"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"CELERY_TASK_ALWAYS_EAGER": "sometimes"}, "CELERY_TASK_ALWAYS_EAGER"),
        ({"DATABASE_URL": "nonsense://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_CONN_MAX_AGE": "forever"}, "DATABASE_CONN_MAX_AGE"),
        ({"ERP_ENV": "production", "DJANGO_ALLOWED_HOSTS": "x.example"}, "DJANGO_SECRET_KEY"),
        (
            {
                "ERP_ENV": "production",
                "DJANGO_SECRET_KEY": "short-but-set",
                "DJANGO_ALLOWED_HOSTS": "x.example",
            },
            "DJANGO_SECRET_KEY",
        ),
        (
            {
                "ERP_ENV": "production",
                "DJANGO_SECRET_KEY": "django-insecure-" + "x" * 50,
                "DJANGO_ALLOWED_HOSTS": "x.example",
            },
            "DJANGO_SECRET_KEY",
        ),
        ({"ERP_ENV": "production", "DJANGO_SECRET_KEY": GOOD_SECRET}, "DJANGO_ALLOWED_HOSTS"),
        (
            {
                "ERP_ENV": "production",
                "DJANGO_SECRET_KEY": GOOD_SECRET,
                "DJANGO_ALLOWED_HOSTS": " , ",
            },
            "DJANGO_ALLOWED_HOSTS",
        ),
        (production_env(DJANGO_SECURE_HSTS_SECONDS="a year"), "DJANGO_SECURE_HSTS_SECONDS"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_value_stops_start_up_naming_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    result = run(tmp_path, "manage.py", "check", **env)

    assert result.returncode != 0, result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr
    assert variable in last_line


def test_database_url_error_does_not_show_the_password(tmp_path: Path) -> None:
    result = run(tmp_path, "manage.py", "check", DATABASE_URL="mysql://tillbook:hunter2@db/x")

    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr


def test_with_nothing_set_hq_runs_embedded(tmp_path: Path) -> None:
    values = settings_of(tmp_path)

    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(tmp_path / "tillbook.sqlite3")
    assert values["eager"] is True
    assert values["erp_env"] == "development"
    assert values["debug"] is True
    assert values["sync_max_events"] == 1000


def test_a_broker_turns_eager_tasks_off(tmp_path: Path) -> None:
    values = settings_of(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/15")

    assert values["eager"] is False
    assert values["broker"] == "redis://127.0.0.1:6379/15"


def test_eager_can_be_forced_with_a_broker(tmp_path: Path) -> None:
    values = settings_of(
        tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/15", CELERY_TASK_ALWAYS_EAGER="true"
    )

    assert values["eager"] is True


def test_database_url_switches_to_postgresql(tmp_path: Path) -> None:
    values = settings_of(tmp_path, DATABASE_URL="postgres://tillbook@db.example:5432/tillbook")

    assert values["engine"] == "django.db.backends.postgresql"
    assert values["name"] == "tillbook"


def test_typed_values_are_read(tmp_path: Path) -> None:
    values = settings_of(tmp_path, SYNC_MAX_EVENTS="250", DJANGO_DEBUG="off", ERP_ENV="test")

    assert (values["sync_max_events"], values["debug"], values["erp_env"]) == (250, False, "test")


def test_production_settings_pass_the_deploy_check_without_warnings(tmp_path: Path) -> None:
    env = production_env()
    assert len(env["DJANGO_SECRET_KEY"]) == 60

    result = run(tmp_path, "manage.py", "check", "--deploy", "--fail-level", "WARNING", **env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_development_settings_fail_the_deploy_check(tmp_path: Path) -> None:
    # the check above can fail: in development DEBUG is on and cookies are not secure
    result = run(tmp_path, "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr  # DEBUG in deployment
