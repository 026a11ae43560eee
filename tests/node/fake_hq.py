"""A head office in a few lines, for the agent's unit tests: an ``httpx.MockTransport`` handler
that answers status, pull and push as the protocol says, and can be told to fail.

It keeps what it received (events by id, batches by id with their stored answers, replayed
for a retry), so a test can check "everything exactly once" without a server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Failure = Callable[[httpx.Request], httpx.Response]


def error(status: int, code: str, *, retry_after: str | None = None) -> Failure:
    def respond(request: httpx.Request) -> httpx.Response:
        headers = {"Retry-After": retry_after} if retry_after else {}
        body = {"error": {"code": code, "message": f"{code} (test)", "details": None}}
        return httpx.Response(status, json=body, headers=headers)

    return respond


def network_down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused (test)", request=request)


@dataclass
class FakeHQ:
    store: str = "S01"
    registers: tuple[str, ...] = ("R1", "R2")
    pages: list[list[dict[str, Any]]] = field(default_factory=list)  # pull pages, in order
    statuses: dict[str, str] = field(default_factory=dict)  # event_id -> status to answer
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    pushes: list[dict[str, Any]] = field(default_factory=list)  # bodies as received
    failures: list[Failure] = field(default_factory=list)  # next requests fail like this
    commit_then_fail: int = 0  # next pushes are applied, then the answer is lost
    etag_seen: list[str] = field(default_factory=list)
    status_extra: dict[str, Any] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def high_water(self, register: str) -> int:
        seqs = {e["seq"] for e in self.events.values() if e["register"] == register}
        n = 0
        while n + 1 in seqs:
            n += 1
        return n

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if self.failures:
            return self.failures.pop(0)(request)
        if request.headers.get("Authorization") != "Bearer tbk_x_y":
            return error(401, "unauthenticated")(request)
        if request.url.path == "/api/v1/sync/status":
            registers = {
                r: {"high_water": self.high_water(r), "gaps": [], "held": 0, "conflicts": 0,
                    "rejected": 0, **self.status_extra}
                for r in self.registers
            }  # fmt: skip
            return httpx.Response(200, json={"store": self.store, "registers": registers})
        if request.url.path == "/api/v1/sync/pull":
            return self._pull(request)
        if request.url.path == "/api/v1/sync/push":
            return self._push(request)
        return error(404, "not_found")(request)

    def _pull(self, request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        index = int(cursor) if cursor else 0
        self.etag_seen.append(request.headers.get("If-None-Match", ""))
        if index >= len(self.pages):
            etag = f'"idle-{index}"'
            if request.headers.get("If-None-Match") == etag:
                return httpx.Response(304, headers={"ETag": etag})
            body = {"changes": [], "cursor": str(index), "has_more": False}
            return httpx.Response(200, json=body, headers={"ETag": etag})
        has_more = index + 1 < len(self.pages)
        body = {"changes": self.pages[index], "cursor": str(index + 1), "has_more": has_more}
        etag = f'"page-{index}"' if has_more else f'"idle-{index + 1}"'
        return httpx.Response(200, json=body, headers={"ETag": etag})

    def _push(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.pushes.append(body)
        batch_id = body["batch_id"]
        if batch_id in self.batches:
            answer = self.batches[batch_id]
        else:
            results = []
            for event in body["events"]:
                if event["event_id"] in self.events:
                    results.append({"event_id": event["event_id"], "status": "duplicate"})
                    continue
                status = self.statuses.get(event["event_id"], "accepted")
                if status != "rejected":
                    self.events[event["event_id"]] = event
                result = {"event_id": event["event_id"], "status": status}
                if status != "accepted":
                    result |= {"code": f"{status}_code", "message": f"{status} (test)"}
                results.append(result)
            registers = {e["register"] for e in body["events"]}
            answer = json.dumps(
                {
                    "batch_id": batch_id,
                    "results": results,
                    "high_water": {r: self.high_water(r) for r in sorted(registers)},
                    "server_time": "2026-11-23T09:15:00.310Z",
                }
            ).encode()
            self.batches[batch_id] = answer
        if self.commit_then_fail:
            self.commit_then_fail -= 1
            raise httpx.ReadError("connection reset after commit (test)", request=request)
        return httpx.Response(200, content=answer, headers={"Content-Type": "application/json"})
