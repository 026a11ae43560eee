"""A real head office for end-to-end and fault tests: its own PostgreSQL database, migrated
and seeded by ``manage.py`` in subprocesses, served by a real gunicorn on 127.0.0.1.

The suite migrates and seeds one *template* database per test session (``manage.py migrate``
and ``manage.py shell -c``, in subprocesses, with the same environment as the server); each
test then gets a database of its own, ``tillbook_e2e_<random>``, created from that template
(``CREATE DATABASE … TEMPLATE``, a file copy: a migrated, seeded database in milliseconds)
and a gunicorn of its own. Everything is dropped and killed at teardown, whatever happened.

Tests talk to the server with ``http.client`` only, and read what it committed with psycopg.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PG = "postgres://postgres@127.0.0.1:5432"
PG_ADMIN = f"{PG}/postgres"
PUSH = "/api/v1/sync/push"
TEST_APP = "tillbook-e2e-test"  # application_name of the test's own connections

# What the seed creates: stores with their registers and node keys (one key per node), and
# products every store's price list sells at PRICE.
PRICE = "1.99"
SKUS = ("SKU-A", "SKU-B", "SKU-C", "SKU-D")
STORES = (
    ("S01", ("R1", "R2", "R3"), ("S01-A", "S01-B")),
    ("S02", ("R1", "R2"), ("S02-A", "S02-B")),
)

_SEED = """
import json, sys
from decimal import Decimal
from stores.services import node_key_issue
from tests.factories import (PriceFactory, PriceListFactory, ProductFactory, RegisterFactory,
                             StoreFactory, TaxRateFactory)
spec = json.loads({spec!r})
tax = TaxRateFactory()
price_list = PriceListFactory()
out = {{"products": {{}}, "stores": {{}}, "keys": {{}}}}
for sku in spec["skus"]:
    product = ProductFactory(sku=sku, tax_rate=tax)
    PriceFactory(price_list=price_list, product=product, price=Decimal(spec["price"]))
    out["products"][sku] = product.pk
for code, registers, keys in spec["stores"]:
    store = StoreFactory(code=code, price_list=price_list)
    for register in registers:
        RegisterFactory(store=store, code=register)
    out["stores"][code] = {{"id": store.pk, "location_id": store.stock_location_id}}
    for label in keys:
        out["keys"][label] = node_key_issue(actor=None, store=store, label=label)[1]
