import pytest


@pytest.fixture(autouse=True)
def _clear_cache(settings, worker_id):
    """Start every catalog test with an empty cache, as the root fixture does; but on Redis
    under pytest-xdist each worker gets a key prefix of its own and clears only its own keys.

    The root fixture's `cache.clear()` is FLUSHDB: it empties the other worker's cache (its
    cached sessions and product pages) in the middle of a test, which made the pinned query
    counts flaky on PostgreSQL + Redis with `-n 2`.
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
