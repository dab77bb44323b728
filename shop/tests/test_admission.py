"""Overload without errors: the in-flight bound, the per-client rate, the busy page, and database
"busy" errors turned into 503s (shop/admission.py).

The bound and the rate live in Redis when REDIS_URL is set (CI's second run) and in the process
(and Django's cache) otherwise; the same tests run against whichever is configured, and a few
that need two Redis clients or a real PostgreSQL are skipped without them.
"""

import logging
import os
import re
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg.errors
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from django.urls import resolve, reverse

from catalog.tests.factories import ProductFactory
from orders.models import CartLine
from shop import admission
from shop.apps import admission_settings_check, statement_timeout_lift
from shop.tests import admission_urls
from shop.views import server_error

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
with_test_views = pytest.mark.urls("shop.tests.admission_urls")

HOT = "/test-admission/hot/"
COLD = "/test-admission/cold/"
BLOCKING = "/test-admission/blocking/"
# Nothing listens on port 1: connecting fails at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def _admission_test_redis_url() -> str:
    """Another database on the test run's Redis: the other test processes (pytest -n) flush the
    run's own database before each of their tests, which would wipe the counters mid-test."""
    explicit = os.environ.get("ADMISSION_TEST_REDIS_URL", "")
    url = os.environ.get("REDIS_URL", "")
    if explicit or not url:
        return explicit or url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(database + 8) % 16}"))


@pytest.fixture(autouse=True)
def _warnings_recorded(caplog):
    """Record warnings whatever an earlier test did to the root logger's level (a Celery test
    worker sets it to ERROR)."""
    caplog.set_level(logging.INFO)


@pytest.fixture
def admission_on(settings):
    """Admission control on, with test views as the hot ones and keys of this test's own."""
    settings.REDIS_URL = _admission_test_redis_url()
    settings.SHOP_HOT_VIEWS = ["test-blocking", "test-hot"]
    settings.SHOP_HOT_METHODS = ["GET", "POST"]
    settings.SHOP_HOT_ENTRY_VIEWS = []
    settings.SHOP_HOT_MAX_IN_FLIGHT = 2
    settings.SHOP_HOT_RATE_LIMIT = ""
    settings.SHOP_HOT_LEASE_SECONDS = 30
    settings.SHOP_HOT_RETRY_AFTER = 2
    settings.SHOP_HOT_RETRY_AFTER_MAX = 15
    settings.SHOP_HOT_KEY_PREFIX = f"test-{uuid.uuid4().hex}:hot"
    admission.local_store.reset()
    admission.redis_health.reset()
    yield settings
    admission.local_store.reset()
    admission.redis_health.reset()
    if settings.REDIS_URL.startswith("redis://") and settings.REDIS_URL != UNREACHABLE_REDIS:
        client = admission._redis_client(settings.REDIS_URL)
        for key in client.scan_iter(f"{settings.SHOP_HOT_KEY_PREFIX}*"):
            client.delete(key)


def _store() -> admission.Store:
    return admission.store_for(admission.admission_config())


def _occupy_every_slot(settings) -> None:
    """Take every slot as requests elsewhere (another worker, another server) would."""
    for _ in range(settings.SHOP_HOT_MAX_IN_FLIGHT):
        slot = _store().acquire(
            token=uuid.uuid4().hex, limit=settings.SHOP_HOT_MAX_IN_FLIGHT, lease_seconds=30
        )
        assert slot.acquired


def _retry_after(response) -> int:
    value = int(response["Retry-After"])
    assert 1 <= value <= 15
    return value


# --- The in-flight bound -----------------------------------------------------------------------


