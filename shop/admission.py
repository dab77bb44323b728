"""Overload without errors: admission control for the flash-sale hot endpoints.

Under a surge every request gets a deliberate answer, never a 500 or a dropped connection:

- **In-flight bound.** At most `SHOP_HOT_MAX_IN_FLIGHT` requests to the hot views
  (`SHOP_HOT_VIEWS`: add to cart, checkout, review, place order, start payment) run at once,
  counted across every gunicorn worker and app server in Redis. Each admitted request holds a
  lease, a token in a sorted set scored by its expiry on Redis's clock: a worker that dies
  mid-request never releases its token, and the token is purged once its lease
  (`SHOP_HOT_LEASE_SECONDS`) runs out. Beyond the bound: 503 with `Retry-After`.
- **Per-client rate.** `SHOP_HOT_RATE_LIMIT` ("20/10s") hot requests per client and window,
  counted with INCR + PEXPIRE in Redis. The client is a hash of its session cookie (else its
  CSRF cookie, else its IP), so customers behind one NAT are told apart. Beyond it: 429.
- **Database busy.** An OperationalError that means "busy" (statement or lock timeout, too many
  connections, SQLite's "database is locked") escaping any view becomes the same 503 page.

Rejection happens in `process_view`, before the view, the session, the user or any database
query: a refused request costs one Redis round trip and a template render. The busy page
(templates/busy.html) retries by itself: a GET reloads, a POST re-submits the very same fields.

Without `REDIS_URL` (the embedded defaults, one server) the bound is kept per process (so it is
per gunicorn worker) and the rate in Django's cache. If Redis cannot be reached the shop fails
open: it serves the request, logs a warning, and leaves Redis alone for a few seconds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

# After a Redis error, admission control is skipped (fail open) for this long, so an outage
# costs one timeout and one warning per process every few seconds, not one per request.
REDIS_BACKOFF_SECONDS = 5.0
# Redis must answer fast or not at all: admission control may never be the slow part.
REDIS_TIMEOUT_SECONDS = 0.25
# Refusals counted over this window measure "how busy" for the Retry-After of the next ones.
PRESSURE_WINDOW_SECONDS = 1
# At most one "shedding load" warning per process this often.
SHED_LOG_SECONDS = 10.0

# Where an admitted request keeps its lease (the store and the token) until it is released.
REQUEST_LEASE_ATTRIBUTE = "_admission_lease"


# --- Configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A number of requests allowed per window."""

    limit: int
    window_seconds: int


_RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smh]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


@lru_cache(maxsize=32)
def rate_parse(text: str) -> Rate | None:
    """Parse "20/10s", "20/s", "100/1m" or "500/h"; "" or a zero limit mean no limit."""
    if not text.strip():
        return None
    match = _RATE_PATTERN.match(text)
    if match is None:
        raise ValueError(f"A rate looks like '20/10s', not {text!r}.")
    limit, count, unit = int(match[1]), int(match[2] or 1), match[3]
    if limit == 0:
        return None
    if count == 0:
        raise ValueError(f"A rate's window must be at least one second, not {text!r}.")
    return Rate(limit=limit, window_seconds=count * _UNIT_SECONDS[unit])


@dataclass(frozen=True)
class AdmissionConfig:
    """What the middleware enforces, read from settings on each request (a few lookups)."""

    view_names: frozenset[str]
    methods: frozenset[str]
    max_in_flight: int
    entry_view_names: frozenset[str]
    entry_max_in_flight: int
    lease_seconds: float
    rate: Rate | None
    retry_after: int
    retry_after_max: int
    redis_url: str
    key_prefix: str
    trusted_proxy_count: int


def admission_config() -> AdmissionConfig:
    return AdmissionConfig(
        view_names=_view_names(tuple(settings.SHOP_HOT_VIEWS)),
        methods=_view_names(tuple(method.upper() for method in settings.SHOP_HOT_METHODS)),
        max_in_flight=settings.SHOP_HOT_MAX_IN_FLIGHT,
        entry_view_names=_view_names(tuple(settings.SHOP_HOT_ENTRY_VIEWS)),
        entry_max_in_flight=settings.SHOP_HOT_ENTRY_MAX_IN_FLIGHT,
        lease_seconds=settings.SHOP_HOT_LEASE_SECONDS,
        rate=rate_parse(settings.SHOP_HOT_RATE_LIMIT),
        retry_after=max(1, settings.SHOP_HOT_RETRY_AFTER),
        retry_after_max=max(1, settings.SHOP_HOT_RETRY_AFTER_MAX),
        redis_url=settings.REDIS_URL,
        key_prefix=settings.SHOP_HOT_KEY_PREFIX,
        trusted_proxy_count=settings.SHOP_TRUSTED_PROXY_COUNT,
    )


