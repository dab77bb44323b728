"""The flash sale's load: simulated buyers going through the shop's pages, and a page probe.

Every buyer is a browser without JavaScript plus the part Stripe.js plays: product page, add to
cart, cart, checkout form, review, place order, order page, "Pay now" (the Stripe payment page),
the card confirmed at localstripe, then its order page polled until it shows paid. Redirects are
followed by hand (each request is timed and counted under its own step), and cookies are kept by
hand per buyer: production marks them Secure, which a cookie jar would never send back over the
plain http this load balancer stand-in speaks to gunicorn (every request carries
`X-Forwarded-Proto: https`, as behind a TLS-terminating balancer).

The probe is a few "browsing customers" getting the sale's product page in a closed loop, first
in the quiet phase before T0, then during the sale: its requests per second in both phases show
how much browsing suffers while the sale is on.

Parsing is by regular expressions (the client must stay cheap: it shares the cores with the
shop) and tolerant: the sale markers `data-sale-state` / `data-sale-left` are read when the page
has them, else the add-to-cart form alone tells whether the item can be bought.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

# --- What the pages carry -------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')
SALE_STATE_RE = re.compile(r'data-sale-state="([a-z_-]+)"')
SALE_LEFT_RE = re.compile(r'data-sale-left="(\d+)"')
ADD_FORM_RE = re.compile(r'<form[^>]*action="[^"]*/cart/add/"[^>]*>(.*?)</form>', re.S)
VARIANT_RE = re.compile(r'name="variant"\s+value="(\d+)"')
DISABLED_BUTTON_RE = re.compile(r"<button[^>]*\bdisabled\b")
MESSAGE_RE = re.compile(r'<p class="message message-([a-z ]+)">(.*?)</p>', re.S)
METHOD_RE = re.compile(
    r'data-countries="([^"]*)"[^>]*>\s*<input[^>]*name="shipping_method"\s+value="(\d+)"', re.S
)
METHOD_PLAIN_RE = re.compile(r'name="shipping_method"\s+value="(\d+)"')
CHECKOUT_TOKEN_RE = re.compile(r'name="checkout_token"\s+value="([^"]*)"')
FINGERPRINT_RE = re.compile(r'name="fingerprint"\s+value="([^"]*)"')
ERROR_NOTICE_RE = re.compile(r'<div class="notice notice-error"[^>]*>(.*?)</div>', re.S)
LI_RE = re.compile(r"<li>(.*?)</li>", re.S)
FIELD_ERROR_RE = re.compile(r'class="field-error"[^>]*>(.*?)<', re.S)
PAY_FORM_RE = re.compile(r'action="(/payments/start/[^"]+)"')
ORDER_STATUS_RE = re.compile(r'class="status status-([a-z_]+)"')
CLIENT_SECRET_RE = re.compile(
    r'<script id="stripe-client-secret" type="application/json">"([^"]+)"'
)
TAG_RE = re.compile(r"<[^>]+>")

PAID_STATES = {"paid", "fulfilled", "shipped", "delivered"}
ADDRESS = {
    "address_choice": "new",
    "full_name": "Bench Buyer",
    "line1": "Invalidenstraße 1",
    "line2": "",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
    "phone": "",
    "voucher_code": "",
}


def _text(fragment: str) -> str:
    return " ".join(html.unescape(TAG_RE.sub(" ", fragment)).split())


def messages_of(page: str) -> list[str]:
    return [_text(m) for _, m in MESSAGE_RE.findall(page)]


def reason_of(texts: list[str]) -> str:
    """Sort a refusal into a reason, from what the shop told the customer."""
    text = " ".join(texts).lower()
    if not text:
        return "unexplained"
    if "limit" in text or ("at most" in text and "sale" in text) or "per customer" in text:
        return "limit_reached"
    if any(k in text for k in ("sold out", "out of stock", "not enough", "left", "no longer")):
        return "sold_out"
    if "ended" in text or "not live" in text or "not started" in text:
        return "sale_not_live"
    if "price" in text:
        return "price_changed"
    if "busy" in text or "try again" in text:
        return "busy"
    return "other"


def step_of(method: str, path: str) -> str:
    """Name a request for the report by what it is in the buyer's journey."""
    if method == "POST":
        if path.startswith("/cart/add/"):
            return "add_to_cart"
        if path.startswith("/checkout/place/"):
            return "place_order"
        if path.startswith("/checkout/"):
            return "checkout_submit"
        if path.startswith("/payments/start/"):
            return "payment_page"
        return "post_other"
    if path.startswith("/product/"):
        return "product_page"
    if path.startswith("/cart/"):
        return "cart_page"
    if path.startswith("/checkout/review/"):
        return "review_page"
    if path.startswith("/checkout/"):
        return "checkout_page"
    if path.startswith("/orders/"):
        return "order_page"
    if path.startswith("/payments/return/"):
        return "payment_return"
    return "get_other"


