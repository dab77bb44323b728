"""Catch up on provider events that were never processed and payments whose events never came
(cron: every few minutes)."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from payments.exceptions import PaymentError
from payments.models import Payment
from payments.services import payments_reconcile
from shop.money import money_format

DEFAULT_OLDER_THAN_MINUTES = 15
LISTED_NUMBERS = 20


class Command(BaseCommand):
    help = (
        "Process provider events left unprocessed, ask the providers about payments still "
        "pending, and list the payments that need a person (then exit with status 1, so cron "
        "alerts). Safe to run again and beside the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-minutes",
            type=int,
            default=DEFAULT_OLDER_THAN_MINUTES,
            help="Only events received and payments started at least this many minutes ago, so "
            "work in flight is left to the workers and to customers paying right now "
            f"(default {DEFAULT_OLDER_THAN_MINUTES}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be done; change nothing (providers are still asked).",
        )

    def handle(self, *args, **options) -> None:
        minutes, dry_run = options["older_than_minutes"], options["dry_run"]
        if minutes < 1:
            # 0 would race the workers for events they are processing at this very moment.
            raise CommandError(f"--older-than-minutes must be at least 1, not {minutes}.")
        try:
            report = payments_reconcile(older_than=timedelta(minutes=minutes), dry_run=dry_run)
            fixed = _order_numbers(report.payments_fixed)
            flagged = list(
                Payment.objects.filter(pk__in=report.needs_human)
                .select_related("order")
                .order_by("created_at", "id")
            )
        except (PaymentError, DatabaseError) as exc:
            raise CommandError(f"Reconciling payments failed: {exc}") from exc

        events, payments = len(report.events_requeued), len(report.payments_fixed)
        age = f"older than {minutes} minute(s)"
        people = f"{len(flagged)} payment(s) need a person"
        if dry_run:
            self.stdout.write(
                f"Dry run, nothing changed. Would requeue {events} unprocessed provider "
                f"event(s) and update {payments} pending payment(s) from their provider"
                f"{_listed(fixed)} ({age}); {people}."
            )
        else:
            self.stdout.write(
                f"Requeued {events} unprocessed provider event(s) and updated {payments} pending "
                f"payment(s) from their provider{_listed(fixed)} ({age}); {people}."
            )
        for payment in flagged:
            self.stdout.write(f"Needs a person: {_described(payment)}")
        if flagged:
            raise CommandError(
                f"{people}: see the lines above, or the payments filtered by “needs attention” "
                "in the back office."
            )


def _order_numbers(payment_ids: list[int]) -> list[str]:
    numbers = dict(Payment.objects.filter(pk__in=payment_ids).values_list("pk", "order__number"))
    return [numbers[pk] for pk in payment_ids if pk in numbers]


def _listed(numbers: list[str]) -> str:
    if not numbers:
        return ""
    shown = ", ".join(numbers[:LISTED_NUMBERS])
    more = len(numbers) - LISTED_NUMBERS
    return f": {shown}" + (f" and {more} more" if more > 0 else "")


def _described(payment: Payment) -> str:
    received = money_format(payment.amount_received, payment.currency)
    refunded = money_format(payment.amount_refunded, payment.currency)
    reason = payment.attention_reason or "no reason recorded"
    return (
        f"order {payment.order.number}, payment {payment.pk} ({payment.provider} "
        f"{payment.provider_reference or 'without reference'}, {payment.get_status_display()}, "
        f"received {received}, refunded {refunded}): {reason}"
    )