@lru_cache(maxsize=8)
def _view_names(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name.strip() for name in names if name.strip())


# --- Stores: Redis across servers, or this process -------------------------------------------


@dataclass(frozen=True)
class Slot:
    """The answer to "may this request run?"; `pressure` counts recent refusals."""

    acquired: bool
    in_flight: int
    pressure: int


@dataclass(frozen=True)
class Count:
    """A client's requests in the current window, and seconds until the window resets."""

    hits: int
    reset_seconds: float


class Store(Protocol):
    def acquire(self, *, token: str, limit: int, lease_seconds: float) -> Slot: ...

    def release(self, *, token: str) -> None: ...

    def hit(self, *, client: str, rate: Rate) -> Count: ...


# KEYS[1] in-flight tokens (score: lease expiry in ms, Redis clock), KEYS[2] refusal counter.
# ARGV: token, limit, lease ms, pressure window ms. Returns {acquired, in flight, refusals}.
_ACQUIRE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local in_flight = redis.call('ZCARD', KEYS[1])
if in_flight < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
  return {1, in_flight + 1, 0}
end
local refused = redis.call('INCR', KEYS[2])
if refused == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return {0, in_flight, refused}
"""

# KEYS[1] the client's counter; ARGV[1] the window in ms. Returns {hits, ms until reset}.
_HIT_LUA = """
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
"""


class RedisStore:
    """The bound and the rate shared by every worker and app server through one Redis."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._client = client
        self._prefix = key_prefix
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._hit = client.register_script(_HIT_LUA)

    def acquire(self, *, token: str, limit: int, lease_seconds: float) -> Slot:
        keys = [f"{self._prefix}:in-flight", f"{self._prefix}:refused"]
        args = [token, limit, max(1, int(lease_seconds * 1000)), PRESSURE_WINDOW_SECONDS * 1000]
        acquired, in_flight, refused = self._acquire(keys=keys, args=args)
        return Slot(acquired=bool(acquired), in_flight=int(in_flight), pressure=int(refused))

    def release(self, *, token: str) -> None:
        self._client.zrem(f"{self._prefix}:in-flight", token)

    def hit(self, *, client: str, rate: Rate) -> Count:
        key = f"{self._prefix}:rate:{rate.limit}/{rate.window_seconds}:{client}"
        hits, ttl_ms = self._hit(keys=[key], args=[rate.window_seconds * 1000])
        return Count(hits=int(hits), reset_seconds=int(ttl_ms) / 1000)


class LocalStore:
    """The fallback without Redis: the bound per process (leases still expire, so a request
    thread stuck forever gives its slot back), the rate in Django's cache."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, float] = {}
        self._refusals: list[float] = []

    def acquire(self, *, token: str, limit: int, lease_seconds: float) -> Slot:
        now = time.monotonic()
        with self._lock:
            self._leases = {t: expiry for t, expiry in self._leases.items() if expiry > now}
            if len(self._leases) < limit:
                self._leases[token] = now + lease_seconds
                return Slot(acquired=True, in_flight=len(self._leases), pressure=0)
            since = now - PRESSURE_WINDOW_SECONDS
            self._refusals = [moment for moment in self._refusals if moment > since]
            self._refusals.append(now)
            return Slot(acquired=False, in_flight=len(self._leases), pressure=len(self._refusals))

    def release(self, *, token: str) -> None:
        with self._lock:
            self._leases.pop(token, None)

    def hit(self, *, client: str, rate: Rate) -> Count:
        now = time.time()
        window = int(now // rate.window_seconds)
        key = f"{settings.SHOP_HOT_KEY_PREFIX}:rate:{rate.limit}/{rate.window_seconds}:{client}"
        key = f"{key}:{window}"
        cache.add(key, 0, timeout=rate.window_seconds + 1)
        try:
            hits = cache.incr(key)
        except ValueError:  # expired between add and incr: this is the window's first hit
            cache.add(key, 1, timeout=rate.window_seconds + 1)
            hits = 1
        return Count(hits=hits, reset_seconds=(window + 1) * rate.window_seconds - now)

    def reset(self) -> None:
        with self._lock:
            self._leases.clear()
            self._refusals.clear()


local_store = LocalStore()


@lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    """One client (and connection pool) per process and URL, shared by the request threads."""
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


@lru_cache(maxsize=8)
def _redis_store(url: str, key_prefix: str) -> RedisStore:
    return RedisStore(_redis_client(url), key_prefix)


def store_for(config: AdmissionConfig) -> Store:
    if config.redis_url:
        return _redis_store(config.redis_url, config.key_prefix)
    return local_store


# --- Failing open when Redis is away ---------------------------------------------------------


class _RedisHealth:
    """Remembers, per process, a Redis that just failed, so requests skip it for a moment."""

    def __init__(self) -> None:
        self._down_until: dict[str, float] = {}

    def usable(self, url: str) -> bool:
        return not url or self._down_until.get(url, 0.0) <= time.monotonic()

    def failed(self, url: str, error: Exception) -> None:
        self._down_until[url] = time.monotonic() + REDIS_BACKOFF_SECONDS
        logger.warning(
            "Admission control cannot reach Redis (%s): serving hot requests unchecked for %.0f s.",
            error,
            REDIS_BACKOFF_SECONDS,
        )

    def reset(self) -> None:
        self._down_until.clear()


redis_health = _RedisHealth()


class _ShedLog:
    """Counts refusals and reports them at most every SHED_LOG_SECONDS, not once each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        self._since = time.monotonic()

    def refused(self, status: int) -> None:
        with self._lock:
            self._counts[status] = self._counts.get(status, 0) + 1
            now = time.monotonic()
            if now - self._since < SHED_LOG_SECONDS:
                return
            counts, self._counts, self._since = self._counts, {}, now
        summary = ", ".join(f"{count} × {status}" for status, count in sorted(counts.items()))
        logger.warning("Shedding load on the hot endpoints: refused %s.", summary)