# --- Measurements -----------------------------------------------------------------------------


@dataclass
class StepStats:
    statuses: Counter = field(default_factory=Counter)
    latencies: list = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    retried: int = 0


@dataclass
class Stats:
    steps: dict = field(default_factory=lambda: defaultdict(StepStats))
    outcomes: Counter = field(default_factory=Counter)
    reason_samples: dict = field(default_factory=dict)
    # (start, end, status) of every buyer request, monotonic seconds
    buyer_requests: list = field(default_factory=list)
    probe_requests: list = field(default_factory=list)
    # (start, end, status) of the buyers' product page requests (besides buyer_requests)
    product_page_requests: list = field(default_factory=list)
    sold_out_seen_at: float | None = None
    first_order_at: float | None = None
    last_order_at: float | None = None
    server_5xx_samples: list = field(default_factory=list)
    probe_cpu_seconds: float = 0.0

    def outcome(self, name: str, detail: str = "") -> None:
        self.outcomes[name] += 1
        if detail and name not in self.reason_samples:
            self.reason_samples[name] = detail[:300]


class BuyerStopped(Exception):
    """The buyer's journey ends here; `outcome` says how."""

    def __init__(self, outcome: str, detail: str = "") -> None:
        super().__init__(outcome)
        self.outcome = outcome
        self.detail = detail


@dataclass
class Answer:
    status: int
    headers: dict
    text: str
    path: str


def _retry_after(value: str | None) -> float:
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return 1.0


PURCHASE_PATHS = ("/cart/", "/checkout/", "/orders/", "/payments/")


def base_url_for(config, path: str) -> str:
    """Where the load balancer sends a path: the purchase path to the checkout pool if there is
    one, everything else (the catalog) to the main pool."""
    if config.checkout_base_url and path.startswith(PURCHASE_PATHS):
        return config.checkout_base_url
    return config.base_url


