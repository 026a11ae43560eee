"""ISO 4217 currencies, and the invariants the ORM cannot declare on both databases.

PostgreSQL: no two prices of one SKU in one list with overlapping validity (an exclusion
constraint over ``daterange(valid_from, valid_to, '[]')``, deferrable so that one transaction
may shift adjacent ranges), and the GS1 check digit of every barcode (a CHECK constraint).
SQLite (the embedded default): the same overlap rule as triggers; the check digit is
validated by the model and the services.
"""

from django.db import migrations

PG_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """
    ALTER TABLE inventory_price ADD CONSTRAINT price_validity_no_overlap
    EXCLUDE USING gist (
        price_list_id WITH =,
        product_id WITH =,
        daterange(valid_from, valid_to, '[]') WITH &&
    ) DEFERRABLE INITIALLY IMMEDIATE
    """,
    """
    CREATE OR REPLACE FUNCTION tillbook_gtin_valid(code text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN code ~ '^([0-9]{8}|[0-9]{12}|[0-9]{13})$' THEN
            (10 - (SELECT sum(substr(code, length(code) - i, 1)::int
                              * CASE WHEN i % 2 = 1 THEN 3 ELSE 1 END)
                   FROM generate_series(1, length(code) - 1) AS i) % 10) % 10
            = substr(code, length(code), 1)::int
        ELSE false END
    $$
    """,
    """
    ALTER TABLE inventory_barcode ADD CONSTRAINT barcode_gs1_check_digit
    CHECK (tillbook_gtin_valid(code))
    """,
]
PG_BACKWARD = [
    "ALTER TABLE inventory_barcode DROP CONSTRAINT IF EXISTS barcode_gs1_check_digit",
    "DROP FUNCTION IF EXISTS tillbook_gtin_valid(text)",
    "ALTER TABLE inventory_price DROP CONSTRAINT IF EXISTS price_validity_no_overlap",
]

_SQLITE_OVERLAP = """
    SELECT RAISE(ABORT, 'price_validity_no_overlap: validity overlaps another price')
    WHERE EXISTS (
        SELECT 1 FROM inventory_price p
        WHERE p.price_list_id = NEW.price_list_id
          AND p.product_id = NEW.product_id
          AND p.id IS NOT NEW.id
          AND p.valid_from <= COALESCE(NEW.valid_to, '9999-12-31')
          AND NEW.valid_from <= COALESCE(p.valid_to, '9999-12-31')
    );
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER price_validity_no_overlap_insert BEFORE INSERT ON inventory_price "
    f"BEGIN {_SQLITE_OVERLAP} END",
    f"CREATE TRIGGER price_validity_no_overlap_update BEFORE UPDATE ON inventory_price "
    f"BEGIN {_SQLITE_OVERLAP} END",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS price_validity_no_overlap_insert",
    "DROP TRIGGER IF EXISTS price_validity_no_overlap_update",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement, params=None)

    return run


def load_currencies(apps, schema_editor):
    from inventory.currencies import ISO_4217

    Currency = apps.get_model("inventory", "Currency")
    for code, name, minor_units in ISO_4217:
        Currency.objects.update_or_create(
            code=code, defaults={"name": name, "minor_units": minor_units}
        )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
        migrations.RunPython(load_currencies, migrations.RunPython.noop),
    ]