@with_test_views
def test_the_request_beyond_the_bound_gets_503_while_n_are_in_flight(admission_on):
    # Given three hot requests running at once, each in its own thread, held inside the view
    admission_on.SHOP_HOT_MAX_IN_FLIGHT = 3
    gate = admission_urls.gate_reset()
    statuses: list[int] = []

    def call() -> None:
        statuses.append(Client().post(BLOCKING, {"n": "1"}).status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        gate.wait_for(3)

        # When a fourth arrives
        refused = Client().post(BLOCKING, {"n": "1"})
        refused_get = Client().get(HOT)
    finally:
        gate.opened.set()
        for thread in threads:
            thread.join(20)

    # Then it is told to come back later, and the three finish normally
    assert refused.status_code == 503
    _retry_after(refused)
    assert refused["Cache-Control"] == "no-store"
    assert "The sale is busy" in refused.content.decode()
    assert refused_get.status_code == 503
    assert statuses == [200, 200, 200]
    # And their slots are free again
    assert Client().get(HOT).status_code == 200


@with_test_views
def test_new_customers_get_only_their_share_of_the_slots_while_checkouts_run(admission_on):
    # Given three slots, of which entries into the funnel (the blocking view stands for "add to
    # cart") may hold two, and two entries already running
    admission_on.SHOP_HOT_MAX_IN_FLIGHT = 3
    admission_on.SHOP_HOT_ENTRY_VIEWS = ["test-blocking"]
    admission_on.SHOP_HOT_ENTRY_MAX_IN_FLIGHT = 2
    gate = admission_urls.gate_reset()
    statuses: list[int] = []

    def call() -> None:
        statuses.append(Client().post(BLOCKING, {"n": "1"}).status_code)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        gate.wait_for(2)

        # When a third new customer and a customer further along arrive
        entry = Client().post(BLOCKING, {"n": "1"})
        further = Client().get(HOT)
    finally:
        gate.opened.set()
        for thread in threads:
            thread.join(20)

    # Then the new customer waits, the one further along is served
    assert (entry.status_code, further.status_code) == (503, 200)
    assert statuses == [200, 200]


@with_test_views
def test_only_the_configured_methods_are_hot(admission_on):
    # Given one slot, taken, and only POSTs hot
    admission_on.SHOP_HOT_MAX_IN_FLIGHT = 1
    admission_on.SHOP_HOT_METHODS = ["POST"]
    gate = admission_urls.gate_reset()
    thread = threading.Thread(target=lambda: Client().post(BLOCKING, {"n": "1"}))
    thread.start()
    try:
        gate.wait_for(1)

        # When another POST and a GET of a hot view arrive
        post = Client().post(HOT, {"n": "1"})
        get = Client().get(HOT)
    finally:
        gate.opened.set()
        thread.join(20)

    # Then only the POST is refused
    assert (post.status_code, get.status_code) == (503, 200)


@with_test_views
def test_a_slot_is_given_back_when_the_view_fails(admission_on, settings):
    # Given one slot, and a hot view that raises
    settings.SHOP_HOT_MAX_IN_FLIGHT = 1
    settings.SHOP_HOT_VIEWS = ["test-hot", "test-broken"]
    client = Client(raise_request_exception=False)

    # When it fails
    assert client.get("/test-admission/broken/").status_code == 500

    # Then the next hot request still gets the slot
    assert client.get(HOT).status_code == 200


def test_a_lease_never_released_expires(admission_on):
    # Given a request that took the only slot and whose worker died (it never releases)
    store = _store()
    assert store.acquire(token="crashed", limit=1, lease_seconds=0.3).acquired
    assert not store.acquire(token="next", limit=1, lease_seconds=0.3).acquired

    # When its lease runs out
    time.sleep(0.5)

    # Then the slot is free again
    assert store.acquire(token="next", limit=1, lease_seconds=0.3).acquired


@with_test_views
def test_a_crashed_requests_slot_comes_back_to_the_site_after_its_lease(admission_on, settings):
    # Given the only slot held by a request that will never release it
    settings.SHOP_HOT_MAX_IN_FLIGHT = 1
    assert _store().acquire(token="crashed", limit=1, lease_seconds=0.3).acquired
    assert Client().get(HOT).status_code == 503

    # When its lease has run out
    time.sleep(0.5)

    # Then hot requests are served again
    assert Client().get(HOT).status_code == 200


@needs_redis
def test_the_bound_is_shared_by_app_servers_through_redis(admission_on, settings):
    # Given two app servers, each with its own Redis connection
    first = admission.RedisStore(
        admission.redis.Redis.from_url(settings.REDIS_URL), settings.SHOP_HOT_KEY_PREFIX
    )
    second = admission.RedisStore(
        admission.redis.Redis.from_url(settings.REDIS_URL), settings.SHOP_HOT_KEY_PREFIX
    )

    # When the first takes the only slot, the second is refused, until the first gives it back
    assert first.acquire(token="a", limit=1, lease_seconds=30).acquired
    refused = second.acquire(token="b", limit=1, lease_seconds=30)
    assert not refused.acquired
    assert refused.in_flight == 1
    assert refused.pressure == 1
    first.release(token="a")
    assert second.acquire(token="b", limit=1, lease_seconds=30).acquired


@with_test_views
def test_a_zero_bound_turns_it_off(admission_on, settings):
    settings.SHOP_HOT_MAX_IN_FLIGHT = 0

    statuses = {Client().get(HOT).status_code for _ in range(5)}

    assert statuses == {200}


# --- The per-client rate -----------------------------------------------------------------------


@with_test_views
def test_one_client_over_its_rate_gets_429_while_another_is_served(admission_on, settings):
    # Given three hot requests per ten seconds per client
    settings.SHOP_HOT_RATE_LIMIT = "3/10s"
    settings.SHOP_HOT_MAX_IN_FLIGHT = 0
    alice, bob = Client(), Client()
    alice.cookies["sessionid"] = "alice-session"
    bob.cookies["sessionid"] = "bob-session"

    # When Alice makes four
    served = [alice.post(HOT).status_code for _ in range(3)]
    refused = alice.post(HOT)

    # Then the fourth is refused with the time left in her window, and Bob is still served
    assert served == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 11
    assert "your place is kept" in refused.content.decode()
    assert bob.post(HOT).status_code == 200


@with_test_views
def test_clients_without_cookies_are_told_apart_by_address(admission_on, settings):
    settings.SHOP_HOT_RATE_LIMIT = "1/10s"
    settings.SHOP_HOT_MAX_IN_FLIGHT = 0

    first = Client(REMOTE_ADDR="203.0.113.1")
    assert first.get(HOT).status_code == 200
    assert first.get(HOT).status_code == 429
    assert Client(REMOTE_ADDR="203.0.113.2").get(HOT).status_code == 200


@pytest.mark.django_db
def test_the_rate_limit_guards_the_real_add_to_cart_and_changes_nothing(admission_on, settings):
    # Given a shopper with a cart (and so a session), the shop's add to cart as a hot view,
    # and a rate of one add per minute from now on
    variant = ProductFactory().variants.get()
    client = Client()
    assert client.post(reverse("orders:cart-add"), {"variant": variant.pk}).status_code == 302
    settings.SHOP_HOT_VIEWS = ["orders:cart-add"]
    settings.SHOP_HOT_RATE_LIMIT = "1/60s"

    # When the shopper adds twice more in a row
    first = client.post(reverse("orders:cart-add"), {"variant": variant.pk, "quantity": 1})
    second = client.post(reverse("orders:cart-add"), {"variant": variant.pk, "quantity": 1})

    # Then the first is added, the second is refused before the view ran
    assert first.status_code == 302
    assert second.status_code == 429
    assert list(CartLine.objects.values_list("quantity", flat=True)) == [2]


# --- The busy page -----------------------------------------------------------------------------


@with_test_views
@pytest.mark.django_db
def test_a_refused_post_gets_a_page_that_posts_every_field_again(
    admission_on, settings, django_assert_num_queries
):
    # Given every slot taken, and a signed-in looking visitor (a session cookie)
    _occupy_every_slot(settings)
    client = Client()
    client.cookies["sessionid"] = "a-session-that-is-never-read"
    fields = {
        "csrfmiddlewaretoken": "the-csrf-token",
        "size": ["S", "M"],
        "note": '<script>alert("x")</script>',
        "quantity": "2",
    }

    # When a form is posted to a hot view: no database query, not even for the session
    with django_assert_num_queries(0):
        response = client.post(f"{HOT}?next=/cart/", fields)

    # Then the busy page carries every field back to the same URL
    assert response.status_code == 503
    seconds = _retry_after(response)
    content = response.content.decode()
    assert '<form id="busy-retry" method="post" action="/test-admission/hot/?next=/cart/">' in (
        content
    )
    hidden = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', content)
    assert hidden == [
        ("csrfmiddlewaretoken", "the-csrf-token"),
        ("size", "S"),
        ("size", "M"),
        ("note", "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        ("quantity", "2"),
    ]
    assert '<button type="submit">Try again now</button>' in content
    # re-submitted by itself after the countdown
    assert f'Retrying in <span id="busy-countdown">{seconds}</span> s' in content
    assert f"var left = {seconds};" in content
    assert "retry.submit()" in content
    # a POST is never turned into a GET by a refresh
    assert 'http-equiv="refresh"' not in content
    # in the site's layout, without anything that needs the session or the database
    assert f"<title>Busy, retrying shortly | {settings.SHOP_NAME}</title>" in content
    assert 'id="site-search"' in content
    assert '<meta name="robots" content="noindex">' in content
    assert "Sign in" not in content


@with_test_views
@pytest.mark.django_db
def test_a_refused_get_gets_a_page_that_reloads_itself(
    admission_on, settings, django_assert_num_queries
):
    _occupy_every_slot(settings)

    with django_assert_num_queries(0):
        response = Client().get(f"{HOT}?page=2")

    assert response.status_code == 503
    seconds = _retry_after(response)
    content = response.content.decode()
    assert f'<noscript><meta http-equiv="refresh" content="{seconds}"></noscript>' in content
    assert "window.location.reload()" in content
    assert '<a class="button" id="busy-retry" href="/test-admission/hot/?page=2">' in content
    assert '<form id="busy-retry"' not in content


@with_test_views
def test_a_client_asking_for_json_gets_json(admission_on, settings):
    _occupy_every_slot(settings)

    response = Client().post(HOT, {"a": "1"}, headers={"accept": "application/json"})

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    seconds = _retry_after(response)
    assert response.json() == {
        "error": "busy",
        "message": "The sale is busy — your place is kept.",
        "retry_after": seconds,
    }


@with_test_views
def test_a_rate_limited_json_client_is_told_so(admission_on, settings):
    settings.SHOP_HOT_RATE_LIMIT = "1/10s"
    client = Client(headers={"accept": "application/json"})
    client.get(HOT)

    response = client.get(HOT)

    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"


@with_test_views
def test_a_browser_accepting_anything_gets_the_page(admission_on, settings):
    _occupy_every_slot(settings)

    response = Client().get(HOT, headers={"accept": "text/html,*/*;q=0.8"})

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")


# --- What is never limited ---------------------------------------------------------------------


@with_test_views
def test_other_views_are_never_limited(admission_on, settings):
    # Given every slot taken and a rate of one request a minute
    _occupy_every_slot(settings)
    settings.SHOP_HOT_RATE_LIMIT = "1/60s"
    client = Client()

    # When a client keeps asking for other pages
    statuses = [client.get(COLD).status_code for _ in range(5)]
    robots = [client.get("/robots.txt").status_code for _ in range(3)]

    # Then they are all served, while the hot view is refused
    assert statuses == [200] * 5
    assert robots == [200] * 3
    assert client.get(HOT).status_code in {429, 503}


def test_the_hot_views_are_the_shops_checkout_path(settings):
    urls = [
        reverse("orders:cart-add"),
        reverse("orders:checkout"),
        reverse("orders:checkout-place"),
        reverse("payments:start", kwargs={"number": "N1", "token": "t"}),
    ]

    # (their writes: the pages are reads, reachable only with a cart an admitted POST made)
    assert sorted(resolve(url).view_name for url in urls) == sorted(settings.SHOP_HOT_VIEWS)
    assert settings.SHOP_HOT_METHODS == ["POST"]
    assert resolve(reverse("orders:cart")).view_name not in settings.SHOP_HOT_VIEWS
    assert resolve(reverse("orders:checkout-review")).view_name not in settings.SHOP_HOT_VIEWS


def test_the_middleware_refuses_before_the_session_and_csrf(settings):
    order = settings.MIDDLEWARE
    position = order.index("shop.admission.AdmissionMiddleware")

    assert order.index("django.middleware.security.SecurityMiddleware") < position
    assert order.index("whitenoise.middleware.WhiteNoiseMiddleware") < position
    assert position < order.index("django.contrib.sessions.middleware.SessionMiddleware")
    assert position < order.index("django.middleware.csrf.CsrfViewMiddleware")


# --- Failing open --------------------------------------------------------------------------------


@with_test_views
def test_an_unreachable_redis_lets_requests_through_and_warns_once(admission_on, settings, caplog):
    # Given a Redis nobody answers on, and a tight bound and rate
    settings.REDIS_URL = UNREACHABLE_REDIS
    settings.SHOP_HOT_MAX_IN_FLIGHT = 1
    settings.SHOP_HOT_RATE_LIMIT = "1/60s"

    # When hot requests arrive
    statuses = [Client().get(HOT).status_code for _ in range(3)]

    # Then each is served, and the outage is reported once (then Redis is left alone a moment)
    assert statuses == [200, 200, 200]
    warnings = [r for r in caplog.records if "cannot reach Redis" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelname == "WARNING"


# --- Database busy -------------------------------------------------------------------------------


@with_test_views
def test_a_locked_database_in_any_view_gets_the_busy_page(admission_on, caplog):
    response = Client().post("/test-admission/locked/", {"quantity": "1"})

    assert response.status_code == 503
    _retry_after(response)
    content = response.content.decode()
    assert "The sale is busy" in content
    assert '<input type="hidden" name="quantity" value="1">' in content
    assert any("Database busy (database locked)" in r.getMessage() for r in caplog.records)


@with_test_views
def test_other_database_errors_stay_server_errors(admission_on):
    response = Client(raise_request_exception=False).get("/test-admission/broken/")

    assert response.status_code == 500


@pytest.mark.postgres
@with_test_views
@pytest.mark.django_db(transaction=True)
def test_a_statement_timeout_becomes_the_busy_page(admission_on, settings, caplog):
    # Given connections opened with the configured timeouts, made tiny
    database = connection.settings_dict
    assert "statement_timeout=" in database["OPTIONS"]["options"]
    original = database["OPTIONS"]
    connection.close()
    database["OPTIONS"] = {**original, "options": "-c statement_timeout=100"}
    try:
        # When a view runs a statement longer than that
        started = time.monotonic()
        response = Client().get("/test-admission/pg-sleep/")
        elapsed = time.monotonic() - started
    finally:
        connection.close()
        database["OPTIONS"] = original

    # Then PostgreSQL cancels it and the customer gets the busy page, not a 500
    assert response.status_code == 503
    _retry_after(response)
    assert "The sale is busy" in response.content.decode()
    assert elapsed < 1.5
    assert any("Database busy (statement timeout)" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_new_connections_carry_the_configured_timeouts(settings):
    connection.close()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting FROM pg_settings"
            " WHERE name IN ('statement_timeout', 'lock_timeout') ORDER BY name"
        )
        timeouts = dict(cursor.fetchall())

    assert timeouts == {
        "lock_timeout": str(settings.DATABASE_LOCK_TIMEOUT_MS),
        "statement_timeout": str(settings.DATABASE_STATEMENT_TIMEOUT_MS),
    }


@pytest.mark.postgres
@pytest.mark.django_db
def test_migrate_lifts_the_statement_timeout_for_itself():
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 5000")

    statement_timeout_lift(using="default")

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        assert cursor.fetchone() == ("0",)


def _django_error(message: str, cause: Exception | None = None) -> OperationalError:
    error = OperationalError(message)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (_django_error("canceled", psycopg.errors.QueryCanceled()), "statement timeout"),
        (_django_error("lock", psycopg.errors.LockNotAvailable()), "lock timeout"),
        (_django_error("many", psycopg.errors.TooManyConnections()), "too many connections"),
        (_django_error("deadlock", psycopg.errors.DeadlockDetected()), "deadlock"),
        (_django_error("FATAL:  sorry, too many clients already"), "too many connections"),
        (_django_error("database is locked"), "database locked"),
        (_django_error("no such table: x"), None),
        (_django_error("server closed the connection unexpectedly"), None),
        (ValueError("database is locked"), None),
        (None, None),
    ],
)
def test_which_database_errors_mean_busy(error, reason):
    assert admission.db_busy_reason(error) == reason


def test_a_busy_database_outside_any_view_still_gets_the_busy_page(settings):
    # Given an error in a middleware (after process_exception had its chance)
    request = RequestFactory().get("/cart/")
    try:
        raise _django_error("lock", psycopg.errors.LockNotAvailable())
    except OperationalError:
        # When Django asks the 500 handler for a page
        response = server_error(request)

    # Then it is the busy page
    assert response.status_code == 503
    assert "The sale is busy" in response.content.decode()


def test_any_other_error_still_gets_the_500_page():
    request = RequestFactory().get("/cart/")
    try:
        raise RuntimeError("bug")
    except RuntimeError:
        response = server_error(request)

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_the_site_uses_the_busy_aware_500_handler():
    from shop import urls

    assert urls.handler500 == "shop.views.server_error"


# --- Pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("20/10s", admission.Rate(20, 10)),
        ("20/s", admission.Rate(20, 1)),
        (" 5 / 2m ", admission.Rate(5, 120)),
        ("500/h", admission.Rate(500, 3600)),
        ("7/3", admission.Rate(7, 3)),
        ("", None),
        ("0/10s", None),
    ],
)
def test_rates_are_read_from_text(text, rate):
    assert admission.rate_parse(text) == rate


