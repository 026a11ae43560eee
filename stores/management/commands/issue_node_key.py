"""``manage.py issue_node_key STORE``: print a new API key for a store node, and only the key.

The key is shown this once (only its digest is stored), so stdout carries nothing else and
``KEY=$(python manage.py issue_node_key BER1)`` captures it. Errors are one line on stderr.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from erp.errors import ApplicationError
from stores.models import Store
from stores.services import node_key_issue

KNOWN_CODES_SHOWN = 10


class Command(BaseCommand):
    help = "Issue an API key for a store node and print it (shown once, stored hashed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store", metavar="STORE_CODE", help="The store's code, e.g. BER1.")
        parser.add_argument("--label", default="", help="A note for operators, e.g. 'till PC 2'.")

    def handle(self, *args: Any, **options: Any) -> None:
        code = options["store"]
        store = Store.objects.filter(code=code).first()
        if store is None:
            raise CommandError(f"No store with code {code!r}; {self._known_codes()}.")
        try:
            _node_key, plain = node_key_issue(actor=None, store=store, label=options["label"])
        except ApplicationError as exc:
            raise CommandError(" ".join(exc.message.split())) from exc
        self.stdout.write(plain)

    @staticmethod
    def _known_codes() -> str:
        codes = list(Store.objects.order_by("code").values_list("code", flat=True))
        if not codes:
            return "there are no stores yet (manage.py load_demo creates three)"
        shown = ", ".join(codes[:KNOWN_CODES_SHOWN])
        more = (
            f" and {len(codes) - KNOWN_CODES_SHOWN} more" if len(codes) > KNOWN_CODES_SHOWN else ""
        )
        return f"the stores are {shown}{more}"
