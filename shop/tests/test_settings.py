"""The settings module, loaded in a fresh Python process per case.

Django reads settings once per process, so each case starts a child interpreter with a clean
environment, lets it load `shop.settings`, and reads back the values it printed as JSON.
"""

import json
import os
import stat
import subprocess
import sys

import pytest
from django.conf import settings as test_settings

BASE_DIR = test_settings.BASE_DIR

# Every variable the settings module reads, so the parent's environment (CI sets some of them)
# never leaks into a case.
SETTINGS_VARIABLES = {
    "ACCOUNT_EMAIL_VERIFICATION",
    "ADMIN_URL",
    "ALLOWED_HOSTS",
    "CACHE_KEY_PREFIX",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_CONN_MAX_AGE",
    "DATABASE_LOCK_TIMEOUT_MS",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "DATABASE_URL",
    "DEFAULT_FROM_EMAIL",
    "DJANGO_DEBUG",
    "DJANGO_ENV",
    "DJANGO_SETTINGS_MODULE",
    "EMAIL_URL",
    "LOG_LEVEL",
    "MEDIA_ROOT",
    "REDIS_URL",
    "SECRET_KEY",
    "SERVE_MEDIA",
    "TIME_ZONE",
}
SETTINGS_PREFIXES = ("SECURE_", "SHOP_", "DJANGO_", "PAYMENTS_", "STRIPE_")

GOOD_SECRET_KEY = "k" * 64

# The child prints the settings, and the mailer the shop would send with (built the way Django
# builds it, so the test holds whether settings use MAILERS or the older EMAIL_* settings).
PRINT_SETTINGS = """
import json
from django.conf import settings
from django.core.mail import mailers

names = [
    "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY", "DATABASES", "CACHES", "SESSION_ENGINE",
    "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER",
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER",
    "SERVE_MEDIA", "MEDIA_ROOT", "IS_PRODUCTION", "MIDDLEWARE",
    "SHOP_HOT_VIEWS", "SHOP_HOT_METHODS", "SHOP_HOT_ENTRY_VIEWS", "SHOP_HOT_ENTRY_MAX_IN_FLIGHT",
    "SHOP_HOT_MAX_IN_FLIGHT", "SHOP_HOT_LEASE_SECONDS", "SHOP_HOT_RATE_LIMIT",
    "SHOP_HOT_RETRY_AFTER", "SHOP_HOT_RETRY_AFTER_MAX", "SHOP_HOT_KEY_PREFIX",
    "SHOP_TRUSTED_PROXY_COUNT",
]
values = {name: getattr(settings, name, None) for name in names}
mailer = mailers.default
values["mailer"] = {
    "backend": f"{type(mailer).__module__}.{type(mailer).__qualname__}",
    **{
        attribute: getattr(mailer, attribute)
        for attribute in ("file_path", "host", "port", "username", "use_tls", "use_ssl")
        if hasattr(mailer, attribute)
    },
}
print(json.dumps(values, default=str))
"""


