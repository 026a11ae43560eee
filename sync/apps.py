from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Store sync"

    def ready(self) -> None:
        from inventory.hooks import on_products_created
        from sync.api import schema  # noqa: F401 - registers the OpenAPI auth extension

        on_products_created(_release_events_waiting_for_skus)


def _release_events_waiting_for_skus(skus: list[str]) -> None:
    from sync.tasks import held_events_release_for_skus

    held_events_release_for_skus.delay(skus)
