"""Head-office roles' rights on cashiers: staff manage them, finance and auditors read them."""

from django.db import migrations

from erp.roles import AUDITOR, FINANCE, STAFF, grant

CASHIERS = [("stores", "cashier"), ("stores", "cashierstore")]


def grant_cashier_rights(apps, schema_editor):
    grant(apps, STAFF, CASHIERS)
    grant(apps, FINANCE, CASHIERS, ["view"])
    grant(apps, AUDITOR, CASHIERS, ["view"])


def revoke_cashier_rights(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    names = {name for _label, name in CASHIERS} | {f"historical{n}" for _l, n in CASHIERS}
    permissions = Permission.objects.filter(
        content_type__app_label="stores", content_type__model__in=names
    )
    for group in Group.objects.filter(name__in=[STAFF, FINANCE, AUDITOR]):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("stores", "0003_cashiers_and_offline_rules"), ("erp", "0001_roles")]

    operations = [migrations.RunPython(grant_cashier_rights, revoke_cashier_rights)]
