"""Micro-benchmark: how sale units should be taken from one hot sale item under contention.

What it measures
    T threads, each with its own PostgreSQL connection (Django's per-thread connection, the
    shop's real settings and models, so the SQL is the ORM's own), take one unit at a time from
    a single `SaleItem` until it sells out (or until --seconds runs out). Every take is its own
    short transaction, as a checkout's would be. The strategies compared:

    A  cond-update   what the shop does (catalog.services.sale_units_take): one conditional
                     UPDATE ... SET taken = taken + 1 WHERE id = X AND taken <= allotment - 1.
    B  for-update    pessimistic read-modify-write: SELECT ... FOR UPDATE, check in Python, UPDATE.
    C  naive-save    read without a lock, check in Python, `item.taken += 1; item.save()`: the
                     classic lost update. Buyers are told they got a unit the counter never shows.
    C2 naive-incr    read without a lock, check in Python, then an unconditional
                     `taken = taken + 1`: only the CHECK (0 <= taken <= allotment) stops it.
    D  redis-gate    DECR a Redis counter first, then A in PostgreSQL (INCR back when PostgreSQL
                     refuses): the "equally strong mechanism" candidate. It still needs A for
                     exactness: Redis alone is neither durable nor transactional with the order.
    E  variant-lock  the placement pattern of orders/services/checkout.py: SELECT ... FOR UPDATE
                     on the (equally hot) variant row, then A, then commit, so the variant lock is
                     held for one extra round trip on every take.

    The strategies run interleaved (A B C C2 D E, A B C C2 D E, ...) --attempts times, the sale
    item being reset (taken = 0, VACUUM) before every run, and each figure is the median over
    the attempts. The database (--database, dropped and re-created, migrated with
    `manage.py migrate`) and the Redis key (db --redis-db, one key deleted afterwards) are the
    bench's own; everything is on loopback.

How to read it
    takes/s is units taken per second of wall time (all threads together); "vs A" is the ratio
    to A's median measured in the same run: read ratios, not absolute figures, on a shared
    2-core machine where this client's threads share the cores with PostgreSQL (and Python's
    GIL). p50/p99 are the latency of one take (its whole transaction, lock waits included).
    sold is what buyers were told they got (worst attempt), taken is the row's counter at the
    end; oversold = sold - allotment and lost = sold - taken must be 0 for A, B, D and E (the
    bench exits 1 otherwise). "refused" counts the takes that raised (CHECK violations as
    IntegrityError, lock or statement timeouts) summed over the attempts. The JSON report under
    bench/results/allocation-<timestamp>.json holds every attempt. A run that hits --seconds
    before selling out (marked *) is measured over that window: its rate is still the rate.
    C usually never sells out, since stale writes move its counter backwards: its oversold
    figure is then only what it reached before the cap.

Run it as `.venv/bin/python bench/allocation.py [--threads 32] [--units 2000] [--attempts 3]
[--seconds 4]`; --strategies picks a subset (e.g. `--strategies A,D`); no round starts once
the whole run would pass --budget seconds (85), so the default run stays under ~90 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
import redis

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
SAFE_STRATEGIES = ("A", "B", "D", "E")  # must never oversell nor lose an update


class Outcome(StrEnum):
    """What one take attempt came to."""

    TAKEN = "taken"
    SOLD_OUT = "sold_out"  # refused because nothing is left: the thread stops
    INTEGRITY_ERROR = "integrity_error"  # the CHECK constraint refused the write
    DB_ERROR = "db_error"  # another database error (lock or statement timeout, ...)


@dataclass(frozen=True)
class Target:
    """The hot rows every thread competes for."""

    sale_item_id: int
    variant_id: int
    allotment: int
    redis_key: str


@dataclass
class ThreadStats:
    """One thread's record of one run."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ns: list[int] = field(default_factory=list)
    first_error: str = ""


@dataclass
class RunResult:
    """One run of one strategy (one attempt)."""

    strategy: str
    attempt: int
    seconds: float
    sold: int  # takes the buyers were told succeeded
    taken: int  # the row's counter at the end
    allotment: int
    sold_out: bool  # every thread stopped on "nothing left" (not on the time cap)
    takes_per_second: float
    p50_ms: float
    p99_ms: float
    outcomes: dict[str, int]
    first_error: str

    @property
    def oversold(self) -> int:
        return max(self.sold - self.allotment, 0)

    @property
    def lost(self) -> int:
        return self.sold - self.taken


