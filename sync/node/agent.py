"""The store node's sync agent: pulls master data from head office and pushes the outbox.

One step (``SyncAgent.run_once``) pulls when a pull is due (at least every
``SYNC_PULL_SECONDS``, and always before pushing when both are due), asks head office's status
for this register, then pushes the outbox oldest first in batches of ``SYNC_PUSH_BATCH``.
``run_forever`` repeats steps until its stop event is set (``manage.py run_node``).

What makes it safe to kill at any instant:

- A batch is committed to the outbox (``OutboxBatch``) before it is sent, and forgotten only
  when head office's answer is recorded; until then every attempt sends the same ``batch_id``
  and the same events, so a retry after a lost answer gets head office's stored answer.
- Only one batch is in flight, and batches are cut from the lowest pending seq upwards, so a
  register's events are never reordered across batches.
- Every database write is one short transaction; none is held open across a network call
  (SQLite has one writer, and that writer must be the till).

Failures: network errors, ``5xx``, ``408``, ``409`` and ``429`` are retried with exponential
backoff and full jitter, honouring ``Retry-After``; other refusals are flagged for the operator
and retried at the backoff's cap. Each result status is handled as ``sync-protocol.md`` says
(``stores.outbox.outbox_batch_answered``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from stores.local import NodeState
from stores.outbox import (
    AnswerMismatch,
    NodeNotInitialised,
    outbox_batch_answered,
    outbox_batch_attempted,
    outbox_batch_drop,
    outbox_batch_take,
    outbox_pending_count,
    outbox_prune,
)
from sync.node.feed import FeedError, PageResult, feed_page_apply, feed_resync_start

logger = logging.getLogger(__name__)

STATUS_PATH = "/api/v1/sync/status"
PULL_PATH = "/api/v1/sync/pull"
PUSH_PATH = "/api/v1/sync/push"
USER_AGENT = "tillbook-node/1"
# Statuses worth retrying as they are: the server is busy, overloaded or briefly broken.
RETRYABLE = {408, 409, 425, 429}


# --- talking to head office -----------------------------------------------------------------


def quiet_http_logs() -> None:
    """httpx logs every request at INFO: noise in a process that polls, and on the one line
    a command prints. The agent logs what matters; the commands call this."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