sys.stdout.write("SEED=" + json.dumps(out) + "\\n")
"""


@dataclass(frozen=True)
class Seed:
    products: dict[str, int]
    stores: dict[str, dict[str, int]]
    keys: dict[str, str]

    def location(self, store: str) -> int:
        return self.stores[store]["location_id"]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def statuses(self) -> list[str]:
        return [r["status"] for r in self.json()["results"]]


# --- PostgreSQL -----------------------------------------------------------------------------


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, application_name=TEST_APP) as conn:
        conn.execute(statement)


def _create_db(name: str, template: str | None = None) -> None:
    if template is None:
        _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    else:
        _admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


def _drop_db(name: str) -> None:
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def server_env(database: str) -> dict[str, str]:
    """The environment of every process that touches ``database`` (migrate, seed, server)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "GUNICORN_", "DJANGO_"))
        and k not in ("WEB_CONCURRENCY", "ERP_ROLE")
    }
    env.update(
        ERP_ENV="test",
        DATABASE_URL=f"{PG}/{database}",
        CELERY_TASK_ALWAYS_EAGER="true",
        API_THROTTLE_NODE="100000/minute",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(database: str, *args: str) -> str:
    done = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env=server_env(database),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


_template: tuple[str, Seed] | None = None
_template_lock = threading.Lock()


def template_database(config: pytest.Config) -> tuple[str, Seed]:
    """The session's migrated and seeded template (made once, dropped when the session ends)."""
    global _template
    with _template_lock:
        if _template is None:
            name = f"tillbook_e2e_tpl_{secrets.token_hex(4)}"
            _create_db(name)
            config.add_cleanup(lambda: _drop_db(name))
            _manage(name, "migrate", "--noinput", "-v", "0")
            spec = {"skus": list(SKUS), "price": PRICE, "stores": STORES}
            out = _manage(name, "shell", "-c", _SEED.format(spec=json.dumps(spec)))
            line = next(x for x in out.splitlines() if x.startswith("SEED="))
            _template = (name, Seed(**json.loads(line.removeprefix("SEED="))))
        return _template


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveHQ:
    database: str
    seed: Seed
    log_path: Path
    port: int = field(default_factory=free_port)
    workers: int = 3
    env: dict[str, str] = field(default_factory=dict)  # settings for this server only
    proc: subprocess.Popen | None = None
    _db: psycopg.Connection | None = None

    # server lifecycle

    def start(self) -> None:
        assert self.proc is None, "already running"
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [
                    str(GUNICORN), "erp.wsgi:application",
                    "--bind", f"127.0.0.1:{self.port}",
                    "--workers", str(self.workers),
                    "--timeout", "60",
                    "--no-control-socket",
                ],
                cwd=ROOT,
                env={**server_env(self.database), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: master and workers die together
            )  # fmt: skip
        finally:
            log.close()
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited during start-up:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                finally:
                    conn.close()
            time.sleep(0.05)
        else:
            raise RuntimeError(f"gunicorn did not become healthy:\n{self.log_tail()}")
        # The first answer needs one worker; give the others a moment to finish booting so
        # concurrency tests really have ``workers`` processes racing.
        time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the master and every worker (the whole process group), as a crash does."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        if self._db is not None:
            self._db.close()
            self._db = None

    def log_tail(self, n: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def log_errors(self) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [ln for ln in text.splitlines() if "Traceback" in ln or "deadlock" in ln.lower()]

    # HTTP

    def connect(
        self, port: int | None = None, timeout: float = 120.0
    ) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        conn.connect()
        return conn

    def send(self, conn: http.client.HTTPConnection, body: bytes, key: str) -> Reply:
        try:
            conn.request(
                "POST",
                PUSH,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.seed.keys[key]}",
                },
            )
            response = conn.getresponse()
            return Reply(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            conn.close()

    def push(
        self, body: bytes, key: str, *, port: int | None = None, timeout: float = 120.0
    ) -> Reply:
        return self.send(self.connect(port, timeout), body, key)

    def push_answered(
        self, body: bytes, key: str, *, port: int | None = None, patience: float = 60.0
    ) -> tuple[Reply, int]:
        """Push, honouring ``409 batch_in_progress`` + Retry-After as a node does; returns the
        final reply and how many 409s it took."""
        busy = 0
        deadline = time.monotonic() + patience
        while True:
            reply = self.push(body, key, port=port)
            if reply.status != 409 or time.monotonic() > deadline:
                return reply, busy
            assert reply.json()["error"]["code"] == "batch_in_progress", reply.body
            assert "retry-after" in reply.headers, reply.headers
            busy += 1
            time.sleep(min(float(reply.headers["retry-after"]), 2.0))

    # the database, read directly

    @property
    def db(self) -> psycopg.Connection:
        if self._db is None or self._db.closed:
            self._db = psycopg.connect(
                f"{PG}/{self.database}", autocommit=True, application_name=TEST_APP
            )
        return self._db

    def rows(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.db.execute(query, params).fetchall()  # type: ignore[arg-type]

    def scalar(self, query: str, params: Any = None) -> Any:
        return self.rows(query, params)[0][0]

    def counts(self) -> dict[str, int]:
        tables = (
            "sync_batch", "sync_event", "stores_sale", "stores_saleline", "stores_tender",
            "inventory_stockmove", "sync_eventconflict",
        )  # fmt: skip
        return {t: self.scalar(f"SELECT count(*) FROM {t}") for t in tables}

    def server_backends(self) -> list[tuple[int, str, str]]:
        """(pid, state, query) of the server's connections to this database."""
        return self.rows(
            "SELECT pid, coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'client backend' "
            "AND application_name <> %s AND pid <> pg_backend_pid()",
            [self.database, TEST_APP],
        )

    def wait_no_server_backends(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.server_backends():
            if time.monotonic() > deadline:
                raise AssertionError(f"server connections linger: {self.server_backends()}")
            time.sleep(0.02)

    def watch_lock_waits(self) -> LockWatch:
        """Sample, in the background, which server statements wait on a lock: evidence that
        the requests of a race really overlapped inside the database."""
        return LockWatch(f"{PG}/{self.database}", self.database)

    def deadlocks(self) -> int:
        return self.scalar(
            "SELECT coalesce(deadlocks, 0) FROM pg_stat_database WHERE datname = %s",
            [self.database],
        )


class LockWatch:
    """``with hq.watch_lock_waits() as watch: …``; then ``watch.seen`` counts, per table named
    in the waiting statement, how many samples found a server connection waiting on a lock,
    and ``watch.overlap`` is the most server connections seen inside a transaction that had
    written to an ingestion table at one moment (2 or more: the requests' transactions really
    ran at the same time)."""

    TABLES = (
        "sync_batch",
        "sync_registersyncstate",
        "sync_nodesyncstate",
        "inventory_stocklevel",
        "sync_event",
    )

    def __init__(self, dsn: str, database: str) -> None:
        self.dsn = dsn
        self.database = database
        self.seen: dict[str, int] = {}
        self.overlap = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, application_name=TEST_APP) as conn:
            while not self._stop.is_set():
                writing = 0
                for query, waiting, in_push in conn.execute(
                    "SELECT a.query, a.wait_event_type = 'Lock', EXISTS (SELECT 1 FROM pg_locks l "
                    "  JOIN pg_class c ON c.oid = l.relation WHERE l.pid = a.pid "
                    "  AND l.mode = 'RowExclusiveLock' AND c.relname = 'sync_batch') "
                    "FROM pg_stat_activity a WHERE a.datname = %s AND a.application_name <> %s "
                    "AND a.xact_start IS NOT NULL",
                    [self.database, TEST_APP],
                ):
                    writing += bool(in_push)
                    if waiting:
                        table = next((t for t in self.TABLES if t in query), "other")
                        self.seen[table] = self.seen.get(table, 0) + 1
                self.overlap = max(self.overlap, writing)
                time.sleep(0.002)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def hq_env() -> dict[str, str]:
    """Extra environment for the server; override with ``@pytest.mark.parametrize("hq_env",
    [{"SYNC_LOCK_TIMEOUT_SECONDS": "1"}])``."""
    return {}


@pytest.fixture
def live_hq(
    request: pytest.FixtureRequest, tmp_path: Path, hq_env: dict[str, str]
) -> Iterator[LiveHQ]:
    """A running head office on a database of its own; killed and dropped at teardown."""
    template, seed = template_database(request.config)
    name = f"tillbook_e2e_{secrets.token_hex(6)}"
    _create_db(name, template=template)
    hq = LiveHQ(database=name, seed=seed, log_path=tmp_path / "gunicorn.log", env=hq_env)
    try:
        hq.start()
        yield hq
    finally:
        try:
            hq.close()  # SIGKILL the process group, close the test's connection
        finally:
            _drop_db(name)
