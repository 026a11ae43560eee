"""The head-office roles and their rights on master data."""

from django.db import migrations

from erp.roles import AUDITOR, FINANCE, STAFF, grant

MASTER_DATA = [
    ("inventory", "taxrate"),
    ("inventory", "product"),
    ("inventory", "barcode"),
    ("inventory", "pricelist"),
    ("inventory", "price"),
    ("inventory", "stocklocation"),
    ("stores", "store"),
    ("stores", "register"),
    ("stores", "nodekey"),
]


def create_roles(apps, schema_editor):
    grant(apps, STAFF, MASTER_DATA)
    grant(apps, STAFF, [("inventory", "currency")], ["view"], with_history=False)
    grant(apps, FINANCE, MASTER_DATA, ["view"])
    grant(apps, FINANCE, [("inventory", "currency")], ["view"], with_history=False)
    grant(apps, AUDITOR, MASTER_DATA, ["view"])
    grant(apps, AUDITOR, [("inventory", "currency")], ["view"], with_history=False)
    grant(
        apps,
        AUDITOR,
        [("auth", "user"), ("auth", "group"), ("admin", "logentry")],
        ["view"],
        with_history=False,
    )


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[STAFF, FINANCE, AUDITOR]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("inventory", "0002_currencies_and_database_invariants"),
        ("stores", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
