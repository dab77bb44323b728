"""Test scaffolding shared by every app."""

import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path):
    """Keep uploads out of var/, serve static files without a collected manifest, and hash
    passwords with a fast hasher (the real one costs about half a second per password)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" in engine:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start every test with an empty cache (Redis in CI, local memory otherwise)."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _admission_control_off(settings):
    """Keep flash-sale admission control (shop/admission.py) out of other tests' way: a test
    posting to the cart more than 20 times, or running checkouts in threads, is not a surge.
    shop/tests/test_admission.py switches it on."""
    settings.SHOP_HOT_MAX_IN_FLIGHT = 0
    settings.SHOP_HOT_RATE_LIMIT = ""