shed_log = _ShedLog()


# --- Who is asking, and how long to wait -------------------------------------------------------


def client_key(request: HttpRequest, *, trusted_proxy_count: int = 0) -> str:
    """Name the client without loading its session: a hash of its session cookie, else of its
    CSRF cookie (set by any page with a form), else its IP address."""
    for cookie in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
        value = request.COOKIES.get(cookie)
        if value:
            return "c-" + hashlib.sha256(value.encode()).hexdigest()[:32]
    return "ip-" + client_ip(request, trusted_proxy_count=trusted_proxy_count)


def client_ip(request: HttpRequest, *, trusted_proxy_count: int = 0) -> str:
    """REMOTE_ADDR, or with `trusted_proxy_count` proxies in front (each appending to
    X-Forwarded-For), the address the outermost of them saw. Gunicorn leaves REMOTE_ADDR as the
    peer (the proxy); its forwarded_allow_ips governs only the scheme headers."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    if trusted_proxy_count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < trusted_proxy_count:
        return remote
    return forwarded[-trusted_proxy_count]


def retry_after_busy(*, base: int, maximum: int, pressure: int, limit: int) -> int:
    """Seconds to wait before retrying a refused request: the base wait, plus one base wait for
    each round of slots the recently refused requests would fill, at most `maximum`; then
    jittered between half and all of it, so a refused crowd comes back spread out."""
    rounds = pressure / max(1, limit)
    ceiling = min(float(maximum), base * (1.0 + rounds))
    highest = max(1, math.ceil(ceiling))
    return random.randint(max(1, math.ceil(ceiling / 2)), highest)


def retry_after_rate(reset_seconds: float) -> int:
    """Seconds until the client's window resets, plus up to one second of jitter."""
    return max(1, math.ceil(reset_seconds + random.uniform(0.0, 1.0)))


# --- Database errors that mean "busy" ----------------------------------------------------------

# PostgreSQL SQLSTATEs: query_canceled (statement_timeout), lock_not_available (lock_timeout),
# too_many_connections, configuration_limit_exceeded, cannot_connect_now, deadlock_detected.
BUSY_SQLSTATES = {
    "57014": "statement timeout",
    "55P03": "lock timeout",
    "53300": "too many connections",
    "53400": "configuration limit exceeded",
    "57P03": "database cannot accept connections now",
    "40P01": "deadlock",
}
# Messages of errors that carry no SQLSTATE (connection refusals, PgBouncer, SQLite).
BUSY_MESSAGES = {
    "canceling statement due to statement timeout": "statement timeout",
    "canceling statement due to lock timeout": "lock timeout",
    "too many clients": "too many connections",
    "remaining connection slots are reserved": "too many connections",
    "query_wait_timeout": "connection pool wait timeout",
    "no more connections allowed": "too many connections",
    "database is locked": "database locked",
    "database table is locked": "database locked",
}


def db_busy_reason(error: BaseException | None) -> str | None:
    """Say why a database error means "busy, try again shortly", or None if it does not."""
    if not isinstance(error, OperationalError):
        return None
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    if sqlstate in BUSY_SQLSTATES:
        return BUSY_SQLSTATES[sqlstate]
    message = str(error).lower()
    return next((reason for text, reason in BUSY_MESSAGES.items() if text in message), None)


# --- The busy response -------------------------------------------------------------------------

BUSY_MESSAGE = "The sale is busy — your place is kept."
RATE_MESSAGE = "That was a lot of requests in a short time — your place is kept."


