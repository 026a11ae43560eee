"""``manage.py node_init --hq URL --store CODE --register CODE --key KEY``: set up a store node.

Checks with head office first (``GET /api/v1/sync/status`` with the key): a refused key, a
register that is not the store's, an unreachable head office each stop it with one line on
stderr and a non-zero exit, having written nothing. Then it stores who this node is
(``NodeState``) and runs the first full pull of master data.

Run again with the same store and register to change head office's URL or rotate the key;
the outbox and the register's numbering are kept.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stores.local import NodeState, OutboxEvent
from stores.outbox import node_setup
from sync.node.agent import (
    HQBusy,
    HQClient,
    HQError,
    HQRefused,
    HQUnreachable,
    SyncAgent,
    quiet_http_logs,
)
from sync.node.feed import FeedError


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class Command(BaseCommand):
    help = "Set up this store node against head office and pull its master data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hq", required=True, metavar="URL", help="Head office's base URL.")
        parser.add_argument("--store", required=True, metavar="CODE", help="The store, e.g. BER1.")
        parser.add_argument("--register", required=True, metavar="CODE", help="e.g. R1.")
        parser.add_argument("--key", required=True, help="The node key head office issued.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ERP_ROLE != "node":
            raise CommandError("node_init sets up a store node; run it with ERP_ROLE=node.")
        url = options["hq"].strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CommandError(f"--hq must be an http:// or https:// URL, not {url!r}.")
        store, register, key = options["store"], options["register"], options["key"].strip()

        existing = NodeState.objects.filter(pk=1).first()
        if existing and (existing.store_code, existing.register_code) != (store, register):
            raise CommandError(
                f"this node is already register {existing.register_code} of store "
                f"{existing.store_code}; set up another register in a new data directory."
            )

        quiet_http_logs()
        client = HQClient(base_url=url, key=key)
        try:
            try:
                status = client.status()
            except HQRefused as exc:
                if exc.status == 401:
                    raise CommandError("head office refused the key") from exc
                raise CommandError(_one_line(f"head office refused the check: {exc}")) from exc
            except (HQUnreachable, HQBusy) as exc:
                raise CommandError(_one_line(str(exc))) from exc
            next_seq = self._check(status, store=store, register=register, existing=existing)
            _state, created = node_setup(
                hq_url=url, store_code=store, register_code=register, node_key=key,
                next_seq=next_seq,
            )  # fmt: skip
            self._pull(client, store=store, register=register, created=created)
        finally:
            client.close()

    def _check(
        self, status: dict[str, Any], *, store: str, register: str, existing: NodeState | None
    ) -> int:
        """The seq this node starts numbering at; raises CommandError when it must not start."""
        hq_store = status.get("store")
        if hq_store != store:
            raise CommandError(f"the key belongs to store {hq_store} at head office, not {store}")
        registers = status.get("registers")
        if not isinstance(registers, dict) or register not in registers:
            raise CommandError(
                f"register {register} is not a register of store {store} at head office"
            )
        if existing is not None or OutboxEvent.objects.exists():
            return existing.next_seq if existing else 1
        mine = registers[register] or {}
        high_water, gaps = int(mine.get("high_water") or 0), mine.get("gaps") or []
        if gaps:
            raise CommandError(
                f"head office is missing events of register {register} (seq "
                f"{', '.join(f'{a}–{b}' for a, b in gaps)}): the node that numbered them may "
                "still hold them; bring it back online first."
            )
        if high_water:
            self.stdout.write(
                f"Register {register} already has {high_water} events at head office; this "
                f"node numbers from {high_water + 1}."
            )
        return high_water + 1

    def _pull(self, client: HQClient, *, store: str, register: str, created: bool) -> None:
        agent = SyncAgent(client=client)
        try:
            result = agent.pull()
            agent.refresh_status()
        except (HQError, FeedError) as exc:
            raise CommandError(
                _one_line(
                    f"set up as register {register} of store {store}, but the first pull "
                    f"failed ({exc}); run_node will retry it"
                )
            ) from exc
        pulled = ", ".join(f"{n} {entity}" for entity, n in sorted(result.by_entity.items()))
        self.stdout.write(
            f"{'Set up' if created else 'Updated'}: register {register} of store {store}; "
            f"master data pulled ({pulled or 'no changes'})."
        )
