"""Reinstall the feed triggers: a price-list switch tombstones every key of the old list, and a
currency whose decimals change sends its stores' configuration and its lists' prices again.

Before, a store changing price list received tombstones only for the old list's current prices;
a node part-way through a delta kept a price the old list had deleted after its cursor. The
feed rows and the version sequence are kept, so no node's cursor is invalidated.
"""

from django.db import migrations

from sync.feed import triggers


def reinstall(apps, schema_editor):
    triggers.reinstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0004_node_pull_state"),
    ]

    operations = [
        # Going back keeps these triggers: they suit the earlier schema as well.
        migrations.RunPython(reinstall, migrations.RunPython.noop),
    ]
