"""Real store-node processes for tests: ``manage.py`` in subprocesses with ``ERP_ROLE=node``
and a SQLite database of their own in ``ERP_DATA_DIR``.

The node database is migrated once per test session (a template file) and copied for each
test: a migrated node in milliseconds instead of seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
DB_FILE = "tillbook.sqlite3"


def node_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "DJANGO_", "SYNC_", "PYTEST_"))
        and k not in ("ERP_ROLE", "ERP_DATA_DIR")
    }
    env.update(
        ERP_ENV="test", ERP_ROLE="node", ERP_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **extra
    )
    return env


def manage(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env={**node_env(data_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


_template: Path | None = None
_template_lock = threading.Lock()


def template_node_db() -> Path:
    """A migrated, empty node database (made once per test session)."""
    global _template
    with _template_lock:
        if _template is None:
            directory = Path(tempfile.mkdtemp(prefix="tillbook_node_tpl_"))
            done = manage(directory, "migrate", "--noinput", "-v", "0")
            if done.returncode != 0:
                raise RuntimeError(f"node migrate failed:\n{done.stdout}\n{done.stderr}")
            _template = directory / DB_FILE
        return _template


def new_node_dir(parent: Path, name: str = "node") -> Path:
    directory = parent / name
    directory.mkdir()
    shutil.copyfile(template_node_db(), directory / DB_FILE)
    return directory


def query(data_dir: Path, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Read the node's database directly (as an operator's sqlite3 would)."""
    with contextlib.closing(sqlite3.connect(data_dir / DB_FILE, timeout=10)) as conn:
        return conn.execute(sql, params).fetchall()


@dataclass
class NodeAgent:
    """``manage.py run_node`` as a background process, its output in ``log_path``."""

    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeAgent:
        assert self.proc is None, "already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(PYTHON), "manage.py", "run_node"],
                cwd=ROOT,
                env={**node_env(self.data_dir), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL, as a power cut does."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the clean stop; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
