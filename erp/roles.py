"""Head-office roles as groups of Django model permissions.

- ``staff``: master data (catalogue, prices, stores, registers, node keys), read and write.
- ``finance``: the books and close (granted by the books' own migrations), and reads of
  master data.
- ``auditor``: read-only everywhere, history included.

Groups are created and filled by data migrations calling :func:`grant`, so that a fresh
database and an upgraded one hold the same roles. The API and the admin both check these
permissions (see ``erp.api.permissions``).
"""

from __future__ import annotations

from collections.abc import Iterable

STAFF = "staff"
FINANCE = "finance"
AUDITOR = "auditor"
ROLES = (STAFF, FINANCE, AUDITOR)

ALL_ACTIONS = ("add", "change", "delete", "view")


def ensure_permissions(apps, app_labels: Iterable[str]) -> None:
    """Create the permissions of ``app_labels`` now: Django only creates them after migrate."""
    from django.contrib.auth.management import create_permissions

    for label in app_labels:
        app_config = apps.get_app_config(label)
        saved = getattr(app_config, "models_module", None)
        app_config.models_module = saved or True  # migration state has none; Django skips those
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = saved


def grant(
    apps,
    role: str,
    models: Iterable[tuple[str, str]],
    actions: Iterable[str] = ALL_ACTIONS,
    *,
    with_history: bool = True,
) -> None:
    """Give ``role`` the ``actions`` on each ``(app_label, model_name)``.

    With ``with_history`` the role may also view the model's history (django-simple-history
    checks the historical model's own ``view`` permission).
    """
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    models = list(models)
    actions = list(actions)
    ensure_permissions(apps, sorted({label for label, _ in models}))
    group, _ = Group.objects.get_or_create(name=role)
    wanted: list[tuple[str, str]] = []
    for label, model in models:
        wanted += [(label, f"{action}_{model}") for action in actions]
        if with_history:
            wanted.append((label, f"view_historical{model}"))
    for label, codename in wanted:
        permission = Permission.objects.filter(
            content_type__app_label=label, codename=codename
        ).first()
        if permission is None:
            raise LookupError(f"permission {label}.{codename} does not exist")
        group.permissions.add(permission)