@pytest.mark.parametrize("text", ["twenty", "20", "20/0s", "20/10d", "-1/10s"])
def test_bad_rates_are_refused(text):
    with pytest.raises(ValueError, match="A rate"):
        admission.rate_parse(text)


def test_retry_after_spreads_and_grows_with_how_busy():
    calm = {admission.retry_after_busy(base=2, maximum=15, pressure=0, limit=8) for _ in range(300)}
    busy = {
        admission.retry_after_busy(base=2, maximum=15, pressure=80, limit=8) for _ in range(300)
    }

    assert calm == {1, 2}
    assert min(busy) >= 8 and max(busy) == 15 and len(busy) > 5
    assert admission.retry_after_rate(0.0) in {1}
    assert admission.retry_after_rate(4.2) in {5, 6}


def test_clients_are_named_by_their_session_cookie_then_csrf_cookie_then_address():
    factory = RequestFactory()
    with_session = factory.get("/", REMOTE_ADDR="198.51.100.7")
    with_session.COOKIES = {"sessionid": "s1", "csrftoken": "c1"}
    with_csrf = factory.get("/", REMOTE_ADDR="198.51.100.7")
    with_csrf.COOKIES = {"csrftoken": "c1"}
    bare = factory.get("/", REMOTE_ADDR="198.51.100.7")

    keys = [admission.client_key(r) for r in (with_session, with_csrf, bare)]

    assert keys[0].startswith("c-") and "s1" not in keys[0]
    assert keys[1].startswith("c-") and keys[1] != keys[0]
    assert keys[2] == "ip-198.51.100.7"


def test_behind_proxies_the_client_is_the_address_the_outermost_proxy_saw():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.0.0.1"
    )

    assert admission.client_ip(request) == "10.0.0.2"
    assert admission.client_ip(request, trusted_proxy_count=1) == "10.0.0.1"
    assert admission.client_ip(request, trusted_proxy_count=2) == "203.0.113.9"
    # a header shorter than the proxies we trust was not written by them
    assert admission.client_ip(request, trusted_proxy_count=5) == "10.0.0.2"


def test_a_mistyped_rate_is_reported_by_the_checks_and_stops_the_middleware(settings):
    settings.SHOP_HOT_RATE_LIMIT = "20 per 10s"

    errors = admission_settings_check(None)

    assert [error.id for error in errors] == ["shop.E001"]
    with pytest.raises(ImproperlyConfigured, match="SHOP_HOT_RATE_LIMIT"):
        admission.AdmissionMiddleware(lambda request: None)
