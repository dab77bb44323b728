"""Reconcile stock, sale allotments, holds and ordered units; exit 1 on drift (cron alerts)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from orders.stock_check import stock_check

LISTED_ROWS = 50


class Command(BaseCommand):
    help = (
        "Check that every variant's stock, every sale's allotment, the open holds and the "
        "ordered units reconcile exactly. Read-only; exits with status 1 and lists the rows "
        "involved when anything drifted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rows",
            type=int,
            default=LISTED_ROWS,
            help=f"List at most this many drifted rows (default {LISTED_ROWS}).",
        )

    def handle(self, *args, **options) -> None:
        try:
            report = stock_check()
        except DatabaseError as exc:
            raise CommandError(f"Checking stock failed: {exc}") from exc
        for line in report.drift[: max(options["rows"], 0)]:
            self.stdout.write(f"DRIFT {line}")
        more = len(report.drift) - max(options["rows"], 0)
        if more > 0:
            self.stdout.write(f"… and {more} more drifted row(s).")
        summary = (
            f"{report.variants_checked} variant(s), {report.sale_items_checked} sale item(s); "
            f"{report.holds_open} open hold(s) with {report.units_held} unit(s) "
            f"({report.holds_due_for_release} due for release), "
            f"{report.units_sold_in_sales} sale unit(s) sold"
        )
        if report.drift:
            raise CommandError(f"Stock drift in {len(report.drift)} row(s): {summary}.")
        self.stdout.write(f"Stock reconciles: {summary}.")
