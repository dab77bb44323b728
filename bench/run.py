"""The flash-sale load harness: `make bench-flash` (docs/performance.md explains it).

Starts the production stack on loopback (gunicorn with shop/gunicorn.conf.py and production
settings, a Celery worker, localstripe as Stripe, and a small stand-in for the load balancer on
the webhook path) on a dedicated PostgreSQL database and Redis db number, seeds a catalog and a
flash sale starting at T0, measures a product-page probe in the quiet phase, sends the buyers at
T0, then checks the database: nothing oversold, stock and sale counters reconciled. Prints one
report, writes it as JSON under bench/results/, and stops everything it started, also on Ctrl-C
or an error. Exits 1 when a hard correctness check fails, 2 when the stack could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
RESULTS_DIR = BENCH_DIR / "results"
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
SHOP_STEPS_EXCLUDED_FROM_LATENCY = {"stripe_attach", "stripe_confirm", "probe"}


class SetupFailed(Exception):
    """The stack could not be brought up; the message says what to do."""


def load_timeline(results: dict) -> list[dict]:
    return results.get("timeline") or []


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="make bench-flash BENCH_ARGS=...", description=__doc__.splitlines()[0]
    )
    a = p.add_argument
    a("--buyers", type=int, default=2000, help="simulated buyers arriving at T0 (2000)")
    a("--concurrency", type=int, default=200, help="buyers in flight at once (200)")
    a("--units", type=int, default=100, help="units in stock and allotted to the sale (100)")
    a("--price", default="49.00", help="the product's regular price (49.00)")
    a("--sale-price", default="19.00", help="the sale price (19.00)")
    a("--per-customer-limit", type=int, default=2, help="sale limit per customer (2; 0: none)")
    a("--quantity", type=int, default=1, help="units each ordinary buyer asks for (1)")
    a(
        "--greedy-share",
        type=float,
        default=0.05,
        help="share of buyers asking for limit+1 units, to exercise the limit (0.05)",
    )
    a("--probe-concurrency", type=int, default=8, help="browsing customers in the probe (8)")
    a("--probe-category", action="store_true", help="the probe alternates with a category page")
    a("--probe-think", type=float, default=0, help="pause between a prober's requests, s (0)")
    a(
        "--checkout-pool",
        type=int,
        default=1,
        help="gunicorn workers of a second pool that serves the purchase path (/cart, /checkout, "
        "/orders, /payments), as a load balancer routing by path would; 0: one pool for all (1)",
    )
    a(
        "--think",
        type=float,
        default=1.0,
        help="a buyer's mean pause before each click (uniform from half to one and a half of it), "
        "as a person reads the page; 0 makes every buyer a bot clicking as fast as it can (1.0)",
    )
    a("--quiet-seconds", type=float, default=10, help="probe baseline before T0 (10)")
    a("--warmup-seconds", type=float, default=3, help="unmeasured warm-up before it (3)")
    a(
        "--sold-out-tail",
        type=float,
        default=5,
        help="the probe's sale phase ends this long after sell-out is seen (5)",
    )
    a(
        "--max-seconds",
        type=float,
        default=180,
        help="bound on the load phase, quiet phase included (180)",
    )
    a("--setup-timeout", type=float, default=600, help="bound on migrate + seed + start (600)")
    a("--request-timeout", type=float, default=30, help="one HTTP request's bound, s (30)")
    a("--max-retries", type=int, default=8, help="retries of one request after 503/429 (8)")
    a("--max-retry-wait", type=float, default=10, help="cap on one Retry-After wait, s (10)")
    a("--retry-jitter", type=float, default=0.5, help="random extra wait after Retry-After (0.5)")
    a("--pay-wait", type=float, default=60, help="how long a buyer polls for 'paid', s (60)")
    a("--poll-interval", type=float, default=1.0, help="order page poll interval, s (1.0)")
    a("--products", type=int, default=500, help="demo catalog size (500)")
    a("--database", default="shop_bench", help="PostgreSQL database, dropped and made (shop_bench)")
    a("--redis-db", type=int, default=12, help="Redis db number, flushed (12)")
    a("--celery-concurrency", type=int, default=2, help="Celery worker processes (2)")
    a("--email-url", default="consolemail://", help="EMAIL_URL for the shop (consolemail://)")
    a(
        "--no-sale",
        action="store_true",
        help="plain product with limited stock, no Sale (also used when the models are missing)",
    )
    a("--progress", action="store_true", help="print progress every 10 s")
    a("--seed", type=int, default=None, help="random seed of the buyers' choices")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database):
        p.error("--database: lower-case letters, digits and _ only")
    if args.buyers < 1 or args.concurrency < 1 or args.units < 1:
        p.error("--buyers, --concurrency and --units must be at least 1")
    return args


# --- Processes ----------------------------------------------------------------------------------


class Stack:
    """The processes this run started; `stop()` ends each one (its own process group), once."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self._lock = threading.Lock()
        self._stopped = False

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.processes.append((name, process))
        return process

    def check_alive(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-1500:]
                raise SetupFailed(f"{name} exited with {process.returncode}:\n{tail}")

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        # Newest first: the web server and the worker before what they talk to.
        for _, process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group too (this run made it): a worker child may outlive its master.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_step(what: str, command: list[str], env: dict, timeout: float, log_path: Path) -> str:
    """Run a command to completion (bounded); return its output or raise SetupFailed."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise SetupFailed(f"{what} did not finish within {timeout:.0f} s") from error
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise SetupFailed(
            f"{what} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2500:]}"
        )
    print(f"  {what}: {time.monotonic() - started:.1f} s", flush=True)
    return done.stdout


def http_get(url: str, timeout: float = 2, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def wait_until(what: str, check, stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SetupFailed(f"{what} was not ready within {timeout:.0f} s")
        time.sleep(0.2)


# --- Services: PostgreSQL and Redis ---------------------------------------------------------------


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_services() -> None:
    """Start PostgreSQL and Redis as .ci/run does when they are down, or say what is missing."""
    if not _tcp_open(PG_HOST, PG_PORT):
        clusters = Path("/etc/postgresql")
        if shutil.which("pg_ctlcluster") and clusters.is_dir() and any(clusters.iterdir()):
            version = sorted((p.name for p in clusters.iterdir()), key=lambda v: float(v))[-1]
            print(f"Starting PostgreSQL {version}", flush=True)
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                timeout=60, check=False,
            )  # fmt: skip
        for _ in range(30):
            if _tcp_open(PG_HOST, PG_PORT):
                break
            time.sleep(1)
        else:
            raise SetupFailed(
                f"PostgreSQL is not answering on {PG_HOST}:{PG_PORT}; start it (see .ci/run)."
            )
    if not _tcp_open(REDIS_HOST, REDIS_PORT):
        if shutil.which("redis-server"):
            print("Starting Redis", flush=True)
            Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
                 "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
                 "--dir", "/var/lib/redis"],
                timeout=30, check=False,
            )  # fmt: skip
        for _ in range(30):
            if _tcp_open(REDIS_HOST, REDIS_PORT):
                break
            time.sleep(1)
        else:
            raise SetupFailed(
                f"Redis is not answering on {REDIS_HOST}:{REDIS_PORT}; start it (see .ci/run)."
            )
    for tool in ("psql",):
        if not shutil.which(tool):
            raise SetupFailed(f"{tool} is not on PATH (PostgreSQL's client tools are needed).")


def reset_database(name: str, log_path: Path) -> None:
    psql = ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "-d", "postgres",
            "-v", "ON_ERROR_STOP=1", "-q"]  # fmt: skip
    env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    run_step("drop database", psql + ["-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
             env, 60, log_path)  # fmt: skip
    run_step("create database", psql + ["-c", f'CREATE DATABASE "{name}"'], env, 60, log_path)


def flush_redis(db: int) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=5)
    client.flushdb()
    client.close()


# --- The server logs ----------------------------------------------------------------------------

ERROR_RE = re.compile(r"( ERROR |\[ERROR\]|: ERROR/| CRITICAL |\[CRITICAL\]|: CRITICAL/)")
LOG_LINE_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2} [\d:,]+ [A-Z]+ |\[\d{4}-\d{2}-\d{2} |\d+\.\d+\.\d+\.\d+ )"
)


def log_errors(path: Path) -> dict:
    """Collect the tracebacks and ERROR lines of a log: counts by last line, a few samples."""
    if not path.exists():
        return {"tracebacks": 0, "errors": 0, "worker_restarts": 0, "worker_timeouts": 0,
                "by_exception": {}, "samples": []}  # fmt: skip
    lines = path.read_text(errors="replace").splitlines()
    blocks, current = [], None
    errors = 0
    for line in lines:
        is_start = bool(LOG_LINE_RE.match(line))
        is_error = is_start and bool(ERROR_RE.search(line))
        errors += is_error
        if is_start:
            if current:
                blocks.append(current)
            current = [line] if is_error else None
        elif current is not None:
            current.append(line)
        elif line.startswith("Traceback"):
            current = [line]
    if current:
        blocks.append(current)
    with_traceback = [b for b in blocks if any(x.startswith("Traceback") for x in b)]
    by_exception: dict[str, int] = {}
    samples = []
    for block in with_traceback:
        last = next((x for x in reversed(block) if x.strip()), "")
        by_exception[last[:200]] = by_exception.get(last[:200], 0) + 1
        if by_exception[last[:200]] == 1 and len(samples) < 5:
            samples.append("\n".join(block[:1] + block[-30:]))
    return {
        "tracebacks": len(with_traceback),
        "errors": errors,
        # gunicorn recycles a worker after WEB_MAX_REQUESTS; each restart is a cold start.
        "worker_restarts": sum("Autorestarting worker" in line for line in lines),
        "worker_timeouts": sum("WORKER TIMEOUT" in line for line in lines),
        "by_exception": by_exception,
        "samples": samples,
    }


# --- The report ---------------------------------------------------------------------------------


def build_report(args, setup, load, db, check_stock, logs, stack_info) -> dict:
    steps = load["steps"]
    fivexx = sum(
        count
        for name, step in steps.items()
        if not name.startswith("stripe_")
        for code, count in step["statuses"].items()
        if int(code) >= 500 and int(code) != 503
    )
    shed = sum(step["statuses"].get("503", 0) for step in steps.values())
    throttled = sum(step["statuses"].get("429", 0) for step in steps.values())
    conn_errors = sum(sum(step["errors"].values()) for step in steps.values())
    sale = db.get("sale")
    oversold = db["units_oversold_vs_stock"] + (sale["units_oversold_vs_allotment"] if sale else 0)
    reconciles = db["stock_reconciles"] and db.get("stock_received_reconciles", True)
    if sale:
        reconciles = reconciles and sale["reconciles"]
    if check_stock["exit_code"] not in (None, 0):
        reconciles = False
    sold_out_s = sale["sold_out_s"] if sale else db.get("sold_out_s")
    slow_steps = {
        name: step["latency"].get("p99_ms")
        for name, step in steps.items()
        if name not in SHOP_STEPS_EXCLUDED_FROM_LATENCY
        and step["latency"].get("count")
        and step["latency"]["p99_ms"] >= 1000
    }
    ratio = load["product_pages"]["ratio"]
    limit = (setup.get("sale") or {}).get("per_customer_limit")  # only a sale has a limit
    targets = {
        "0 oversold": (oversold == 0, f"{oversold} units", True),
        "0 5xx (503 shed excepted)": (fivexx == 0, f"{fivexx} answers", True),
        "0 connection errors/timeouts": (conn_errors == 0, f"{conn_errors}", True),
        "stock and sale reconcile": (reconciles, "exactly" if reconciles else "NO", True),
        "all units sold (paid)": (
            db["units_paid"] == args.units,
            f"{db['units_paid']}/{args.units}",
            False,
        ),
        "p99 of every step < 1 s": (
            not slow_steps,
            "all under 1 s"
            if not slow_steps
            else ", ".join(f"{k} {v / 1000:.2f}s" for k, v in sorted(slow_steps.items())),
            False,
        ),
        "sold out within 30 s of T0": (
            sold_out_s is not None and sold_out_s <= 30,
            "not sold out" if sold_out_s is None else f"{sold_out_s:.1f} s",
            False,
        ),
        "product pages/s during sale >= 0.5 x quiet": (
            ratio is not None and ratio >= 0.5,
            "n/a" if ratio is None else f"{ratio:.2f}",
            False,
        ),
    }
    if limit:
        targets["per-customer limit held"] = (
            db["max_units_one_customer"] <= limit,
            f"max {db['max_units_one_customer']} per customer (limit {limit})",
            False,
        )
    paid_s = db.get("last_payment_s")
    return {
        "run": stack_info,
        "parameters": dict(vars(args).items()),
        "setup": setup,
        "results": {
            "orders_paid": db["orders_paid"],
            "units_sold_paid": db["units_paid"],
            "orders_pending": db["orders_pending"],
            "units_held_pending": db["units_pending"],
            "units_oversold": oversold,
            "stock_after": db["stock_after"],
            "sale": sale,
            "reconciles": reconciles,
            "check_stock": check_stock,
            "sold_out_s": sold_out_s,
            "sold_out_seen_by_client_s": load["sold_out_seen_s"],
            "last_payment_s": paid_s,
            "first_order_s": db.get("first_order_s"),
            "http_5xx": fivexx,
            "http_503_shed": shed,
            "http_429": throttled,
            "connection_errors": conn_errors,
            "buyer_requests": load["buyer_requests"],
            "buyer_rps": load["buyer_rps"],
            "buyers_seconds": load["buyers_seconds"],
            "orders_per_s": (
                round(db["orders_paid"] / paid_s, 2) if paid_s and paid_s > 0 else None
            ),
            "probe": load["probe"],
            "product_pages": load["product_pages"],
            "timeline": load["timeline"],
            "client_cpu_share": load["client_cpu_share"],
        },
        "outcomes": load["outcomes"],
        "outcome_samples": load["outcome_samples"],
        "steps": steps,
        "database": db,
        "server_log": logs,
        "targets": {k: {"pass": v[0], "value": v[1], "hard": v[2]} for k, v in targets.items()},
        "hard_failure": any(not v[0] for v in targets.values() if v[2]),
    }


def print_report(report: dict, path: Path) -> None:
    r = report["results"]
    out = []
    w = out.append
    w("")
    w("=" * 78)
    p = report["parameters"]
    w(f"Flash sale: {p['buyers']} buyers (<= {p['concurrency']} at once), {p['units']} units, "
      f"limit {p['per_customer_limit'] or 'none'}, probe {p['probe_concurrency']}")  # fmt: skip
    run = report["run"]
    w(f"Stack: gunicorn {run['web_concurrency']}x{run['web_threads']} threads"
      f" (+ checkout pool {run.get('checkout_pool') or 0}x{run['web_threads']}), celery "
      f"{p['celery_concurrency']}, {run['cpus']} cores; sale models: "
      f"{'yes' if report['setup'].get('sale') else 'no (plain stock)'}")  # fmt: skip
    w("-" * 78)
    sale = r["sale"]
    w(
        f"Orders paid {r['orders_paid']}   units sold (paid) {r['units_sold_paid']}   "
        f"units held (pending) {r['units_held_pending']}   oversold {r['units_oversold']}"
    )
    line = f"Stock after {r['stock_after']}"
    if sale:
        line += (f"   allotment {sale['allotment']} taken {sale['taken']}   holds "
                 f"{sale['holds_units_by_status']}")  # fmt: skip
    w(line)
    cs = r["check_stock"]
    w(
        f"Reconciles: {'yes' if r['reconciles'] else 'NO'}   check_stock: "
        f"{cs['exit_code'] if cs['exit_code'] is not None else 'skipped'} {cs['note']}"
    )
    fmt = lambda v: "—" if v is None else f"{v:.1f} s"  # noqa: E731
    w(f"T0 -> first order {fmt(r['first_order_s'])}, sold out {fmt(r['sold_out_s'])} "
      f"(seen by a client {fmt(r['sold_out_seen_by_client_s'])}), last payment "
      f"{fmt(r['last_payment_s'])}")  # fmt: skip
    w(
        f"Buyers: {r['buyer_requests']} requests in {r['buyers_seconds']:.1f} s = "
        f"{r['buyer_rps']} req/s; paid orders/s {r['orders_per_s']}"
    )
    w(
        f"HTTP 5xx {r['http_5xx']}   503 shed {r['http_503_shed']}   429 {r['http_429']}   "
        f"connection errors/timeouts {r['connection_errors']}"
    )
    pr = r["probe"]
    w(f"Product page probe: quiet {pr['quiet']['rps']} req/s (p99 "
      f"{pr['quiet']['latency'].get('p99_ms', '—')} ms), during sale {pr['sale']['rps']} req/s "
      f"(p99 {pr['sale']['latency'].get('p99_ms', '—')} ms), ratio {pr['ratio']}")  # fmt: skip
    w("Timeline (answers/s per 2 s): t, probe, buyers' product pages, buyers' other, of which busy")
    w("  " + "  ".join(
        f"{row['t']:+.0f}:{row['probe']:.0f}/{row['buyer_pages']:.0f}/{row['buyer_other']:.0f}"
        f"/{row['busy']:.0f}" for row in load_timeline(r)
    ))  # fmt: skip
    halves = pr["quiet"].get("halves_rps") or []
    if len(halves) == 2 and min(halves) < 0.7 * max(halves):
        w(f"WARNING: the quiet baseline was unsteady ({halves[0]} then {halves[1]} req/s): "
          "something else used the machine; do not trust the ratios of this run")  # fmt: skip
    pp = r["product_pages"]
    w(f"Product pages served (all clients): quiet {pp['quiet']['rps']} req/s, during sale "
      f"{pp['sale']['rps']} req/s (p99 {pp['sale']['latency'].get('p99_ms', '—')} ms), "
      f"ratio {pp['ratio']}")  # fmt: skip
    w("-" * 78)
    w(
        f"{'step':<16}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        "  statuses / errors"
    )
    for name, step in report["steps"].items():
        lat = step["latency"]
        codes = " ".join(f"{k}:{v}" for k, v in step["statuses"].items())
        extra = " ".join(f"{k}:{v}" for k, v in step["errors"].items())
        retried = f" retried:{step['retried_503_429']}" if step["retried_503_429"] else ""
        w(
            f"{name:<16}{lat.get('count', 0):>6}{lat.get('p50_ms', 0):>9}{lat.get('p95_ms', 0):>9}"
            f"{lat.get('p99_ms', 0):>9}{lat.get('max_ms', 0):>9}  {codes} {extra}{retried}"
        )
    w("-" * 78)
    w("Buyers' outcomes: " + ", ".join(f"{k} {v}" for k, v in report["outcomes"].items()))
    for k, v in report["outcome_samples"].items():
        w(f"  {k}: {v[:150]}")
    logs = report["server_log"]
    gunicorn = logs.get("gunicorn", {})
    w(f"gunicorn: {gunicorn.get('worker_restarts', 0)} worker restarts (WEB_MAX_REQUESTS), "
      f"{gunicorn.get('worker_timeouts', 0)} worker timeouts; load generator used "
      f"{r['client_cpu_share']:.0%} of one core")  # fmt: skip
    for name, info in logs.items():
        if info["tracebacks"] or info["errors"]:
            w(f"{name} log: {info['errors']} ERROR lines, {info['tracebacks']} tracebacks")
            for exc, n in list(info["by_exception"].items())[:5]:
                w(f"  {n} x {exc}")
    w("-" * 78)
    for name, target in report["targets"].items():
        mark = "PASS" if target["pass"] else "FAIL"
        w(f"  {mark}  {name:<34} {target['value']}{'  (hard)' if target['hard'] else ''}")
    w("=" * 78)
    w(f"Report: {path}")
    print("\n".join(out), flush=True)


# --- The run ------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = RESULTS_DIR / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    setup_log = run_dir / "setup.log"
    stack = Stack(run_dir)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Last resort: whatever happens, nothing this run started outlives its bound.
    bound = args.setup_timeout + args.max_seconds + 120

    def watchdog():
        print(f"\nbench-flash: over its {bound:.0f} s bound; stopping everything.", flush=True)
        stack.stop()
        os._exit(3)

    timer = threading.Timer(bound, watchdog)
    timer.daemon = True
    timer.start()
    try:
        return _run(args, stack, run_dir, setup_log, stamp)
    except SetupFailed as error:
        print(f"\nbench-flash: setup failed: {error}\nLogs: {run_dir}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench-flash: interrupted; stopping what it started.", file=sys.stderr)
        return 130
    finally:
        stack.stop()
        timer.cancel()


def _run(args, stack: Stack, run_dir: Path, setup_log: Path, stamp: str) -> int:
    from bench import load as load_module

    setup_started = time.monotonic()
    print(f"bench-flash {stamp}: logs in {run_dir}", flush=True)
    ensure_services()
    web_port, lb_port, stripe_port = free_port(), free_port(), free_port()
    checkout_port = free_port()
    host = f"127.0.0.1:{web_port}"
    stripe_base = f"http://127.0.0.1:{stripe_port}"
    var_dir = BENCH_DIR / ".var"
    var_dir.mkdir(exist_ok=True)
    keys = {"secret": "sk_test_bench", "publishable": "pk_test_bench", "webhook": "whsec_bench"}
    env = dict(os.environ)
    for name in ("DJANGO_DEBUG", "CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "ADMIN_URL"):
        env.pop(name, None)
    env.update({
        "DJANGO_ENV": "production",
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_URL": args.email_url,
        "DATABASE_URL": f"postgres://postgres@{PG_HOST}:{PG_PORT}/{args.database}",
        "REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{args.redis_db}",
        "CACHE_KEY_PREFIX": "bench",
        "SHOP_VAR_DIR": str(var_dir),
        "SHOP_BASE_URL": f"https://{host}",
        "STRIPE_SECRET_KEY": keys["secret"],
        "STRIPE_PUBLISHABLE_KEY": keys["publishable"],
        "STRIPE_WEBHOOK_SECRET": keys["webhook"],
        "STRIPE_API_BASE": stripe_base,
        "PAYMENTS_TEST_PROVIDER": "false",
        "HOST": "127.0.0.1",
        "PORT": str(web_port),
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    # seed_demo refuses production (it writes a known merchant password): seed as "local".
    local_env = dict(env, DJANGO_ENV="local")
    python = str(VENV_BIN / "python")

    print("Setting up", flush=True)
    reset_database(args.database, setup_log)
    flush_redis(args.redis_db)
    run_step("migrate", [python, "manage.py", "migrate", "--noinput", "-v", "0"], env,
             args.setup_timeout, setup_log)  # fmt: skip
    run_step(f"seed_demo --products {args.products}",
             [python, "manage.py", "seed_demo", "--products", str(args.products)],
             local_env, args.setup_timeout, setup_log)  # fmt: skip
    run_step("collectstatic", [python, "manage.py", "collectstatic", "--noinput", "-v", "0"],
             env, args.setup_timeout, setup_log)  # fmt: skip

    stack.start("localstripe", [str(VENV_BIN / "localstripe"), "--port", str(stripe_port),
                                "--from-scratch"], env)  # fmt: skip
    stack.start("lb", [python, str(BENCH_DIR / "lb.py"), "--port", str(lb_port),
                       "--upstream", f"http://{host}"], env)  # fmt: skip
    stack.start("gunicorn", [str(VENV_BIN / "gunicorn"), "-c", "shop/gunicorn.conf.py",
                             "shop.wsgi"], env)  # fmt: skip
    if args.checkout_pool:
        # The purchase path's own pool, as a load balancer routing /cart, /checkout, /orders and
        # /payments to other app servers would (docs/deploy.md): checkouts and browsing never
        # share a process, so neither waits for the other's interpreter lock.
        stack.start("gunicorn-checkout", [str(VENV_BIN / "gunicorn"), "-c",
                                          "shop/gunicorn.conf.py", "shop.wsgi"],
                    dict(env, PORT=str(checkout_port),
                         WEB_CONCURRENCY=str(args.checkout_pool)))  # fmt: skip
    stack.start("celery", [str(VENV_BIN / "celery"), "-A", "shop", "worker", "--loglevel=INFO",
                           "--concurrency", str(args.celery_concurrency), "-n",
                           f"bench-flash-{stamp}@%h", "--without-gossip", "--without-mingle"],
                env)  # fmt: skip
    auth = {"Authorization": f"Bearer {keys['secret']}"}
    wait_until("localstripe", lambda: http_get(f"{stripe_base}/v1/customers", 1, auth)[0] == 200,
               stack, 30)  # fmt: skip
    wait_until("gunicorn /healthz", lambda: http_get(f"http://{host}/healthz")[0] == 200,
               stack, 60)  # fmt: skip
    if args.checkout_pool:
        wait_until("the checkout pool",
                   lambda: http_get(f"http://127.0.0.1:{checkout_port}/healthz")[0] == 200,
                   stack, 60)  # fmt: skip
    wait_until(
        "the load balancer stand-in",
        lambda: http_get(f"http://127.0.0.1:{lb_port}/healthz")[0] == 200,
        stack,
        30,
    )
    celery_log = run_dir / "celery.log"
    wait_until("the Celery worker", lambda: " ready." in celery_log.read_text(errors="replace"),
               stack, 60)  # fmt: skip
    webhook_url = f"http://127.0.0.1:{lb_port}/payments/webhooks/stripe/"
    events = ["payment_intent.succeeded", "payment_intent.payment_failed",
              "payment_intent.canceled", "charge.refunded"]  # fmt: skip
    data = [("url", webhook_url), ("secret", keys["webhook"])]
    data += [(f"events[{i}]", e) for i, e in enumerate(events)]
    body = "&".join(f"{k}={urllib.request.quote(v, safe='')}" for k, v in data).encode()
    urllib.request.urlopen(
        urllib.request.Request(f"{stripe_base}/_config/webhooks/shop", data=body, method="POST"),
        timeout=5,
    ).read()
    print(f"  stack up: shop http://{host} (as https), localstripe {stripe_base}, webhooks -> "
          f"{webhook_url}", flush=True)  # fmt: skip

    lead = args.warmup_seconds + args.quiet_seconds + 2  # +2: this script's own start-up
    options = {
        "units": args.units, "price": args.price, "sale_price": args.sale_price,
        "per_customer_limit": args.per_customer_limit or None, "lead_seconds": lead,
        "sale_seconds": max(3600.0, args.max_seconds * 4), "sale": not args.no_sale,
    }  # fmt: skip
    out = run_step("setup_sale", [python, str(BENCH_DIR / "setup_sale.py"), json.dumps(options)],
                   env, 120, setup_log)  # fmt: skip
    setup = json.loads(out.strip().splitlines()[-1])
    if not setup["sale"] and not args.no_sale:
        print("  note: catalog.models has no Sale: running with plain limited stock", flush=True)
    setup_seconds = time.monotonic() - setup_started

    if args.seed is not None:
        import random

        random.seed(args.seed)
    config = SimpleNamespace(
        **vars(args), host=host, base_url=f"http://{host}", stripe_base=stripe_base,
        checkout_base_url=f"http://127.0.0.1:{checkout_port}" if args.checkout_pool else None,
        stripe_secret_key=keys["secret"], run_id=stamp.replace("-", ""),
        deadline=time.monotonic() + args.max_seconds,
    )  # fmt: skip
    config.per_customer_limit = (setup["sale"] or {}).get("per_customer_limit")
    if config.per_customer_limit is None:
        config.greedy_share = 0.0  # no limit to exercise
    config.quiet_seconds = min(args.quiet_seconds, max(1.0, setup["t0"] - time.time() - 1))
    print(f"Load: T0 at {datetime.fromtimestamp(setup['t0'], UTC):%H:%M:%S} UTC", flush=True)
    load = asyncio.run(load_module.run(config, setup, log=lambda m: print(m, flush=True)))

    # Let the last webhooks reach the worker (buyers already waited for theirs), then read.
    time.sleep(2)
    db = json.loads(
        run_step(
            "db_report",
            [python, str(BENCH_DIR / "db_report.py"), json.dumps(setup)],
            env,
            120,
            setup_log,
        )
    )
    check_stock = {"exit_code": None, "note": ""}
    if any(ROOT.glob("*/management/commands/check_stock.py")):
        done = subprocess.run([python, "manage.py", "check_stock"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        check_stock = {"exit_code": done.returncode,
                       "note": (done.stdout + done.stderr).strip()[-300:]}  # fmt: skip
    else:
        check_stock["note"] = "(manage.py check_stock does not exist yet)"
    stack.stop()  # flush the logs before reading them
    logs = {name: log_errors(run_dir / f"{name}.log") for name in ("gunicorn", "celery")}
    stack_info = {
        "stamp": stamp,
        "cpus": os.cpu_count(),
        "web_concurrency": int(os.environ.get("WEB_CONCURRENCY", max(2, os.cpu_count() or 1))),
        "web_threads": int(os.environ.get("WEB_THREADS", "8")),
        "checkout_pool": args.checkout_pool,
        "setup_seconds": round(setup_seconds, 1),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),  # fmt: skip
        "logs": str(run_dir),
    }
    report = build_report(args, setup, load, db, check_stock, logs, stack_info)
    path = run_dir / "report.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    shutil.copyfile(path, RESULTS_DIR / "latest.json")
    print_report(report, path)
    return 1 if report["hard_failure"] else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