def busy_response(request: HttpRequest, *, status: int, retry_after: int) -> HttpResponse:
    """503 (too busy) or 429 (this client too fast) with Retry-After: a page that retries by
    itself, or JSON for clients that prefer it. Renders without the request's context
    processors, so it reads neither the session nor the database."""
    message = RATE_MESSAGE if status == 429 else BUSY_MESSAGE
    if _wants_json(request):
        body = {"error": "rate_limited" if status == 429 else "busy", "message": message}
        response: HttpResponse = JsonResponse({**body, "retry_after": retry_after}, status=status)
    else:
        response = HttpResponse(_busy_page(request, message, retry_after), status=status)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    # A deliberate answer, logged by the access log and by shed_log: keep django.request from
    # logging each one as a server error.
    response._has_been_logged = True
    return response


def db_busy_response(request: HttpRequest, *, reason: str, error: BaseException) -> HttpResponse:
    """The 503 busy page for a request whose database work failed because it was busy."""
    logger.warning(
        "Database busy (%s) on %s %s: answered 503. %s", reason, request.method, request.path, error
    )
    config = admission_config()
    retry_after = retry_after_busy(
        base=config.retry_after, maximum=config.retry_after_max, pressure=0, limit=1
    )
    return busy_response(request, status=503, retry_after=retry_after)


def _wants_json(request: HttpRequest) -> bool:
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def _busy_page(request: HttpRequest, message: str, retry_after: int) -> str:
    is_post = request.method == "POST"
    fields = [(name, value) for name, values in request.POST.lists() for value in values]
    context = {
        "SHOP_NAME": settings.SHOP_NAME,
        "SHOP_CURRENCY": settings.SHOP_CURRENCY,
        "message": message,
        "retry_after": retry_after,
        "is_post": is_post,
        "action": request.get_full_path(),
        "fields": fields if is_post else [],
    }
    return render_to_string("busy.html", context)


# --- The middleware ------------------------------------------------------------------------------


class AdmissionMiddleware:
    """Refuse hot requests beyond the in-flight bound (503) or a client's rate (429) before the
    view runs, release the slot after it, and turn "database busy" errors into the 503 page.

    Sits after SecurityMiddleware and WhiteNoise and before SessionMiddleware: its process_view
    runs before CSRF's, and nothing it does reads the session or the user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # A mistyped setting stops the worker from starting, instead of failing each request.
        try:
            admission_config()
        except ValueError as error:
            raise ImproperlyConfigured(f"SHOP_HOT_RATE_LIMIT: {error}") from error

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        finally:
            lease = getattr(request, REQUEST_LEASE_ATTRIBUTE, None)
            if lease is not None:
                _release(*lease)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        config = admission_config()
        if config.max_in_flight <= 0 and config.rate is None:
            return None
        if request.method not in config.methods:
            return None
        match = request.resolver_match
        if match is None or match.view_name not in config.view_names:
            return None
        if not redis_health.usable(config.redis_url):
            return None
        try:
            return _admit(request, config, store_for(config))
        except redis.RedisError as error:
            redis_health.failed(config.redis_url, error)
            return None

    def process_exception(self, request: HttpRequest, exception: Exception):
        reason = db_busy_reason(exception)
        if reason is None:
            return None
        return db_busy_response(request, reason=reason, error=exception)


def _admit(request: HttpRequest, config: AdmissionConfig, store: Store) -> HttpResponse | None:
    """Return the refusal for a request over its rate or over the bound, or None (admitted,
    its lease token kept on the request for release)."""
    if config.rate is not None:
        client = client_key(request, trusted_proxy_count=config.trusted_proxy_count)
        count = store.hit(client=client, rate=config.rate)
        if count.hits > config.rate.limit:
            shed_log.refused(429)
            retry_after = retry_after_rate(count.reset_seconds)
            return busy_response(request, status=429, retry_after=retry_after)
    if config.max_in_flight <= 0:
        return None
    token = uuid.uuid4().hex
    limit = config.max_in_flight
    match = request.resolver_match
    if match is not None and match.view_name in config.entry_view_names:
        # A new customer entering the funnel waits while checkouts already under way use most
        # of the slots: the ones who started are served first ("your place is kept").
        limit = max(1, min(limit, config.entry_max_in_flight))
    slot = store.acquire(token=token, limit=limit, lease_seconds=config.lease_seconds)
    if not slot.acquired:
        shed_log.refused(503)
        retry_after = retry_after_busy(
            base=config.retry_after,
            maximum=config.retry_after_max,
            pressure=slot.pressure,
            limit=config.max_in_flight,
        )
        return busy_response(request, status=503, retry_after=retry_after)
    setattr(request, REQUEST_LEASE_ATTRIBUTE, (store, token, config.redis_url))
    return None


def _release(store: Store, token: str, redis_url: str) -> None:
    """Give the slot back; if Redis is away the lease simply runs out."""
    try:
        store.release(token=token)
    except redis.RedisError as error:
        redis_health.failed(redis_url, error)
