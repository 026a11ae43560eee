"""The node's web server as a real process (gunicorn with ``ERP_ROLE=node``), and a small
HTTP client for its till API: for end-to-end tests and ``benchmarks/node.py``."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.node.processes import ROOT, node_env

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
API = "/till/api/v1/"


@dataclass
class NodeWeb:
    """``gunicorn erp.wsgi`` on the node's data directory: the cashier page and till API."""

    data_dir: Path
    log_path: Path
    port: int
    workers: int = 2
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeWeb:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(GUNICORN), "erp.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers), "--timeout", "60", "--no-control-socket"],
                cwd=ROOT,
                env={**node_env(self.data_dir), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node web exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", API + "status")
                    if conn.getresponse().status == 200:
                        return self
                finally:
                    conn.close()
            time.sleep(0.05)
        raise RuntimeError(f"node web did not start:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None


class TillClient:
    """The till API over one keep-alive connection, signed in by header as a cashier."""

    def __init__(self, port: int, cashier: str, pin: str) -> None:
        self.port = port
        self.headers = {"X-Cashier": cashier, "X-Cashier-Pin": pin,
                        "Content-Type": "application/json"}  # fmt: skip
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, data: Any = None) -> tuple[int, Any]:
        # gunicorn's sync workers answer "Connection: close"; http.client then reconnects on
        # the next request by itself. A POST is never retried here: it is not idempotent.
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        body = json.dumps(data) if data is not None else None
        try:
            self.conn.request(method, API + path, body=body, headers=self.headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = None
            raise
        return response.status, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, data: Any = None, status: int = 200) -> Any:
        got, body = self.call(method, path, data)
        assert got == status, (method, path, got, body)
        return body

    def sale(self, lines: list[tuple[str, str | None]], *, method: str = "cash") -> dict[str, Any]:
        basket = self.ok("POST", "baskets", None, 201)["basket_id"]
        for code, qty in lines:
            data = {"code": code} if qty is None else {"code": code, "qty": qty}
            self.ok("POST", f"baskets/{basket}/lines", data, 201)
        self.ok("POST", f"baskets/{basket}/tenders", {"method": method}, 201)
        return self.ok("POST", f"baskets/{basket}/complete", None, 201)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