# --- The strategies ----------------------------------------------------------------------------
#
# Each takes one unit in its own transaction and says what happened. Django is set up before
# any of them runs (they import the models lazily for that reason).

Take = Callable[[Target, "redis.Redis | None"], Outcome]


def _conditional_update(target: Target) -> int:
    """The shop's take: one conditional UPDATE; return the rows changed (1 or 0)."""
    from django.db.models import F

    from catalog.models import SaleItem

    return SaleItem.objects.filter(pk=target.sale_item_id, taken__lte=F("allotment") - 1).update(
        taken=F("taken") + 1
    )


def take_conditional_update(target: Target, _: redis.Redis | None) -> Outcome:
    """A: the conditional UPDATE, alone in its transaction."""
    from django.db import transaction

    with transaction.atomic():
        return Outcome.TAKEN if _conditional_update(target) else Outcome.SOLD_OUT


def take_for_update(target: Target, _: redis.Redis | None) -> Outcome:
    """B: lock the row, read it, check in Python, write the new count."""
    from django.db import transaction

    from catalog.models import SaleItem

    with transaction.atomic():
        taken, allotment = (
            SaleItem.objects.select_for_update()
            .values_list("taken", "allotment")
            .get(pk=target.sale_item_id)
        )
        if taken >= allotment:
            return Outcome.SOLD_OUT
        SaleItem.objects.filter(pk=target.sale_item_id).update(taken=taken + 1)
        return Outcome.TAKEN


def take_naive_save(target: Target, _: redis.Redis | None) -> Outcome:
    """C: read without a lock, check, write back the count read plus one (lost updates)."""
    from django.db import transaction

    from catalog.models import SaleItem

    with transaction.atomic():
        item = SaleItem.objects.only("taken", "allotment").get(pk=target.sale_item_id)
        if item.taken >= item.allotment:
            return Outcome.SOLD_OUT
        item.taken += 1
        item.save(update_fields=["taken"])
        return Outcome.TAKEN


def take_naive_increment(target: Target, _: redis.Redis | None) -> Outcome:
    """C2: read without a lock, check, then an unconditional increment (the CHECK refuses the
    ones that would pass the allotment)."""
    from django.db import transaction
    from django.db.models import F

    from catalog.models import SaleItem

    with transaction.atomic():
        taken, allotment = SaleItem.objects.values_list("taken", "allotment").get(
            pk=target.sale_item_id
        )
        if taken >= allotment:
            return Outcome.SOLD_OUT
        SaleItem.objects.filter(pk=target.sale_item_id).update(taken=F("taken") + 1)
        return Outcome.TAKEN


def take_redis_gate(target: Target, gate: redis.Redis | None) -> Outcome:
    """D: DECR in Redis first; only a buyer who got through runs A (INCR back if PG refuses)."""
    from django.db import transaction

    assert gate is not None
    if gate.decr(target.redis_key) < 0:
        gate.incr(target.redis_key)
        return Outcome.SOLD_OUT
    try:
        with transaction.atomic():
            changed = _conditional_update(target)
    except BaseException:
        gate.incr(target.redis_key)
        raise
    if not changed:
        gate.incr(target.redis_key)
        return Outcome.SOLD_OUT
    return Outcome.TAKEN


def take_under_variant_lock(target: Target, _: redis.Redis | None) -> Outcome:
    """E: placement's pattern: lock the variant row, then A, then commit."""
    from django.db import transaction

    from catalog.models import ProductVariant

    with transaction.atomic():
        list(
            ProductVariant.objects.select_for_update()
            .filter(pk=target.variant_id)
            .values_list("pk", flat=True)
        )
        return Outcome.TAKEN if _conditional_update(target) else Outcome.SOLD_OUT


STRATEGIES: dict[str, tuple[str, Take]] = {
    "A": ("cond-update (shop)", take_conditional_update),
    "B": ("select for update", take_for_update),
    "C": ("naive read+save", take_naive_save),
    "C2": ("naive read+incr", take_naive_increment),
    "D": ("redis gate + A", take_redis_gate),
    "E": ("variant lock + A", take_under_variant_lock),
}