class Browser:
    """One customer's browser: its own cookies, requests through the shared connection pool."""

    def __init__(self, http: aiohttp.ClientSession, config, stats: Stats, *, label: str, ip: str):
        self.http = http
        self.config = config
        self.stats = stats
        self.cookies: dict[str, str] = {}
        self.label = label
        self.ip = ip
        self.last_path = "/"

    def _remember_cookies(self, response: aiohttp.ClientResponse) -> None:
        for name, morsel in response.cookies.items():
            if morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"]):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value

    async def fetch(
        self, method: str, path: str, *, data: dict | None = None, step: str | None = None,
        record: list | None = None,
    ) -> Answer:  # fmt: skip
        """Send one request (retrying 503/429 after Retry-After, bounded); never follow."""
        config = self.config
        step = step or step_of(method, path)
        stats = self.stats.steps[step]
        record = self.stats.buyer_requests if record is None else record
        origin = f"https://{config.host}"
        attempts = 0
        while True:
            headers = {
                "Host": config.host,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-For": self.ip,
                "User-Agent": f"bench-flash/{self.label}",
                "Accept": "text/html",
            }
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if method == "POST":
                headers["Origin"] = origin
                headers["Referer"] = origin + self.last_path
            started = time.monotonic()
            try:
                async with self.http.request(
                    method, base_url_for(config, path) + path, data=data, headers=headers,
                    allow_redirects=False,
                ) as response:  # fmt: skip
                    text = await response.text(errors="replace")
                    self._remember_cookies(response)
                    status = response.status
                    answer_headers = dict(response.headers)
            except TimeoutError:
                ended = time.monotonic()
                stats.errors["timeout"] += 1
                stats.latencies.append(ended - started)
                record.append((started, ended, 0))
                raise BuyerStopped("error_timeout", f"{method} {path}") from None
            except aiohttp.ClientError as error:
                ended = time.monotonic()
                stats.errors[type(error).__name__] += 1
                record.append((started, ended, 0))
                raise BuyerStopped("error_connection", f"{method} {path}: {error}") from None
            ended = time.monotonic()
            stats.statuses[status] += 1
            stats.latencies.append(ended - started)
            record.append((started, ended, status))
            if step == "product_page":
                self.stats.product_page_requests.append((started, ended, status))
            if status >= 500 and status != 503 and len(self.stats.server_5xx_samples) < 20:
                self.stats.server_5xx_samples.append(f"{status} {method} {path}")
            if status in (429, 503) and attempts < config.max_retries:
                attempts += 1
                stats.retried += 1
                wait = _retry_after(answer_headers.get("Retry-After"))
                wait = min(wait, config.max_retry_wait) + random.uniform(0, config.retry_jitter)
                if time.monotonic() + wait > config.deadline:
                    raise BuyerStopped("deadline", f"retry of {method} {path}")
                await asyncio.sleep(wait)
                continue
            if method == "GET" and status == 200:
                self.last_path = path
            return Answer(status, answer_headers, text, path)

    async def visit(self, method: str, path: str, *, data: dict | None = None) -> Answer:
        """Send a request and follow its redirects as a browser does (each one timed)."""
        answer = await self.fetch(method, path, data=data)
        hops = 0
        while answer.status in (301, 302, 303, 307, 308) and hops < 5:
            location = answer.headers.get("Location", "")
            target = urlsplit(location)
            if target.scheme and target.netloc and target.netloc != self.config.host:
                raise BuyerStopped("error_redirect", f"{answer.path} -> {location}")
            next_path = target.path + (f"?{target.query}" if target.query else "")
            answer = await self.fetch("GET", next_path)
            hops += 1
        if answer.status >= 500:
            raise BuyerStopped(f"error_http_{answer.status}", answer.path)
        if answer.status in (429, 503):
            raise BuyerStopped("gave_up_busy", f"{answer.status} {answer.path}")
        return answer


# --- A buyer ----------------------------------------------------------------------------------


def _csrf(page: str) -> str:
    match = CSRF_RE.search(page)
    if not match:
        raise BuyerStopped("error_page", "no CSRF token on the page")
    return match.group(1)


def product_state(page: str) -> tuple[str, int | None, str | None]:
    """Return (state, units left or None, variant id or None) from a product page."""
    state = SALE_STATE_RE.search(page)
    left = SALE_LEFT_RE.search(page)
    form = ADD_FORM_RE.search(page)
    variant = VARIANT_RE.search(form.group(1)) if form else None
    buyable = bool(form) and not DISABLED_BUTTON_RE.search(form.group(1))
    # Without the sale markers, the add-to-cart form tells whether the item can be bought.
    name = state.group(1) if state else ("live" if buyable else "sold-out")
    if name == "live" and not buyable:
        name = "sold-out"
    return name, int(left.group(1)) if left else None, variant.group(1) if variant else None


async def think(config) -> None:
    """A person's pause before the next click: reading the page, typing the address."""
    if config.think > 0:
        await asyncio.sleep(config.think * random.uniform(0.5, 1.5))