class HQError(Exception):
    """Head office could not be asked, or did not do what was asked."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after


class HQUnreachable(HQError):
    """No answer at all: refused, reset, timed out, or an answer that could not be read."""


class HQBusy(HQError):
    """An answer saying "later": 5xx, 408, 409 batch_in_progress, 429 throttled."""


class HQRefused(HQError):
    """A refusal that retrying unchanged will not fix: 400, 401, 403, 413, 422, …"""


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or timezone.now())).total_seconds())


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        return str(error.get("code") or ""), str(error.get("message") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", response.reason_phrase or ""


class HQClient:
    """HTTP to head office with this node's key.

    httpx, the field's standard client, with explicit timeouts: connecting may take at most
    5 s (an unreachable head office is noticed quickly), a whole exchange at most
    ``SYNC_HTTP_TIMEOUT``. Tests pass a ``transport`` (``httpx.MockTransport``).
    """

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        seconds = float(timeout or settings.SYNC_HTTP_TIMEOUT)
        self.base_url = base_url
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(seconds, connect=min(5.0, seconds)),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise HQUnreachable(
                f"head office at {self.base_url} cannot be reached ({type(exc).__name__}: "
                f"{exc or 'no detail'})"
            ) from exc
        if response.status_code in (200, 304):
            return response
        code, message = _error_of(response)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        text = f"head office answered {response.status_code} {code or ''} {message}".strip()
        kind = (
            HQBusy
            if response.status_code >= 500 or response.status_code in RETRYABLE
            else HQRefused
        )
        raise kind(text, status=response.status_code, code=code, retry_after=retry_after)

    @staticmethod
    def json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            # A 200 cut short or garbled on the way: ask again (a push replays its answer).
            raise HQUnreachable("head office's answer could not be read") from exc
        if not isinstance(body, dict):
            raise HQUnreachable("head office's answer is not a JSON object")
        return body

    def status(self) -> dict[str, Any]:
        return self.json(self.request("GET", STATUS_PATH))

    def pull(
        self, *, cursor: str | None, limit: int | None = None, etag: str = ""
    ) -> tuple[dict[str, Any] | None, str]:
        """One page: (answer, its ETag), or (None, etag) when head office says 304."""
        params: dict[str, Any] = {}
        if cursor:
            params["cursor"] = cursor
        if limit:
            params["limit"] = limit
        headers = {"If-None-Match": etag} if etag else None
        response = self.request("GET", PULL_PATH, params=params, headers=headers)
        if response.status_code == 304:
            return None, etag
        return self.json(response), response.headers.get("ETag", "")

    def push(self, body: bytes) -> dict[str, Any]:
        response = self.request(
            "POST", PUSH_PATH, content=body, headers={"Content-Type": "application/json"}
        )
        return self.json(response)


# --- waiting between attempts ----------------------------------------------------------------


class Backoff:
    """Exponential backoff with full jitter: after the n-th failure in a row, wait a random
    time in ``[0, min(cap, base · 2^(n-1)))``. A ``Retry-After`` is honoured (waited at least,
    up to ``cap``). While head office is unreachable the cap is ``offline_cap``: a refused
    connection costs head office nothing, and a short cap lets the store catch up within
    seconds of the network coming back; answers that say "overloaded" get the full cap."""

    def __init__(
        self,
        *,
        base: float = 0.5,
        cap: float | None = None,
        offline_cap: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.base = base
        self.cap = float(cap if cap is not None else settings.SYNC_BACKOFF_MAX_SECONDS)
        self.offline_cap = float(
            offline_cap if offline_cap is not None else settings.SYNC_OFFLINE_RETRY_MAX_SECONDS
        )
        self.clock = clock
        self.rng = rng
        self.failures = 0
        self.not_before = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.not_before

    def remaining(self) -> float:
        return max(0.0, self.not_before - self.clock())

    def failure(self, *, offline: bool = False, retry_after: float | None = None) -> float:
        """Note a failure; returns the wait before the next attempt."""
        self.failures += 1
        cap = min(self.cap, self.offline_cap) if offline else self.cap
        ceiling = min(cap, self.base * 2 ** min(self.failures - 1, 62))
        delay = self.rng() * ceiling
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        self.not_before = self.clock() + delay
        return delay

    def success(self) -> None:
        self.failures = 0
        self.not_before = 0.0


# --- the agent --------------------------------------------------------------------------------


@dataclass
class StepReport:
    """What one step did, and how long until the next one is worth running."""

    pulled: int = 0  # changes written to the mirror
    pull_pages: int = 0
    pushed: int = 0  # events answered by head office
    batches: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    contacted: bool = False  # head office answered something
    error: str = ""
    delay: float = 0.0


class SyncAgent:
    def __init__(
        self,
        *,
        client: HQClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        now: Callable[[], dt.datetime] = timezone.now,
        pull_seconds: float | None = None,
        batch_size: int | None = None,
        pull_limit: int | None = None,
        idle_seconds: float = 0.5,
        max_batches_per_step: int = 50,
        backoff: Backoff | None = None,
    ) -> None:
        state = NodeState.objects.filter(pk=1).first()
        if state is None:
            raise NodeNotInitialised()
        self.register = state.register_code
        self.client = client or HQClient(base_url=state.hq_url, key=state.node_key)
        self.clock = clock
        self.now = now
        self.pull_seconds = float(pull_seconds or settings.SYNC_PULL_SECONDS)
        self.batch_size = int(batch_size or settings.SYNC_PUSH_BATCH)
        self.pull_limit = pull_limit
        self.idle_seconds = idle_seconds
        self.max_batches_per_step = max_batches_per_step
        self.backoff = backoff or Backoff(clock=clock, rng=rng)
        self.next_pull = 0.0  # due at once
        self.pages_pulled = 0

    def close(self) -> None:
        self.client.close()

    # pull

    def pull(self) -> PageResult:
        """Follow the feed from the stored cursor until ``has_more`` is false; each page is
        applied with its cursor in one transaction. An ``invalid_cursor`` refusal (head office
        cannot read this node's cursor any more) starts again from nothing."""
        try:
            return self._pull_pages()
        except HQRefused as exc:
            if exc.code != "invalid_cursor":
                raise
            logger.warning("head office refused the pull cursor (%s); pulling afresh", exc)
            NodeState.objects.filter(pk=1).update(cursor="", pull_etag="")
            return self._pull_pages()

    def _pull_pages(self) -> PageResult:
        total = PageResult()
        state = NodeState.objects.get(pk=1)
        if not state.cursor:
            feed_resync_start()
        cursor = state.cursor or None
        etag = state.pull_etag if cursor else ""
        while True:
            answer, etag = self.client.pull(cursor=cursor, limit=self.pull_limit, etag=etag)
            if answer is None:  # 304: nothing changed since the last answer
                NodeState.objects.filter(pk=1).update(last_pull_at=self.now())
                return total
            changes, next_cursor, has_more = (
                answer.get("changes"),
                answer.get("cursor"),
                answer.get("has_more"),
            )
            if not isinstance(changes, list) or not isinstance(next_cursor, str):
                raise FeedError("head office's pull answer has no changes list or cursor")
            if not isinstance(has_more, bool):
                raise FeedError("head office's pull answer does not say has_more")
            page = feed_page_apply(
                changes=changes,
                cursor=next_cursor,
                etag=etag,
                complete=not has_more,
                now=self.now(),
            )
            total.applied += page.applied
            total.deleted += page.deleted
            total.stale += page.stale
            total.ignored += page.ignored
            for entity, n in page.by_entity.items():
                total.by_entity[entity] = total.by_entity.get(entity, 0) + n
            self.pages_pulled += 1
            if not has_more:
                return total
            if next_cursor == cursor:
                raise FeedError("head office's feed says it has more but does not advance")
            cursor, etag = next_cursor, ""

    def refresh_status(self) -> dict[str, Any] | None:
        """Ask head office what it holds for this register; note it and prune with it."""
        answer = self.client.status()
        registers = answer.get("registers")
        mine = registers.get(self.register) if isinstance(registers, dict) else None
        if not isinstance(mine, dict):
            return None
        high_water = mine.get("high_water")
        with transaction.atomic():
            changes: dict[str, Any] = {"hq_status": mine}
            if isinstance(high_water, int):
                changes["hq_high_water"] = high_water
            NodeState.objects.filter(pk=1).update(**changes)
            if isinstance(high_water, int):
                outbox_prune(high_water=high_water, register_status=mine)
        return mine

    # push

    def _body(self, batch) -> bytes:
        # The events are sent exactly as first cut (same bytes on every attempt); node_time is
        # read afresh each time: it is a clock reading, not part of the batch's identity at
        # head office, and a stale one would report an outage as clock skew.
        node_time = self.now().isoformat(timespec="milliseconds")
        return (
            '{"batch_id":'
            + json.dumps(str(batch.batch_id))
            + ',"node_time":'
            + json.dumps(node_time)
            + ',"events":'
            + batch.events
            + "}"
        ).encode()

    def push(self, report: StepReport) -> bool:
        """Push batches until the outbox has nothing pending (True) or the step's share of
        batches is used (False)."""
        for _ in range(self.max_batches_per_step):
            batch = outbox_batch_take(limit=self.batch_size, now=self.now())
            if batch is None:
                return True
            if batch.attempts:
                logger.info(
                    "resending batch %s (seq %d–%d), attempt %d",
                    batch.batch_id,
                    batch.first_seq,
                    batch.last_seq,
                    batch.attempts + 1,
                )
            outbox_batch_attempted(batch=batch, now=self.now())
            try:
                answer = self.client.push(self._body(batch))
            except HQRefused as exc:
                report.contacted = True
                if exc.status == 413 and batch.event_count > 1:
                    # Head office takes fewer events per batch than we cut: it applied none.
                    outbox_batch_drop(batch=batch)
                    self.batch_size = max(1, batch.event_count // 2)
                    logger.warning("batch too large for head office; now %d", self.batch_size)
                    continue
                if exc.code == "batch_id_reused":
                    outbox_batch_drop(batch=batch)  # applied nothing; cut a new batch
                    logger.error("head office says batch %s was used before", batch.batch_id)
                    continue
                raise
            report.contacted = True
            results = answer.get("results")
            high_water = answer.get("high_water")
            mine = high_water.get(self.register) if isinstance(high_water, dict) else None
            if not isinstance(results, list):
                raise AnswerMismatch("head office's push answer has no results list")
            summary = outbox_batch_answered(
                batch=batch,
                results=results,
                high_water=mine if isinstance(mine, int) else None,
                now=self.now(),
            )
            report.pushed += batch.event_count
            report.batches += 1
            report.statuses.update(summary.counts)
            logger.info(
                "pushed seq %d–%d: %s; high water %s",
                batch.first_seq,
                batch.last_seq,
                ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())),
                mine,
            )
            for status in ("conflict", "rejected"):
                if summary.counts.get(status):
                    logger.warning(
                        "%d event(s) %s by head office: they need attention",
                        summary.counts[status],
                        status,
                    )
        return outbox_pending_count() == 0

    # one step, and the loop

    def run_once(self) -> StepReport:
        report = StepReport()
        if not self.backoff.ready():
            report.delay = self.backoff.remaining()
            return report
        errors: list[str] = []
        drained = False
        try:
            if self.clock() >= self.next_pull:
                before = self.pages_pulled
                try:
                    result = self.pull()
                    report.pulled = result.applied + result.deleted
                    self.refresh_status()
                    self.next_pull = self.clock() + self.pull_seconds
                except (HQRefused, FeedError) as exc:
                    # Master data stuck must not hold sales back: say so, and push anyway.
                    errors.append(f"pull: {exc}")
                    self.next_pull = self.clock() + self.pull_seconds
                report.pull_pages = self.pages_pulled - before
                report.contacted = True
            drained = self.push(report)
        except HQUnreachable as exc:
            return self._failed(report, str(exc), online=False, offline=True)
        except HQBusy as exc:
            online = exc.status is not None and exc.status < 500
            return self._failed(report, str(exc), online=online, retry_after=exc.retry_after)
        except (HQRefused, AnswerMismatch) as exc:
            return self._failed(report, str(exc), online=True)
        if errors:
            return self._failed(report, "; ".join(errors), online=True)
        self.backoff.success()
        if report.contacted:
            now = self.now()
            changes: dict[str, Any] = {"online": True, "last_error": "", "last_error_at": None}
            if drained:
                changes["last_sync_ok_at"] = now
            NodeState.objects.filter(pk=1).update(**changes)
        report.delay = (
            0.0 if not drained else min(self.idle_seconds, max(0.0, self.next_pull - self.clock()))
        )
        return report

    def _failed(
        self,
        report: StepReport,
        message: str,
        *,
        online: bool,
        offline: bool = False,
        retry_after: float | None = None,
    ) -> StepReport:
        report.error = message
        report.delay = self.backoff.failure(offline=offline, retry_after=retry_after)
        message = message[:2000]
        state = NodeState.objects.filter(pk=1).values("online", "last_error").first() or {}
        if state.get("online") != online or state.get("last_error") != message:
            # Written when it changes, not at every retry: last_error_at says since when.
            logger.warning("%s (next attempt in %.1f s)", message, report.delay)
            NodeState.objects.filter(pk=1).update(
                online=online, last_error=message, last_error_at=self.now()
            )
        return report

    def run_forever(self, stop_event: threading.Event) -> None:
        """Steps until ``stop_event`` is set; a step interrupted by an unexpected error is
        logged and retried after a backoff, never a crash loop."""
        while not stop_event.is_set():
            try:
                report = self.run_once()
                delay = report.delay
            except Exception:
                logger.exception("sync step failed")
                delay = self.backoff.failure()
            stop_event.wait(delay)
