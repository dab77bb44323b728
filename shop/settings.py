"""The shop's one settings module, read from the environment.

With nothing set, the shop runs on embedded defaults: SQLite under var/, a local-memory cache,
Celery tasks run eagerly in the web process, and emails written to files under var/mail/.
DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis. DJANGO_ENV=production turns on the
production checks and the HTTPS hardening. README.md lists every variable.
"""

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Environment -------------------------------------------------------------------------------

DJANGO_ENV = env.str("DJANGO_ENV", default="local")
if DJANGO_ENV not in {"local", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be 'local' or 'production', not {DJANGO_ENV!r}.")
IS_PRODUCTION = DJANGO_ENV == "production"

# Local state (SQLite database, generated secret, uploaded media, mail files, collected static).
VAR_DIR = Path(env.str("SHOP_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DJANGO_DEBUG", default=False)


def _local_secret_key() -> str:
    """Return the secret key generated once into var/ for local use (never in production)."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        # Write a private temporary file, then link it into place: of two processes starting at
        # once, exactly one link succeeds and both read the same complete key.
        temporary = VAR_DIR / f".secret_key.{os.getpid()}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="")
if IS_PRODUCTION:
    problems = []
    if not SECRET_KEY:
        problems.append("SECRET_KEY is not set")
    elif len(SECRET_KEY) < 50:
        problems.append("SECRET_KEY is shorter than 50 characters")
    if DEBUG:
        problems.append("DJANGO_DEBUG is on")
    if not [host for host in env.list("ALLOWED_HOSTS", default=[]) if host.strip()]:
        problems.append("ALLOWED_HOSTS is empty")
    if not env.str("EMAIL_URL", default=""):
        problems.append("EMAIL_URL is not set (customers would get no email)")
    if env.bool("PAYMENTS_TEST_PROVIDER", default=False):
        problems.append("PAYMENTS_TEST_PROVIDER is on (anyone could mark orders paid)")
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with DJANGO_ENV=production: " + "; ".join(problems) + "."
        )
elif not SECRET_KEY:
    SECRET_KEY = _local_secret_key()

ALLOWED_HOSTS = [
    host.strip()
    for host in env.list(
        "ALLOWED_HOSTS", default=[] if IS_PRODUCTION else ["127.0.0.1", "localhost", "[::1]"]
    )
    if host.strip()
]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications ------------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "django.contrib.postgres",
    "rest_framework",
    "allauth",
    "allauth.account",
    "shop",
    "accounts",
    "catalog",
    "orders",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Refuses hot requests beyond the bound before the session, CSRF or the view run (and turns
    # "database busy" errors into the same 503 page): shop/admission.py.
    "shop.admission.AdmissionMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "shop.urls"
ADMIN_URL = env.str("ADMIN_URL", default="admin/")
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.site",
                "catalog.context_processors.catalog",
                "orders.context_processors.cart",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the single writer; IMMEDIATE takes the write lock up front so
    # concurrent writers queue (for `timeout` seconds) instead of failing with "database locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# On PostgreSQL no statement runs longer, and none waits for a lock longer, than these (0 turns
# one off): under a surge a slow query fails fast into the 503 busy page instead of holding a
# connection and a worker thread. `migrate` lifts the statement timeout for itself
# (shop/apps.py). Behind PgBouncer, which refuses startup options, set them with ALTER ROLE.
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=5000)
DATABASE_LOCK_TIMEOUT_MS = env.int("DATABASE_LOCK_TIMEOUT_MS", default=3000)


def _postgres_timeouts(*, statement_ms: int, lock_ms: int) -> str:
    """Return libpq `options` setting the server-side timeouts that are switched on."""
    timeouts = {"statement_timeout": statement_ms, "lock_timeout": lock_ms}
    return " ".join(f"-c {name}={ms}" for name, ms in timeouts.items() if ms > 0)


if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _timeouts = _postgres_timeouts(
        statement_ms=DATABASE_STATEMENT_TIMEOUT_MS, lock_ms=DATABASE_LOCK_TIMEOUT_MS
    )
    if _timeouts:
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} {_timeouts}".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, sessions, Celery -------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="shop"),
        }
    }
    # Every app server shares Redis, so the cached copy of a session is the same everywhere.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # A local-memory cache is per process: keep sessions in the database only.
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# Without a broker, tasks run in the web process at the point they are sent.
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://"
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
# Redis redelivers an unacknowledged task after the visibility timeout: keep it well above the
# longest task (the hard time limit) so a slow task is never run twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Authentication (custom user, django-allauth) ----------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:overview"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""

# --- Email -------------------------------------------------------------------------------------

EMAIL_URL = env.str("EMAIL_URL", default="")


def _mailer_from_url(url: str) -> dict:
    """Turn an EMAIL_URL (smtp://, smtp+tls://, smtp+ssl://, consolemail://) into a mailer."""
    config = environ.Env.email_url_config(url)
    options = {
        "host": config.get("EMAIL_HOST"),
        "port": config.get("EMAIL_PORT"),
        "username": config.get("EMAIL_HOST_USER"),
        "password": config.get("EMAIL_HOST_PASSWORD"),
        "use_tls": config.get("EMAIL_USE_TLS"),
        "use_ssl": config.get("EMAIL_USE_SSL"),
        "timeout": env.int("EMAIL_TIMEOUT", default=10),
    }
    backend = config["EMAIL_BACKEND"]
    if not backend.endswith("smtp.EmailBackend"):
        options = {}
    return {"BACKEND": backend, "OPTIONS": {k: v for k, v in options.items() if v is not None}}


if EMAIL_URL:
    MAILERS = {"default": _mailer_from_url(EMAIL_URL)}
else:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(VAR_DIR / "mail")},
        }
    }