async def buyer_journey(browser: Browser, setup: dict, config, index: int, quantity: int) -> str:
    stats = browser.stats
    product_url = setup["product_url"]
    # 1. The product page (refreshed while the sale has not started, as an eager buyer would).
    for _ in range(20):
        page = await browser.visit("GET", product_url)
        state, _left, variant = product_state(page.text)
        if state != "upcoming":
            break
        await asyncio.sleep(0.5 + random.uniform(0, 0.5))
    if state in ("sold-out", "sold_out", "ended"):
        if stats.sold_out_seen_at is None:
            stats.sold_out_seen_at = time.monotonic()
        raise BuyerStopped("saw_sold_out")
    if variant is None:
        raise BuyerStopped("error_page", f"no add-to-cart form on {product_url} ({state})")
    # 2. Add to cart; success lands on the cart, a refusal back on the product page.
    await think(config)
    answer = await browser.visit(
        "POST", "/cart/add/",
        data={"csrfmiddlewaretoken": _csrf(page.text), "variant": variant,
              "quantity": str(quantity), "next": product_url},
    )  # fmt: skip
    if not answer.path.startswith("/cart/"):
        texts = messages_of(answer.text)
        raise BuyerStopped(f"{reason_of(texts)}_at_add_to_cart", " | ".join(texts))
    # 3. The checkout form, then its details.
    await think(config)
    form = await browser.visit("GET", "/checkout/")
    if not form.path.startswith("/checkout/"):
        texts = messages_of(form.text)
        raise BuyerStopped(f"{reason_of(texts)}_at_checkout", " | ".join(texts))
    methods = METHOD_RE.findall(form.text)
    method = next((pk for countries, pk in methods if not countries or "DE" in countries.split()),
                  None)  # fmt: skip
    if method is None:
        plain = METHOD_PLAIN_RE.findall(form.text)
        if not plain:
            raise BuyerStopped("error_page", "no shipping method on the checkout page")
        method = plain[0]
    details = dict(ADDRESS, csrfmiddlewaretoken=_csrf(form.text), shipping_method=method,
                   email=f"buyer{index}-{config.run_id}@bench.example.com")  # fmt: skip
    await think(config)
    review = await browser.visit("POST", "/checkout/", data=details)
    if not review.path.startswith("/checkout/review/"):
        errors = [_text(e) for e in FIELD_ERROR_RE.findall(review.text)] + messages_of(review.text)
        where = "checkout_invalid" if review.path.startswith("/checkout/") else None
        raise BuyerStopped(where or f"{reason_of(errors)}_at_checkout", " | ".join(errors))
    # 4. Review, then place the order.
    token = CHECKOUT_TOKEN_RE.search(review.text)
    fingerprint = FINGERPRINT_RE.search(review.text)
    if not token or not fingerprint:
        notice = ERROR_NOTICE_RE.search(review.text)
        texts = [_text(li) for li in LI_RE.findall(notice.group(1))] if notice else []
        texts += messages_of(review.text)
        raise BuyerStopped(f"{reason_of(texts)}_at_review", " | ".join(texts))
    await think(config)
    placed = await browser.visit(
        "POST", "/checkout/place/",
        data={"csrfmiddlewaretoken": _csrf(review.text), "checkout_token": token.group(1),
              "fingerprint": fingerprint.group(1)},
    )  # fmt: skip
    if not placed.path.startswith("/orders/"):
        notice = ERROR_NOTICE_RE.search(placed.text)
        texts = messages_of(placed.text)
        texts += [_text(li) for li in LI_RE.findall(notice.group(1))] if notice else []
        raise BuyerStopped(f"{reason_of(texts)}_at_place", " | ".join(texts))
    now = time.monotonic()
    stats.first_order_at = min(stats.first_order_at or now, now)
    stats.last_order_at = max(stats.last_order_at or now, now)
    order_path = placed.path
    # 5. "Pay now": the Stripe payment page carries the PaymentIntent's client secret.
    pay = PAY_FORM_RE.search(placed.text)
    if not pay:
        raise BuyerStopped("error_page", f"no pay form on {order_path}")
    await think(config)
    payment = await browser.visit(
        "POST", html.unescape(pay.group(1)),
        data={"csrfmiddlewaretoken": _csrf(placed.text), "provider": "stripe"},
    )  # fmt: skip
    secret = CLIENT_SECRET_RE.search(payment.text)
    if not secret:
        texts = messages_of(payment.text)
        raise BuyerStopped("error_no_payment_page", " | ".join(texts) or payment.path)
    intent = secret.group(1).split("_secret_")[0]
    # 6. What Stripe.js does with the card: attach the payment method, confirm.
    await stripe_confirm(browser, intent)
    # 7. Poll the order page until the webhook (through the worker) has marked it paid.
    deadline = min(time.monotonic() + config.pay_wait, config.deadline)
    while True:
        await asyncio.sleep(config.poll_interval * random.uniform(0.8, 1.2))
        page = await browser.visit("GET", order_path)
        status = ORDER_STATUS_RE.search(page.text)
        if status and status.group(1) in PAID_STATES:
            return "paid"
        if status and status.group(1) == "cancelled":
            raise BuyerStopped("order_cancelled_before_paid", order_path)
        if time.monotonic() > deadline:
            raise BuyerStopped("paid_not_shown_in_time", order_path)


