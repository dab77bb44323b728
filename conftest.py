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
def _clear_cache(settings, worker_id):
    """Start every test with an empty cache (Redis in CI, local memory otherwise).

    On Redis under pytest-xdist each worker gets a key prefix of its own and deletes only its
    own keys: `cache.clear()` is FLUSHDB, which would empty the other worker's cache (its cached
    sessions and pages) in the middle of a test and make pinned query counts flaky.
    """
    from django.core.cache import cache

    default = settings.CACHES["default"]
    if "redis" not in default["BACKEND"].lower() or worker_id == "master":
        cache.clear()
        yield
        return
    prefix = f"{default.get('KEY_PREFIX', '')}-test-{worker_id}"
    settings.CACHES = {**settings.CACHES, "default": {**default, "KEY_PREFIX": prefix}}
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)
    yield


@pytest.fixture(autouse=True)
def _admission_control_off(settings):
    """Keep flash-sale admission control (shop/admission.py) out of other tests' way: a test
    posting to the cart more than 20 times, or running checkouts in threads, is not a surge.
    shop/tests/test_admission.py switches it on."""
    settings.SHOP_HOT_MAX_IN_FLIGHT = 0
    settings.SHOP_HOT_RATE_LIMIT = ""
