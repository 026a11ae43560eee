"""The head-office roles' rights on what store nodes send.

- staff: read everything received; correct, re-apply and void dead letters; acknowledge and
  resolve reconciliation exceptions.
- finance: read everything received; acknowledge and resolve reconciliation exceptions.
- auditor: read everything received, history included (and nothing else).

Sales and the stock ledger are written only by sync ingestion, so reading them (the HQ API's
``/sales/`` and ``/stock/``) is granted here too, to every role.
"""

from django.db import migrations

from erp.roles import FINANCE, ROLES, STAFF, grant

RECEIVED = [("sync", "event"), ("sync", "eventconflict"), ("sync", "batch")]
DEAD_LETTERS = [("sync", "deadletter")]
EXCEPTIONS = [("sync", "reconciliationexception")]
INGESTED = [
    ("stores", "sale"),
    ("stores", "saleline"),
    ("stores", "tender"),
    ("inventory", "stocklevel"),
    ("inventory", "stockmove"),
]


def grant_sync_rights(apps, schema_editor):
    for role in ROLES:
        grant(apps, role, RECEIVED + INGESTED, ["view"], with_history=False)
        grant(apps, role, DEAD_LETTERS + EXCEPTIONS, ["view"])
    grant(apps, STAFF, DEAD_LETTERS + EXCEPTIONS, ["change"], with_history=False)
    grant(apps, FINANCE, EXCEPTIONS, ["change"], with_history=False)


def revoke_sync_rights(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    models = RECEIVED + INGESTED + DEAD_LETTERS + EXCEPTIONS
    names = {name for _label, name in models} | {
        f"historical{name}" for _label, name in DEAD_LETTERS + EXCEPTIONS
    }
    permissions = Permission.objects.filter(
        content_type__app_label__in={label for label, _name in models},
        content_type__model__in=names,
    )
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0001_initial"),
        ("erp", "0001_roles"),
        ("inventory", "0003_stockcount_stockcountline_stocklevel_stockmove"),
        ("stores", "0002_cashmovement_sale_saleline_tender_tillsession_and_more"),
    ]

    operations = [migrations.RunPython(grant_sync_rights, revoke_sync_rights)]