async def stripe_confirm(browser: Browser, intent: str) -> None:
    """Attach pm_card_visa to the PaymentIntent and confirm it, at localstripe.

    localstripe takes a publishable key only on a few calls (not on confirm), so this uses the
    secret key, as the shop's e2e tests do.
    """
    config = browser.config
    headers = {"Authorization": f"Bearer {config.stripe_secret_key}"}
    calls = (
        ("stripe_attach", f"/v1/payment_intents/{intent}", {"payment_method": "pm_card_visa"}),
        ("stripe_confirm", f"/v1/payment_intents/{intent}/confirm", None),
    )
    for step, path, data in calls:
        stats = browser.stats.steps[step]
        started = time.monotonic()
        try:
            async with browser.http.post(
                config.stripe_base + path, data=data or {}, headers=headers
            ) as response:
                body = await response.text()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as error:
            stats.errors[type(error).__name__ or "timeout"] += 1
            raise BuyerStopped("error_stripe", f"{step}: {error!r}") from None
        stats.statuses[status] += 1
        stats.latencies.append(time.monotonic() - started)
        if status != 200:
            raise BuyerStopped("error_stripe", f"{step}: {status} {body[:200]}")


# --- The run ----------------------------------------------------------------------------------


async def _buyer(http, setup, config, stats: Stats, index: int, slots: asyncio.Semaphore):
    greedy = random.random() < config.greedy_share
    quantity = (config.per_customer_limit or 1) + 1 if greedy else config.quantity
    async with slots:
        if time.monotonic() > config.deadline:
            stats.outcome("not_started")
            return
        browser = Browser(
            http,
            config,
            stats,
            label=f"buyer{index}",
            ip=f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}",
        )
        try:
            stats.outcome(await buyer_journey(browser, setup, config, index, quantity))
        except BuyerStopped as stop:
            name = stop.outcome
            if greedy and name.startswith("limit_reached"):
                name = "greedy_" + name
            stats.outcome(name, stop.detail)
        except asyncio.CancelledError:
            stats.outcome("unfinished_at_deadline")
            raise


async def _prober(http, setup, config, stats: Stats, index: int, stop: asyncio.Event):
    browser = Browser(http, config, stats, label=f"probe{index}", ip=f"192.168.0.{index + 1}")
    paths = [setup["product_url"]]
    if config.probe_category:
        paths.append(setup["category_url"])
    turn = 0
    while not stop.is_set() and time.monotonic() < config.deadline:
        path = paths[turn % len(paths)]
        turn += 1
        try:
            answer = await browser.fetch("GET", path, step="probe", record=stats.probe_requests)
        except BuyerStopped:
            await asyncio.sleep(0.2)
            continue
        if config.probe_think:
            await asyncio.sleep(config.probe_think)
        if answer.status == 200 and stats.sold_out_seen_at is None and path == paths[0]:
            state, _, _ = product_state(answer.text)
            if state in ("sold-out", "sold_out"):
                stats.sold_out_seen_at = time.monotonic()