# --- Setting up --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/allocation.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    a = p.add_argument
    a("--threads", type=int, default=32, help="buyers taking units at once (32)")
    a("--units", type=int, default=2000, help="units allotted to the hot sale item (2000)")
    a("--attempts", type=int, default=3, help="interleaved rounds; figures are medians (3)")
    a("--seconds", type=float, default=4.0, help="cap on one run's length, in seconds (4)")
    a(
        "--strategies",
        default=",".join(STRATEGIES),
        help=f"comma-separated, run in this order ({','.join(STRATEGIES)})",
    )
    a(
        "--budget",
        type=float,
        default=85.0,
        help="start no further round once the run would pass this many seconds (85)",
    )
    a("--database", default="shop_bench_alloc", help="PostgreSQL database, re-created")
    a("--redis-db", type=int, default=13, help="Redis db number for the gate's key (13)")
    a("--keep-db", action="store_true", help="keep the database afterwards (dropped otherwise)")
    args = p.parse_args(argv)
    args.strategies = [s.strip().upper() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        p.error(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
    if args.threads < 1 or args.units < 1 or args.attempts < 1 or args.seconds <= 0:
        p.error("--threads, --units, --attempts and --seconds must be positive")
    return args


def admin_execute(sql: str) -> None:
    """Run one statement on the server's `postgres` database, outside a transaction."""
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True,
        connect_timeout=5,
    ) as conn:  # fmt: skip
        conn.execute(sql)  # type: ignore[arg-type]


def database_prepare(name: str) -> None:
    """Drop and re-create the bench's database, then migrate it with the shop's migrations."""
    admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_execute(f'CREATE DATABASE "{name}"')
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"migrate failed:\n{done.stdout}\n{done.stderr}")


def django_environment(database: str) -> None:
    """Point this process (and `migrate`) at the bench's database, with the shop's settings."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DJANGO_ENV": "local",
        "DATABASE_URL": f"postgres://postgres@{PG_HOST}:{PG_PORT}/{database}",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64),
        "PYTHONPATH": str(ROOT),
    })  # fmt: skip
    os.environ.pop("REDIS_URL", None)  # the shop's cache is not used; the gate has its own key
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def target_create(units: int) -> Target:
    """Create the hot variant, a live sale and its sale item with `units` allotted."""
    from django.db import transaction
    from django.utils import timezone

    from catalog.models import Category, Product, ProductVariant, Sale, SaleItem

    now = timezone.now()
    with transaction.atomic():
        category = Category.objects.create(name="Bench", slug="bench-alloc")
        product = Product.objects.create(
            category=category, name="Hot item", slug="bench-alloc-hot", is_active=True
        )
        variant = ProductVariant.objects.create(
            product=product, sku="BENCH-ALLOC-1", price=Decimal("49.00"), stock=units
        )
        sale = Sale.objects.create(
            name="Bench allocation", starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=1),
        )  # fmt: skip
        item = SaleItem.objects.create(
            sale=sale, variant=variant, sale_price=Decimal("19.00"), allotment=units
        )
    return Target(
        sale_item_id=item.pk,
        variant_id=variant.pk,
        allotment=units,
        redis_key=f"bench:allocation:{os.getpid()}:{item.pk}:left",
    )


def target_reset(target: Target, gate: redis.Redis) -> None:
    """Put every unit back on sale and vacuum the hot rows' dead versions away."""
    from django.db import connection

    from catalog.models import SaleItem

    SaleItem.objects.filter(pk=target.sale_item_id).update(taken=0)
    with connection.cursor() as cursor:  # autocommit: VACUUM runs outside a transaction
        cursor.execute("VACUUM catalog_saleitem, catalog_productvariant")
    gate.set(target.redis_key, target.allotment)


# --- Running -----------------------------------------------------------------------------------


def worker(
    take: Take,
    target: Target,
    redis_db: int,
    start: threading.Barrier,
    clock_box: list[float],
    stats: ThreadStats,
) -> None:
    """Connect, wait for every other thread, then take units until sold out or out of time."""
    from django.db import DatabaseError, IntegrityError, connection

    gate = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db, socket_timeout=5)
    try:
        connection.ensure_connection()
        gate.ping()
        start.wait()  # its action has set clock_box = [start time, deadline]
        clock = time.perf_counter_ns
        end = clock_box[1]
        while time.perf_counter() < end:
            began = clock()
            try:
                outcome = take(target, gate)
            except IntegrityError as error:
                outcome = Outcome.INTEGRITY_ERROR
                stats.first_error = stats.first_error or str(error).splitlines()[0]
            except DatabaseError as error:
                outcome = Outcome.DB_ERROR
                stats.first_error = stats.first_error or str(error).splitlines()[0]
            stats.latencies_ns.append(clock() - began)
            stats.outcomes[outcome] += 1
            if outcome is Outcome.SOLD_OUT:
                break
    finally:
        gate.close()
        connection.close()


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return float(sorted_values[rank])


