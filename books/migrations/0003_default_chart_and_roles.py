"""The default chart of accounts, and the roles' rights on the books.

- finance: the chart and periods (read and write), the journal (read, and add: reversals),
  jobs (add: start a close) and close reports.
- auditor: read everything, history included.
- staff: read the chart and periods.
"""

from django.db import migrations

from erp.roles import AUDITOR, FINANCE, STAFF, grant

CHART = [
    ("1000", "Cash in stores", "asset", "cash"),
    ("1050", "Cash in transit", "asset", "cash_in_transit"),
    ("1100", "Card clearing", "asset", "card_clearing"),
    ("1190", "Other tenders clearing", "asset", "other_tender"),
    ("1300", "Inventory", "asset", "inventory"),
    ("1310", "Stock in transit", "asset", "stock_in_transit"),
    ("2100", "Goods received not invoiced", "liability", "goods_received"),
    ("2200", "Voucher liability", "liability", "voucher"),
    ("2300", "Output tax", "liability", "output_tax"),
    ("4000", "Sales revenue", "revenue", "revenue"),
    ("4100", "Sales returns", "revenue", "returns"),
    ("5000", "Cost of goods sold", "expense", "cogs"),
    ("5100", "Shrinkage", "expense", "shrinkage"),
    ("5200", "Cash over and short", "expense", "cash_over_short"),
    ("5300", "Rounding", "expense", "rounding"),
    ("9999", "Suspense", "asset", "suspense"),
]

HISTORY_MODELS = [("books", "account"), ("books", "fiscalperiod")]
JOURNAL = [
    ("books", "journalentry"),
    ("books", "journalline"),
    ("books", "job"),
    ("books", "closereport"),
    ("books", "storedayposting"),
]


def load_chart(apps, schema_editor):
    Account = apps.get_model("books", "Account")
    for code, name, kind, role in CHART:
        Account.objects.get_or_create(
            code=code, defaults={"name": name, "kind": kind, "role": role}
        )


def grant_books_rights(apps, schema_editor):
    grant(apps, FINANCE, HISTORY_MODELS, ["add", "change", "view"])
    grant(apps, FINANCE, JOURNAL, ["view"], with_history=False)
    # closing a period (a job) and posting reversals
    grant(apps, FINANCE, [("books", "job"), ("books", "journalentry")], ["add"], with_history=False)
    grant(apps, AUDITOR, HISTORY_MODELS, ["view"])
    grant(apps, AUDITOR, JOURNAL, ["view"], with_history=False)
    grant(apps, STAFF, HISTORY_MODELS, ["view"], with_history=False)


def load(apps, schema_editor):
    load_chart(apps, schema_editor)
    grant_books_rights(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("books", "0002_journal_triggers"),
        ("erp", "0001_roles"),
    ]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