class ProbeProcess:
    """The probers in a forked process: started at once, stopped on demand; their requests,
    latencies and the moment they first saw "sold out" come back through a pipe."""

    def __init__(self, config, setup: dict) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._seen = context.Value("d", 0.0)
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_probe_main, args=(config, setup, self._stop, self._seen, send), daemon=True
        )
        self._process.start()

    def sold_out_seen_at(self) -> float | None:
        return self._seen.value or None

    def stop_and_collect(self, stats: Stats) -> None:
        self._stop.set()
        if self._receive.poll(30):
            requests, statuses, latencies, errors, cpu = self._receive.recv()
            stats.probe_cpu_seconds = cpu
            stats.probe_requests.extend(requests)
            step = stats.steps["probe"]
            step.statuses.update(statuses)
            step.latencies.extend(latencies)
            step.errors.update(errors)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


def _probe_main(config, setup: dict, stop, seen, send) -> None:
    """The probe process: run the probers until told to stop, then send what they measured."""
    stats = Stats()

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=config.probe_concurrency + 2, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=config.request_timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            done = asyncio.Event()
            probers = [
                asyncio.create_task(_prober(http, setup, config, stats, i, done))
                for i in range(config.probe_concurrency)
            ]
            while not stop.is_set() and time.monotonic() < config.deadline:
                if stats.sold_out_seen_at is not None and not seen.value:
                    seen.value = stats.sold_out_seen_at
                await asyncio.sleep(0.05)
            done.set()
            await asyncio.gather(*probers, return_exceptions=True)

    asyncio.run(main())
    step = stats.steps["probe"]
    cpu = time.process_time()
    send.send((stats.probe_requests, dict(step.statuses), step.latencies, dict(step.errors), cpu))
    send.close()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"count": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1000, 1)}  # fmt: skip


TIMELINE_BUCKET = 2.0


def _timeline(stats: Stats, t0: float, end: float) -> list[dict]:
    """Answers per second in 2-second buckets from 4 s before T0: the probe's, the buyers'
    product pages, the buyers' other requests, and the 503/429 among those."""
    rows = []
    start = t0 - 2 * TIMELINE_BUCKET
    while start < end:
        stop = start + TIMELINE_BUCKET

        def rate(requests, *, statuses=None, start=start, stop=stop) -> float:
            hits = [r for r in requests if start <= r[1] < stop]
            if statuses is not None:
                hits = [r for r in hits if r[2] in statuses]
            return round(len(hits) / TIMELINE_BUCKET, 1)

        pages = rate(stats.product_page_requests)
        rows.append({
            "t": round(start - t0, 1),
            "probe": rate(stats.probe_requests),
            "buyer_pages": pages,
            "buyer_other": round(rate(stats.buyer_requests) - pages, 1),
            "busy": rate(stats.buyer_requests, statuses={429, 503}),
        })  # fmt: skip
        start = stop
    return rows


def _window_rate(requests: list, start: float, end: float) -> dict:
    done = [r for r in requests if start <= r[1] < end]
    ok = [r for r in done if r[2] == 200]
    span = max(end - start, 1e-9)
    return {
        "seconds": round(span, 2),
        "requests": len(done),
        "ok": len(ok),
        "rps": round(len(ok) / span, 1),
        "latency": percentiles([r[1] - r[0] for r in done]),
    }