# --- Static files and media --------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Uploaded images are served by the app itself unless a web server or CDN serves MEDIA_ROOT.
SERVE_MEDIA = env.bool("SERVE_MEDIA", default=not IS_PRODUCTION)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Internationalisation ----------------------------------------------------------------------

LANGUAGE_CODE = "en"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- The shop ----------------------------------------------------------------------------------

SHOP_NAME = env.str("SHOP_NAME", default="Northwind Outfitters")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"{SHOP_NAME} <shop@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
SHOP_CURRENCY = env.str("SHOP_CURRENCY", default="EUR")
SHOP_PRODUCTS_PER_PAGE = 24
# Whether catalog prices include tax (tax is then shown as included) or tax is added at checkout.
SHOP_PRICES_INCLUDE_TAX = env.bool("SHOP_PRICES_INCLUDE_TAX", default=True)
# An unpaid order holds its stock this long before expire_unpaid_orders cancels it.
SHOP_ORDER_PAYMENT_MINUTES = env.int("SHOP_ORDER_PAYMENT_MINUTES", default=60)
# A new sale's default: how long an unpaid order keeps its sale units (each sale can change it).
SHOP_SALE_HOLD_MINUTES = env.int("SHOP_SALE_HOLD_MINUTES", default=10)
# An open cart with a known email gets one reminder after this many idle hours.
SHOP_CART_REMINDER_HOURS = env.int("SHOP_CART_REMINDER_HOURS", default=24)
# The shop's public address, for links in emails (sent by workers, outside any request).
SHOP_BASE_URL = env.str("SHOP_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
SHOP_SEARCH_MAX_LENGTH = 200

# --- Overload: admission control on the hot endpoints (shop/admission.py) -----------------------

# The views a flash sale hammers (URL names): bounded in flight and rate-limited per client.
SHOP_HOT_VIEWS = env.list(
    "SHOP_HOT_VIEWS",
    default=[
        "orders:cart-add",
        "orders:checkout",
        "orders:checkout-place",
        "payments:start",
    ],
)
# Which requests to those views are hot: the writes. Their pages (GET) are reads, reachable only
# with a cart that an admitted "add to cart" made, so they are bounded upstream.
SHOP_HOT_METHODS = env.list("SHOP_HOT_METHODS", default=["POST"])
# Hot requests running at once across every worker and app server (through Redis; per process
# without it). Beyond it: 503 with Retry-After. 0 turns the bound off.
SHOP_HOT_MAX_IN_FLIGHT = env.int("SHOP_HOT_MAX_IN_FLIGHT", default=3)
# Requests that bring a new customer into the checkout funnel (add to cart) may hold at most this
# many of those slots, so the checkouts already under way are served first. 0: half the bound.
SHOP_HOT_ENTRY_VIEWS = env.list("SHOP_HOT_ENTRY_VIEWS", default=["orders:cart-add"])
SHOP_HOT_ENTRY_MAX_IN_FLIGHT = env.int("SHOP_HOT_ENTRY_MAX_IN_FLIGHT", default=0) or max(
    1, SHOP_HOT_MAX_IN_FLIGHT // 2
)
# A slot whose request never gave it back (its worker died) is free again after this long.
SHOP_HOT_LEASE_SECONDS = env.int("SHOP_HOT_LEASE_SECONDS", default=30)
# Hot requests one client (session cookie, else IP) may make per window: "20/10s". Beyond it:
# 429 with Retry-After. Empty or "0/10s" turns it off.
SHOP_HOT_RATE_LIMIT = env.str("SHOP_HOT_RATE_LIMIT", default="20/10s")
# Retry-After of a 503: this base, growing with how many were refused lately, up to the maximum.
SHOP_HOT_RETRY_AFTER = env.int("SHOP_HOT_RETRY_AFTER", default=2)
SHOP_HOT_RETRY_AFTER_MAX = env.int("SHOP_HOT_RETRY_AFTER_MAX", default=5)
SHOP_HOT_KEY_PREFIX = f"{env.str('CACHE_KEY_PREFIX', default='shop')}:hot"
# Proxies in front of the app that append the client's address to X-Forwarded-For (0: use the
# connection's address). Only for telling clients apart when they have no cookie.
SHOP_TRUSTED_PROXY_COUNT = env.int("SHOP_TRUSTED_PROXY_COUNT", default=0)

# --- Payments ----------------------------------------------------------------------------------

# Stripe is offered when its keys are set. STRIPE_API_BASE points the library at another
# Stripe-compatible server (localstripe in the tests).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
# The built-in test provider (a hosted "test payment" page, no network): on by default except in
# production, where it would let anyone mark orders paid.
PAYMENTS_TEST_PROVIDER = env.bool("PAYMENTS_TEST_PROVIDER", default=not IS_PRODUCTION)
# Signs the test provider's webhooks; derived from SECRET_KEY unless set.
PAYMENTS_TEST_WEBHOOK_SECRET = env.str("PAYMENTS_TEST_WEBHOOK_SECRET", default="")
PAYMENTS_WEBHOOK_TOLERANCE = env.int("PAYMENTS_WEBHOOK_TOLERANCE", default=300)

# --- Security ----------------------------------------------------------------------------------

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if IS_PRODUCTION:
    # Behind a TLS-terminating load balancer that sets X-Forwarded-Proto.
    if env.bool("SECURE_PROXY_SSL_HEADER", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- REST framework ----------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 24,
}

# --- Logging -----------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