def run_once(
    key: str, attempt: int, target: Target, args: argparse.Namespace, gate: redis.Redis
) -> RunResult:
    """Reset the item, run one strategy with every thread, and read the counter back."""
    from catalog.models import SaleItem

    target_reset(target, gate)
    take = STRATEGIES[key][1]
    stats = [ThreadStats() for _ in range(args.threads)]
    clock_box = [0.0, 0.0]

    def started() -> None:
        """Run once every thread is connected, just before they are all released."""
        clock_box[0] = time.perf_counter()
        clock_box[1] = clock_box[0] + args.seconds

    start = threading.Barrier(args.threads, action=started, timeout=60)
    threads = [
        threading.Thread(
            target=worker, args=(take, target, args.redis_db, start, clock_box, s), daemon=True
        )
        for s in stats
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - clock_box[0]
    outcomes: Counter[str] = Counter()
    latencies: list[int] = []
    for s in stats:
        outcomes.update(s.outcomes)
        latencies.extend(s.latencies_ns)
    latencies.sort()
    sold = outcomes[Outcome.TAKEN]
    taken = SaleItem.objects.values_list("taken", flat=True).get(pk=target.sale_item_id)
    return RunResult(
        strategy=key,
        attempt=attempt,
        seconds=round(seconds, 3),
        sold=sold,
        taken=taken,
        allotment=target.allotment,
        sold_out=outcomes[Outcome.SOLD_OUT] == args.threads,
        takes_per_second=round(sold / seconds, 1) if seconds > 0 else 0.0,
        p50_ms=round(percentile(latencies, 0.50) / 1e6, 3),
        p99_ms=round(percentile(latencies, 0.99) / 1e6, 3),
        outcomes={str(k): v for k, v in sorted(outcomes.items())},
        first_error=next((s.first_error for s in stats if s.first_error), ""),
    )


# --- Reporting ---------------------------------------------------------------------------------


def summarise(key: str, runs: list[RunResult], baseline: float | None) -> dict[str, Any]:
    """Medians over one strategy's attempts, and the worst correctness figures."""
    rate = statistics.median(r.takes_per_second for r in runs)
    refused = sum(
        r.outcomes.get(Outcome.INTEGRITY_ERROR, 0) + r.outcomes.get(Outcome.DB_ERROR, 0)
        for r in runs
    )
    worst = max(runs, key=lambda r: (r.oversold, r.lost, r.sold))
    return {
        "strategy": key,
        "label": STRATEGIES[key][0],
        "attempts": len(runs),
        "takes_per_second": round(rate, 1),
        "takes_per_second_range": [
            min(r.takes_per_second for r in runs),
            max(r.takes_per_second for r in runs),
        ],
        "vs_A": round(rate / baseline, 2) if baseline else None,
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 3),
        "seconds": round(statistics.median(r.seconds for r in runs), 2),
        "sold_out_every_time": all(r.sold_out for r in runs),
        "sold_worst": worst.sold,
        "taken_worst": worst.taken,
        "allotment": worst.allotment,
        "oversold_max": max(r.oversold for r in runs),
        "lost_max": max(r.lost for r in runs),
        "integrity_errors": sum(r.outcomes.get(Outcome.INTEGRITY_ERROR, 0) for r in runs),
        "db_errors": sum(r.outcomes.get(Outcome.DB_ERROR, 0) for r in runs),
        "refused": refused,
        "first_error": next((r.first_error for r in runs if r.first_error), ""),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The compact, fixed-width table printed at the end."""
    head = (
        f"{'':3}{'strategy':<20}{'takes/s':>9}{'(min-max)':>14}{'vs A':>6}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'s':>6}{'sold/taken/allot':>19}{'over':>6}{'lost':>6}{'refused':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        low, high = r["takes_per_second_range"]
        vs_a = f"{r['vs_A']:.2f}" if r["vs_A"] is not None else "-"
        seconds = f"{r['seconds']:.1f}" + ("" if r["sold_out_every_time"] else "*")
        counts = f"{r['sold_worst']}/{r['taken_worst']}/{r['allotment']}"
        lines.append(
            f"{r['strategy']:<3}{r['label']:<20}{r['takes_per_second']:>9.0f}"
            f"{f'({low:.0f}-{high:.0f})':>14}{vs_a:>6}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}"
            f"{seconds:>6}{counts:>19}{r['oversold_max']:>6}{r['lost_max']:>6}"
            f"{r['refused']:>8}"
        )
    lines.append(
        "medians of the attempts; sold/taken/allot, over and lost from the worst attempt; "
        "refused summed; * some attempt hit --seconds before selling out"
    )
    return "\n".join(lines)


def server_facts() -> dict[str, Any]:
    """PostgreSQL's version and the settings that shape lock waits, for the report."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('lock_timeout'), "
            "current_setting('statement_timeout'), current_setting('synchronous_commit'), "
            "current_setting('transaction_isolation')"
        )
        version, lock_timeout, statement_timeout, sync_commit, isolation = cursor.fetchone()
    return {
        "postgresql": version,
        "lock_timeout": lock_timeout,
        "statement_timeout": statement_timeout,
        "synchronous_commit": sync_commit,
        "isolation": isolation,
    }


