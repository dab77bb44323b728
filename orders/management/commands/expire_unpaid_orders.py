"""Cancel orders left unpaid too long and return their stock (cron: every few minutes)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from orders.exceptions import OrderError
from orders.services import orders_expire_unpaid

LISTED_NUMBERS = 20


class Command(BaseCommand):
    help = (
        "Cancel orders still awaiting payment after a time, returning their stock and voucher "
        "uses. Safe to run again and beside checkouts, payments and another run of itself."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes",
            type=int,
            default=None,
            help="Cancel orders placed more than this many minutes ago and still unpaid "
            "(default SHOP_ORDER_PAYMENT_MINUTES, now "
            f"{settings.SHOP_ORDER_PAYMENT_MINUTES}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be cancelled; change nothing."
        )

    def handle(self, *args, **options) -> None:
        minutes = options["minutes"]
        if minutes is None:
            minutes = settings.SHOP_ORDER_PAYMENT_MINUTES
        if minutes < 1:
            # 0 would cancel orders whose customers are paying at this very moment.
            raise CommandError(f"--minutes must be at least 1, not {minutes}.")
        dry_run = options["dry_run"]
        try:
            numbers = orders_expire_unpaid(older_than=timedelta(minutes=minutes), dry_run=dry_run)
        except (OrderError, DatabaseError) as exc:
            raise CommandError(f"Expiring unpaid orders failed: {exc}") from exc

        what = (
            f"{len(numbers)} unpaid order(s) older than {minutes} minute(s) or past their sale hold"
        )
        listed = numbers_list(numbers)
        if dry_run:
            self.stdout.write(f"Dry run, nothing changed. Would cancel {what}{listed}.")
        else:
            self.stdout.write(f"Cancelled {what} and returned their stock{listed}.")


def numbers_list(numbers: list[str]) -> str:
    if not numbers:
        return ""
    shown = ", ".join(numbers[:LISTED_NUMBERS])
    more = len(numbers) - LISTED_NUMBERS
    return f": {shown}" + (f" and {more} more" if more > 0 else "")
