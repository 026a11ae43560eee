"""``manage.py run_node``: the store node's sync agent, until SIGTERM or SIGINT (Ctrl-C).

It pulls master data and pushes the outbox (``sync.node.agent``). A stop signal ends it after
the step in progress (at most one HTTP timeout); every step's writes are transactions, so a
``kill -9`` instead loses nothing either: the next start resends the batch in flight.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from stores.local import NodeState
from sync.node.agent import SyncAgent, quiet_http_logs


class Command(BaseCommand):
    help = "Run the store node's sync agent (pull master data, push the outbox) until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Run one sync step and exit (non-zero on error)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ERP_ROLE != "node":
            raise CommandError("run_node runs on a store node; start it with ERP_ROLE=node.")
        state = NodeState.objects.filter(pk=1).first()
        if state is None:
            raise CommandError(
                "this node is not set up: run manage.py node_init --hq URL --store CODE "
                "--register CODE --key KEY"
            )
        quiet_http_logs()
        agent = SyncAgent()
        try:
            if options["once"]:
                report = agent.run_once()
                if report.error:
                    raise CommandError(" ".join(report.error.split()))
                self.stdout.write(
                    f"pulled {report.pulled} change(s), pushed {report.pushed} event(s)"
                )
                return
            stop = threading.Event()

            def on_signal(signum: int, frame: object) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            self.stdout.write(
                f"Node {state.store_code}/{state.register_code} syncing with {state.hq_url} "
                f"(pull every {agent.pull_seconds:g} s, batches of {agent.batch_size}); "
                "stop with SIGTERM or Ctrl-C."
            )
            agent.run_forever(stop)
            self.stdout.write("Stopped.")
        finally:
            agent.close()