def _clean_env(tmp_path, **variables: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in SETTINGS_VARIABLES and not name.startswith(SETTINGS_PREFIXES)
    }
    env["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    env["SHOP_VAR_DIR"] = str(tmp_path / "var")
    env.update(variables)
    return env


def _run(tmp_path, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        env=_clean_env(tmp_path, **variables),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _load(tmp_path, **variables: str) -> dict:
    result = _run(tmp_path, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _refused(tmp_path, **variables: str) -> str:
    result = _run(tmp_path, **variables)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    return result.stderr


# --- Production checks ---------------------------------------------------------------------

PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": GOOD_SECRET_KEY,
    "ALLOWED_HOSTS": "shop.example.com",
    "EMAIL_URL": "smtp+tls://mailer:mail-password@mail.example.com:587",
}


def _production(**changes: str | None) -> dict[str, str]:
    """Return good production variables with some changed (None removes one)."""
    variables = {**PRODUCTION, **changes}
    return {name: value for name, value in variables.items() if value is not None}


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    stderr = _refused(tmp_path, **_production(SECRET_KEY=None))

    assert "Refusing to start with DJANGO_ENV=production: SECRET_KEY is not set." in stderr, stderr
    # No key was generated in its place.
    assert not (tmp_path / "var" / "secret_key").exists()


def test_production_refuses_a_secret_key_shorter_than_50_characters(tmp_path):
    stderr = _refused(tmp_path, **_production(SECRET_KEY="s" * 49))

    assert (
        "Refusing to start with DJANGO_ENV=production: "
        "SECRET_KEY is shorter than 50 characters." in stderr
    ), stderr


def test_production_accepts_a_secret_key_of_exactly_50_characters(tmp_path):
    loaded = _load(tmp_path, **_production(SECRET_KEY="s" * 50))

    assert loaded["SECRET_KEY"] == "s" * 50


def test_production_refuses_debug(tmp_path):
    stderr = _refused(tmp_path, **_production(DJANGO_DEBUG="1"))

    assert "Refusing to start with DJANGO_ENV=production: DJANGO_DEBUG is on." in stderr, stderr


@pytest.mark.parametrize("allowed_hosts", [None, "", ","])
def test_production_refuses_empty_allowed_hosts(tmp_path, allowed_hosts):
    stderr = _refused(tmp_path, **_production(ALLOWED_HOSTS=allowed_hosts))

    assert "Refusing to start with DJANGO_ENV=production: ALLOWED_HOSTS is empty." in stderr, stderr


def test_production_refuses_to_start_without_a_way_to_send_email(tmp_path):
    stderr = _refused(tmp_path, **_production(EMAIL_URL=None))

    assert (
        "Refusing to start with DJANGO_ENV=production: "
        "EMAIL_URL is not set (customers would get no email)." in stderr
    ), stderr


def test_production_lists_every_problem_at_once(tmp_path):
    stderr = _refused(tmp_path, DJANGO_ENV="production", DJANGO_DEBUG="true")

    assert (
        "Refusing to start with DJANGO_ENV=production: SECRET_KEY is not set; "
        "DJANGO_DEBUG is on; ALLOWED_HOSTS is empty; "
        "EMAIL_URL is not set (customers would get no email)." in stderr
    ), stderr


def test_production_with_good_values_loads_hardened(tmp_path):
    loaded = _load(tmp_path, **_production(ALLOWED_HOSTS="shop.example.com,www.shop.example.com"))

    assert loaded["IS_PRODUCTION"] is True
    assert loaded["DEBUG"] is False
    assert loaded["SECRET_KEY"] == GOOD_SECRET_KEY
    assert loaded["ALLOWED_HOSTS"] == ["shop.example.com", "www.shop.example.com"]
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_HSTS_SECONDS"] == 31536000
    assert loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert loaded["SECURE_HSTS_PRELOAD"] is True
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert loaded["SERVE_MEDIA"] is False
    assert loaded["mailer"] == {
        "backend": "django.core.mail.backends.smtp.EmailBackend",
        "host": "mail.example.com",
        "port": 587,
        "username": "mailer",
        "use_tls": True,
        "use_ssl": False,
    }
    # Production never writes a generated key to disk.
    assert not (tmp_path / "var" / "secret_key").exists()


def test_local_does_not_set_the_secure_cookie_flags(tmp_path):
    loaded = _load(tmp_path)

    assert loaded["IS_PRODUCTION"] is False
    assert loaded["SESSION_COOKIE_SECURE"] is False
    assert loaded["CSRF_COOKIE_SECURE"] is False
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SECURE_HSTS_SECONDS"] == 0
    assert loaded["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert loaded["SERVE_MEDIA"] is True


@pytest.mark.parametrize("value", ["staging", "prod", "Production", ""])
def test_unknown_django_env_is_refused(tmp_path, value):
    stderr = _refused(tmp_path, DJANGO_ENV=value)

    assert f"DJANGO_ENV must be 'local' or 'production', not {value!r}." in stderr, stderr


# --- Local secret key ----------------------------------------------------------------------


def test_local_secret_key_is_generated_once_and_reused(tmp_path):
    key_file = tmp_path / "var" / "secret_key"
    assert not key_file.exists()

    first = _load(tmp_path)

    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["SECRET_KEY"] == key_file.read_text().strip()
    assert len(first["SECRET_KEY"]) >= 50

    second = _load(tmp_path)

    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_separate_var_dirs_get_different_generated_keys(tmp_path):
    first = _load(tmp_path / "one")
    second = _load(tmp_path / "two")

    assert first["SECRET_KEY"] != second["SECRET_KEY"]


def test_local_secret_key_from_the_environment_is_used_and_nothing_is_written(tmp_path):
    loaded = _load(tmp_path, SECRET_KEY="a-key-from-the-environment")

    assert loaded["SECRET_KEY"] == "a-key-from-the-environment"
    assert not (tmp_path / "var" / "secret_key").exists()


# --- Embedded defaults and the PostgreSQL/Redis switch -------------------------------------


def test_embedded_defaults_keep_everything_under_the_var_dir(tmp_path):
    var_dir = tmp_path / "var"

    loaded = _load(tmp_path)

    assert var_dir.is_dir()
    database = loaded["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(var_dir / "db.sqlite3")
    assert database["OPTIONS"] == {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    assert loaded["CACHES"] == {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    assert loaded["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"
    assert loaded["CELERY_BROKER_URL"] == "memory://"
    assert loaded["CELERY_TASK_ALWAYS_EAGER"] is True
    assert loaded["mailer"] == {
        "backend": "django.core.mail.backends.filebased.EmailBackend",
        "file_path": str(var_dir / "mail"),
    }
    assert loaded["MEDIA_ROOT"] == str(var_dir / "media")


def test_database_url_and_redis_url_switch_to_postgresql_and_redis(tmp_path):
    loaded = _load(tmp_path, DATABASE_URL="postgres://u:p@h:5432/d", REDIS_URL="redis://h:6379/2")

    database = loaded["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == ("d", "u", "p")
    assert (database["HOST"], database["PORT"]) == ("h", 5432)
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True
    assert "OPTIONS" not in database or "transaction_mode" not in database["OPTIONS"]
    assert loaded["CACHES"] == {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://h:6379/2",
            "KEY_PREFIX": "shop",
        }
    }
    assert loaded["SESSION_ENGINE"] == "django.contrib.sessions.backends.cached_db"
    assert loaded["CELERY_BROKER_URL"] == "redis://h:6379/2"
    assert loaded["CELERY_TASK_ALWAYS_EAGER"] is False
    # No SQLite file is created when PostgreSQL is configured.
    assert not (tmp_path / "var" / "db.sqlite3").exists()


def test_redis_alone_keeps_sqlite_but_uses_the_shared_cache_and_broker(tmp_path):
    loaded = _load(tmp_path, REDIS_URL="redis://h:6379/3")

    assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["CACHES"]["default"]["LOCATION"] == "redis://h:6379/3"
    assert loaded["SESSION_ENGINE"] == "django.contrib.sessions.backends.cached_db"
    assert loaded["CELERY_BROKER_URL"] == "redis://h:6379/3"
    assert loaded["CELERY_TASK_ALWAYS_EAGER"] is False


def test_production_refuses_the_test_payment_provider(tmp_path):
    stderr = _refused(tmp_path, **_production(PAYMENTS_TEST_PROVIDER="true"))

    assert (
        "Refusing to start with DJANGO_ENV=production: "
        "PAYMENTS_TEST_PROVIDER is on (anyone could mark orders paid)." in stderr
    ), stderr


# --- Database timeouts and admission control -----------------------------------------------


def test_postgresql_connections_get_a_statement_and_a_lock_timeout(tmp_path):
    loaded = _load(tmp_path, DATABASE_URL="postgres://u:p@h:5432/d")

    options = loaded["DATABASES"]["default"]["OPTIONS"]
    assert options["options"] == "-c statement_timeout=5000 -c lock_timeout=3000"


def test_database_timeouts_come_from_the_environment_and_zero_turns_one_off(tmp_path):
    loaded = _load(
        tmp_path,
        DATABASE_URL="postgres://u:p@h:5432/d?sslmode=require",
        DATABASE_STATEMENT_TIMEOUT_MS="0",
        DATABASE_LOCK_TIMEOUT_MS="1500",
    )

    options = loaded["DATABASES"]["default"]["OPTIONS"]
    assert options == {"sslmode": "require", "options": "-c lock_timeout=1500"}


def test_both_database_timeouts_off_leave_the_connection_options_alone(tmp_path):
    loaded = _load(
        tmp_path,
        DATABASE_URL="postgres://u:p@h:5432/d",
        DATABASE_STATEMENT_TIMEOUT_MS="0",
        DATABASE_LOCK_TIMEOUT_MS="0",
    )

    assert "options" not in loaded["DATABASES"]["default"].get("OPTIONS", {})


def test_sqlite_gets_no_postgresql_timeouts(tmp_path):
    loaded = _load(tmp_path)

    assert "options" not in loaded["DATABASES"]["default"]["OPTIONS"]


def test_admission_control_defaults(tmp_path):
    loaded = _load(tmp_path)

    assert loaded["SHOP_HOT_VIEWS"] == [
        "orders:cart-add",
        "orders:checkout",
        "orders:checkout-place",
        "payments:start",
    ]
    assert loaded["SHOP_HOT_METHODS"] == ["POST"]
    assert loaded["SHOP_HOT_ENTRY_VIEWS"] == ["orders:cart-add"]
    assert loaded["SHOP_HOT_ENTRY_MAX_IN_FLIGHT"] == 1
    assert loaded["SHOP_HOT_MAX_IN_FLIGHT"] == 3
    assert loaded["SHOP_HOT_LEASE_SECONDS"] == 30
    assert loaded["SHOP_HOT_RATE_LIMIT"] == "20/10s"
    assert (loaded["SHOP_HOT_RETRY_AFTER"], loaded["SHOP_HOT_RETRY_AFTER_MAX"]) == (2, 5)
    assert loaded["SHOP_HOT_KEY_PREFIX"] == "shop:hot"
    assert loaded["SHOP_TRUSTED_PROXY_COUNT"] == 0
    middleware = loaded["MIDDLEWARE"]
    assert middleware.index("shop.admission.AdmissionMiddleware") == (
        middleware.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1
    )


def test_admission_control_from_the_environment(tmp_path):
    loaded = _load(
        tmp_path,
        SHOP_HOT_VIEWS="orders:checkout-place,payments:start",
        SHOP_HOT_MAX_IN_FLIGHT="0",
        SHOP_HOT_LEASE_SECONDS="12",
        SHOP_HOT_RATE_LIMIT="5/1m",
        SHOP_HOT_RETRY_AFTER="3",
        SHOP_HOT_RETRY_AFTER_MAX="60",
        SHOP_TRUSTED_PROXY_COUNT="1",
        CACHE_KEY_PREFIX="shop-two",
    )

    assert loaded["SHOP_HOT_VIEWS"] == ["orders:checkout-place", "payments:start"]
    assert loaded["SHOP_HOT_MAX_IN_FLIGHT"] == 0
    assert loaded["SHOP_HOT_LEASE_SECONDS"] == 12
    assert loaded["SHOP_HOT_RATE_LIMIT"] == "5/1m"
    assert (loaded["SHOP_HOT_RETRY_AFTER"], loaded["SHOP_HOT_RETRY_AFTER_MAX"]) == (3, 60)
    assert loaded["SHOP_HOT_KEY_PREFIX"] == "shop-two:hot"
    assert loaded["SHOP_TRUSTED_PROXY_COUNT"] == 1
