"""``manage.py load_demo``: the demo stores, catalogue and admin user, safe to run again."""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from erp.demo import ADMIN_USERNAME, CASHIERS, DEFAULT_ADMIN_PASSWORD, demo_load
from erp.errors import ApplicationError

PASSWORD_VARIABLE = "DEMO_ADMIN_PASSWORD"


class Command(BaseCommand):
    help = (
        "Load the demo data (3 stores and their cashiers, 500 products, prices, an admin user) "
        "through the services. Running it again changes nothing. The admin password is "
        f"${PASSWORD_VARIABLE} or {DEFAULT_ADMIN_PASSWORD!r}; the cashiers' PINs are printed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Load the demo even with ERP_ENV=production (it creates a superuser).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION and not options["allow_production"]:
            raise CommandError(
                "load_demo creates a superuser with a known password: refused with "
                "ERP_ENV=production (pass --allow-production to insist)."
            )
        from_env = bool(os.environ.get(PASSWORD_VARIABLE))
        password = os.environ.get(PASSWORD_VARIABLE) or DEFAULT_ADMIN_PASSWORD
        started = time.monotonic()
        try:
            summary = demo_load(admin_password=password)
        except ApplicationError as exc:
            raise CommandError(" ".join(f"{exc.code}: {exc.message}".split())) from exc
        elapsed = time.monotonic() - started

        write = self.stdout.write
        write(self.style.SUCCESS(f"Demo data loaded in {elapsed:.1f} s."))
        for kind, outcomes in summary.outcomes.items():
            detail = ", ".join(
                f"{outcomes[o]} {o}" for o in ("created", "updated", "unchanged") if outcomes[o]
            )
            write(f"  {kind:<12} {summary.counts.get(kind, 0):>5}  ({detail})")
        write(f"  {'barcodes':<12} {summary.counts['barcodes']:>5}")
        write(f"  {'weighed':<12} {summary.counts['weighed products']:>5}  (sold by kg)")
        write("")
        write("Admin:     http://127.0.0.1:8000/admin/")
        write(f"Username:  {ADMIN_USERNAME}")
        # A password chosen through the environment is not echoed into terminals and logs.
        write(f"Password:  {'(the value of $' + PASSWORD_VARIABLE + ')' if from_env else password}")
        write("API docs:  http://127.0.0.1:8000/api/docs/")
        write("")
        write("Cashiers (sign in at a till with code and PIN):")
        for code, name, role, pin, store_code in CASHIERS:
            write(f"  {store_code:<5} {code:<8} PIN {pin}  {name} ({role})")
