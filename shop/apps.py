"""The project package as an app: its commands, the admission settings' check, and the hook
that lifts the database statement timeout for migrations."""

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.db import connections
from django.db.models.signals import pre_migrate


def statement_timeout_lift(*, using: str, **kwargs) -> None:
    """Let `migrate` run statements as long as they take (building an index on a big table can
    take minutes); the lock timeout stays, so a migration waiting on a busy table fails fast
    instead of queueing every request behind it. Runs before migrations, on their connection."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")


def admission_settings_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Refuse a SHOP_HOT_RATE_LIMIT that does not read as a rate ("20/10s")."""
    from shop.admission import rate_parse

    try:
        rate_parse(settings.SHOP_HOT_RATE_LIMIT)
    except ValueError as error:
        return [checks.Error(str(error), obj="SHOP_HOT_RATE_LIMIT", id="shop.E001")]
    return []


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self) -> None:
        # The shop app has no models, so it receives every other app's signal instead.
        pre_migrate.connect(statement_timeout_lift, dispatch_uid="shop.statement_timeout_lift")
        checks.register(admission_settings_check)
