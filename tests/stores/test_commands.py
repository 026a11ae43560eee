from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from stores.models import NodeKey
from stores.services import node_key_authenticate
from tests.factories import StoreFactory

KEY_LINE = re.compile(r"^tbk_[0-9a-f]{8}_\S+$")


def issue(*args: str) -> str:
    out = StringIO()
    call_command("issue_node_key", *args, stdout=out)
    return out.getvalue()


def test_issue_node_key_prints_only_the_key_on_one_line(db: None) -> None:
    # given
    store = StoreFactory(code="BER1")
    # when
    output = issue("BER1", "--label", "till PC 2")
    # then
    assert output.endswith("\n")
    assert output.count("\n") == 1
    key = output.rstrip("\n")
    assert KEY_LINE.match(key)
    node_key = NodeKey.objects.get(store=store)
    assert node_key.digest == hashlib.sha256(key.encode()).hexdigest()
    assert node_key.label == "till PC 2"
    assert node_key.history.count() == 1
    assert node_key_authenticate(key=key) == node_key


def test_key_whose_secret_contains_underscores_authenticates(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # URL-safe base64 uses "_": about half of all real secrets contain one.
    monkeypatch.setattr("stores.services.secrets.token_urlsafe", lambda n: "a_b_" + "c" * 39)
    StoreFactory(code="BER1")
    key = issue("BER1").rstrip("\n")
    assert key.count("_") == 4
    assert node_key_authenticate(key=key) == NodeKey.objects.get()


def test_unknown_store_is_refused_without_issuing_a_key(db: None) -> None:
    StoreFactory(code="BER1")
    with pytest.raises(CommandError, match=r"No store with code 'NOPE'.*BER1") as raised:
        issue("NOPE")
    assert "\n" not in str(raised.value)
    assert not NodeKey.objects.exists()


def test_inactive_store_is_refused_without_issuing_a_key(db: None) -> None:
    StoreFactory(code="OLD1", active=False)
    with pytest.raises(CommandError, match="OLD1 is inactive") as raised:
        issue("OLD1")
    assert "\n" not in str(raised.value)
    assert not NodeKey.objects.exists()


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a fresh embedded (SQLite) install, migrated, in a temp directory."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.pop("CELERY_BROKER_URL", None)
    env.update(ERP_DATA_DIR=str(tmp_path_factory.mktemp("embedded")), ERP_ENV="test")
    manage(env, "migrate", "--noinput", "-v", "0", check=True)
    return env


def manage(env: dict[str, str], *args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


@pytest.mark.slow
def test_unknown_store_exits_non_zero_with_one_line_on_stderr(embedded_env: dict[str, str]) -> None:
    result = manage(embedded_env, "issue_node_key", "NOPE")
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "NOPE" in result.stderr


@pytest.mark.slow
def test_key_can_be_captured_from_stdout_after_loading_the_demo(
    embedded_env: dict[str, str],
) -> None:
    manage(embedded_env, "load_demo", check=True)
    result = manage(embedded_env, "issue_node_key", "BER1")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.endswith("\n")
    assert len(result.stdout.splitlines()) == 1
    assert KEY_LINE.match(result.stdout.rstrip("\n"))
