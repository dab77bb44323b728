"""Send the recorded emails no task sent (cron: every few minutes)."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from orders.services.emails import outbox_sweep

DEFAULT_OLDER_THAN_MINUTES = 5
DEFAULT_LIMIT = 500


class Command(BaseCommand):
    help = (
        "Send the outbox emails still pending a few minutes after they were recorded (their "
        "task was lost: broker down, worker killed). Never sends one email twice; safe to run "
        "again and concurrently."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-minutes",
            type=int,
            default=DEFAULT_OLDER_THAN_MINUTES,
            help="Only emails recorded at least this many minutes ago, so the sweep leaves fresh "
            f"ones to their task (default {DEFAULT_OLDER_THAN_MINUTES}; 0 sends every pending "
            "email now).",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=DEFAULT_LIMIT,
            help=f"Send at most this many in one run (default {DEFAULT_LIMIT}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report how many are pending; send nothing."
        )

    def handle(self, *args, **options) -> None:
        minutes, limit = options["older_than_minutes"], options["limit"]
        if minutes < 0:
            raise CommandError(f"--older-than-minutes cannot be negative, not {minutes}.")
        if limit < 1:
            raise CommandError(f"--limit must be at least 1, not {limit}.")
        try:
            result = outbox_sweep(
                older_than=timedelta(minutes=minutes), limit=limit, dry_run=options["dry_run"]
            )
        except DatabaseError as exc:
            raise CommandError(f"Sending pending emails failed: {exc}") from exc

        if result.dry_run:
            self.stdout.write(
                f"Dry run, nothing sent. Would send {result.pending} pending email(s) "
                f"older than {minutes} minute(s)."
            )
            return
        self.stdout.write(
            f"Sent {len(result.sent)} of {result.pending} pending email(s) older than "
            f"{minutes} minute(s); {len(result.failed)} failed and will be retried, "
            f"{len(result.given_up)} given up, {len(result.not_needed)} no longer needed, "
            f"{result.skipped} already sent or being sent."
            + (" Stopped early: the mail server is failing." if result.stopped_early else "")
        )
        if result.failed or result.given_up:
            raise CommandError(
                f"{len(result.failed) + len(result.given_up)} email(s) could not be sent; "
                "see the outbox's last errors."
            )