async def run(config, setup: dict, log=print) -> dict:
    """Run the probe's quiet phase, then the buyers' surge at T0; return the measurements."""
    stats = Stats()
    cpu_started, wall_started = time.process_time(), time.monotonic()
    connector = aiohttp.TCPConnector(
        limit=config.concurrency + config.probe_concurrency + 8, limit_per_host=0,
        keepalive_timeout=4, ttl_dns_cache=None,
    )  # fmt: skip
    timeout = aiohttp.ClientTimeout(total=config.request_timeout)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
    ) as http:  # fmt: skip
        t0_mono = time.monotonic() + (setup["t0"] - time.time())
        quiet_start = t0_mono - config.quiet_seconds
        # The probe runs in a process of its own, with its own event loop and connections: the
        # buyers' client work must not slow the probe's closed loop down (it would read as the
        # shop serving fewer pages).
        probe = ProbeProcess(config, setup)
        log(f"probe: {config.probe_concurrency} browsers; quiet phase until T0 "
            f"(in {t0_mono - time.monotonic():.1f} s)")  # fmt: skip
        await asyncio.sleep(max(0.0, t0_mono - time.monotonic()))
        log(f"T0: {config.buyers} buyers arrive, at most {config.concurrency} at once")
        slots = asyncio.Semaphore(config.concurrency)
        buyers = [
            asyncio.create_task(_buyer(http, setup, config, stats, i, slots))
            for i in range(config.buyers)
        ]
        pending = set(buyers)
        sale_end = None
        while pending:
            remaining = config.deadline - time.monotonic()
            if remaining <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=min(1.0, remaining))
            now = time.monotonic()
            probe_seen = probe.sold_out_seen_at()
            if probe_seen and (
                stats.sold_out_seen_at is None or probe_seen < stats.sold_out_seen_at
            ):
                stats.sold_out_seen_at = probe_seen
            seen = stats.sold_out_seen_at
            if sale_end is None and seen is not None and now >= seen + config.sold_out_tail:
                sale_end = seen + config.sold_out_tail
            if config.progress and int(now - t0_mono) % 10 == 0:
                done = config.buyers - len(pending)
                log(f"  t+{now - t0_mono:5.1f}s buyers done {done}/{config.buyers} "
                    f"paid {stats.outcomes['paid']}")  # fmt: skip
        buyers_done_at = time.monotonic()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        probe.stop_and_collect(stats)
    sale_end = min(sale_end or buyers_done_at, buyers_done_at)
    quiet = _window_rate(stats.probe_requests, quiet_start, t0_mono)
    # The two halves of the quiet phase: far apart, something else was using the machine and
    # the baseline (so every ratio to it) is not to be trusted.
    middle = (quiet_start + t0_mono) / 2
    quiet["halves_rps"] = [
        _window_rate(stats.probe_requests, quiet_start, middle)["rps"],
        _window_rate(stats.probe_requests, middle, t0_mono)["rps"],
    ]
    during = _window_rate(stats.probe_requests, t0_mono, sale_end)
    all_pages = _window_rate(stats.probe_requests + stats.product_page_requests, t0_mono, sale_end)
    buyer_span = max(buyers_done_at - t0_mono, 1e-9)
    timeline = _timeline(stats, t0_mono, min(buyers_done_at, t0_mono + 60))
    return {
        "steps": {
            name: {
                "statuses": {str(k): v for k, v in sorted(s.statuses.items())},
                "errors": dict(s.errors),
                "retried_503_429": s.retried,
                "latency": percentiles(s.latencies),
            }
            for name, s in stats.steps.items()
        },
        "outcomes": dict(stats.outcomes.most_common()),
        "outcome_samples": stats.reason_samples,
        "server_5xx_samples": stats.server_5xx_samples,
        "buyers_seconds": round(buyer_span, 2),
        "buyer_requests": len(stats.buyer_requests),
        "buyer_rps": round(len(stats.buyer_requests) / buyer_span, 1),
        "sold_out_seen_s": (
            round(stats.sold_out_seen_at - t0_mono, 2) if stats.sold_out_seen_at else None
        ),
        "probe": {
            "quiet": quiet,
            "sale": during,
            "ratio": round(during["rps"] / quiet["rps"], 2) if quiet["rps"] else None,
        },
        # Every product page the shop served (the probe's and the buyers'), per second: what the
        # shop kept serving of its catalog while the sale ran, against its quiet-time throughput
        # (the probe alone, at saturation, before T0).
        "product_pages": {
            "quiet": quiet,
            "sale": all_pages,
            "ratio": round(all_pages["rps"] / quiet["rps"], 2) if quiet["rps"] else None,
        },
        "timeline": timeline,
        # The load generator's own CPU time (buyers and probe processes) over the load phase,
        # per wall second: near 1.0 would mean the client, not the shop, set the pace.
        "client_cpu_share": round(
            (time.process_time() - cpu_started + stats.probe_cpu_seconds)
            / max(time.monotonic() - wall_started, 1e-9),
            2,
        ),
    }
