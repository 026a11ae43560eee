"""The node's web server as a real process (``ERP_ROLE=node``): it routes the till, serves the
cashier page's own assets, and documents the till API in its OpenAPI schema."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from tests.e2e.live_hq import free_port
from tests.node import processes
from tests.node.till_processes import NodeWeb

pytestmark = pytest.mark.slow


def get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def test_a_node_serves_the_till_its_assets_and_its_schema(tmp_path: Path) -> None:
    data = processes.new_node_dir(tmp_path)
    web = NodeWeb(data, tmp_path / "web.log", port=free_port(), workers=1).start()
    try:
        status, kind, body = get(web.port, "/till/")
        assert status == 200
        assert kind.startswith("text/html")
        assert b'src="/static/till/till.js"' in body
        assert b"Sign in" in body
        status, kind, body = get(web.port, "/static/till/till.js")
        assert status == 200
        assert b"keyboard-wedge" in body
        assert "javascript" in kind
        status, kind, body = get(web.port, "/till/api/v1/status")
        assert status == 200
        assert json.loads(body)["attention"][0]["kind"] == "not_ready"  # no node_init yet
        status, kind, body = get(web.port, "/till/api/v1/nothing-here")
        assert status == 404
        assert json.loads(body)["error"]["code"] == "not_found"
        status, _, body = get(web.port, "/api/schema/?format=json")
        assert status == 200, body[:300]
        paths = json.loads(body)["paths"]
        assert "/till/api/v1/baskets/{basket_id}/complete" in paths
        assert "/till/api/v1/returns" in paths
    finally:
        web.kill()
