"""Reads for payments, webhook events and refunds.

A customer reaches a payment only through its order's unguessable link (the order is looked up
with `orders.selectors.order_get_by_token` first) or through the test provider's unguessable
reference, never by an id from a URL.
"""

from datetime import datetime
from decimal import Decimal

from django.db.models import Max, QuerySet, Sum

from payments.models import Payment, Refund, WebhookEvent


def payment_get_by_reference(*, provider: str, reference: str) -> Payment:
    """Return the provider's payment with this reference and its order (raises
    Payment.DoesNotExist)."""
    if not reference or "\x00" in reference:
        raise Payment.DoesNotExist
    return Payment.objects.select_related("order").get(
        provider=provider, provider_reference=reference
    )


def payment_latest_for_order(*, order_id: int) -> Payment | None:
    return Payment.objects.filter(order_id=order_id).order_by("-created_at", "-id").first()


def payment_reusable_for_order(*, order_id: int, provider: str) -> Payment | None:
    """Return the order's payment with this provider that a new attempt should continue (one
    provider payment per order): pending, or failed (a declined card can be tried again)."""
    return (
        Payment.objects.filter(
            order_id=order_id,
            provider=provider,
            status__in=[Payment.Status.PENDING, Payment.Status.FAILED],
            needs_attention=False,
        )
        .order_by("-created_at", "-id")
        .first()
    )


def payment_refunds_in_flight(*, payment_id: int) -> Decimal:
    """Return the amount of the payment's refunds asked of the provider and not settled yet."""
    total = Refund.objects.filter(payment_id=payment_id, status=Refund.Status.PENDING).aggregate(
        total=Sum("amount")
    )["total"]
    return total or Decimal("0")


def payment_refunded_reported(*, provider: str, reference: str) -> Decimal | None:
    """Return the highest refunded total the provider has reported for the payment (in any
    stored event, processed or not), or None if it has reported none."""
    return WebhookEvent.objects.filter(
        provider=provider, payment_reference=reference, amount_refunded__isnull=False
    ).aggregate(total=Max("amount_refunded"))["total"]


def payments_pending(*, created_before: datetime) -> QuerySet[Payment]:
    """Pending payments started at the provider before `created_before`, oldest first."""
    return (
        Payment.objects.filter(status=Payment.Status.PENDING, created_at__lt=created_before)
        .exclude(provider_reference="")
        .order_by("created_at", "id")
    )


def payments_needing_attention() -> QuerySet[Payment]:
    return Payment.objects.filter(needs_attention=True).order_by("created_at", "id")


def refunds_pending(*, created_before: datetime) -> QuerySet[Refund]:
    return Refund.objects.filter(
        status=Refund.Status.PENDING, created_at__lt=created_before
    ).order_by("created_at", "id")


def webhook_events_unprocessed(*, received_before: datetime) -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.filter(
        processed_at__isnull=True, received_at__lt=received_before
    ).order_by("received_at", "id")
