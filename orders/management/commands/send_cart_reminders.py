"""Send one reminder for each idle cart with a known email (cron: hourly)."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from orders.services.emails import carts_send_reminders


class Command(BaseCommand):
    help = (
        "Email one reminder for each open cart with an email address and items, left untouched "
        "for a time. A cart is never reminded twice; safe to run again and concurrently."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--hours",
            type=int,
            default=None,
            help="Remind carts untouched for more than this many hours "
            f"(default SHOP_CART_REMINDER_HOURS, now {settings.SHOP_CART_REMINDER_HOURS}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report which carts would be reminded; send nothing.",
        )

    def handle(self, *args, **options) -> None:
        hours = options["hours"]
        if hours is None:
            hours = settings.SHOP_CART_REMINDER_HOURS
        if hours < 1:
            # 0 would email customers who are still shopping.
            raise CommandError(f"--hours must be at least 1, not {hours}.")
        dry_run = options["dry_run"]
        try:
            cart_ids = carts_send_reminders(idle_for=timedelta(hours=hours), dry_run=dry_run)
        except DatabaseError as exc:
            raise CommandError(f"Sending cart reminders failed: {exc}") from exc

        what = f"{len(cart_ids)} cart(s) idle for more than {hours} hour(s)"
        if dry_run:
            self.stdout.write(f"Dry run, nothing sent. Would remind {what}.")
        else:
            self.stdout.write(f"Queued a reminder for {what}.")