# --- Main --------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    django_environment(args.database)
    gate = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=args.redis_db, socket_timeout=5)
    gate.ping()
    print(f"allocation bench {stamp}: setting up database {args.database!r}", flush=True)
    database_prepare(args.database)

    import django

    django.setup()
    from django.db import connections

    target = target_create(args.units)
    facts = server_facts()
    runs: list[RunResult] = []
    round_seconds = 0.0  # the longest round so far, to keep the whole run within --budget
    try:
        for attempt in range(1, args.attempts + 1):
            if attempt > 1 and time.perf_counter() - began + round_seconds > args.budget:
                print(f"  stopping after {attempt - 1} rounds: --budget {args.budget:.0f} s")
                break
            round_began = time.perf_counter()
            for key in args.strategies:
                result = run_once(key, attempt, target, args, gate)
                runs.append(result)
                print(
                    f"  round {attempt} {key:<2} {result.takes_per_second:>8.0f} takes/s "
                    f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:6.2f} ms "
                    f"{result.seconds:5.2f} s sold {result.sold}/{result.taken}/"
                    f"{result.allotment} {dict(result.outcomes)}",
                    flush=True,
                )
            round_seconds = max(round_seconds, time.perf_counter() - round_began)
    finally:
        gate.delete(target.redis_key)
        gate.close()
        connections.close_all()
        if not args.keep_db:
            admin_execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')

    baseline_runs = [r for r in runs if r.strategy == "A"]
    baseline = (
        statistics.median(r.takes_per_second for r in baseline_runs) if baseline_runs else None
    )
    rows = [
        summarise(key, [r for r in runs if r.strategy == key], baseline) for key in args.strategies
    ]
    unsafe = [
        r["strategy"]
        for r in rows
        if r["strategy"] in SAFE_STRATEGIES and (r["oversold_max"] or r["lost_max"])
    ]
    report = {
        "bench": "allocation",
        "stamp": stamp,
        "command": " ".join([".venv/bin/python", "bench/allocation.py", *argv]),
        "options": {
            "threads": args.threads,
            "units": args.units,
            "attempts": args.attempts,
            "seconds": args.seconds,
            "strategies": args.strategies,
            "database": args.database,
            "redis_db": args.redis_db,
        },  # fmt: skip
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "django": django.get_version(),
            **facts,
        },
        "summary": rows,
        "rounds": max((r.attempt for r in runs), default=0),
        "runs": [asdict(r) | {"oversold": r.oversold, "lost": r.lost} for r in runs],
        "unsafe": unsafe,
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"allocation-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(
        f"{args.threads} threads, {args.units} units, {report['rounds']} interleaved rounds, "
        f"PostgreSQL {facts['postgresql']} on {os.cpu_count()} CPUs"
    )
    print(table(rows))
    print(f"report: {path.relative_to(ROOT)} (total {report['total_seconds']} s)")
    if unsafe:
        print(f"FAIL: {', '.join(unsafe)} oversold or lost updates", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
