"""Payments, the provider events that move them, and refunds.

Invariants held by the database: amounts are never negative, a payment is never refunded for more
than it was paid, a provider's event id is stored once, and a provider's payment reference belongs
to one payment.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=12, decimal_places=2, **kwargs)


class Payment(models.Model):
    """One attempt to pay an order through a provider."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    provider = models.CharField(max_length=20)
    amount = _money()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    # The provider's id for this payment (a Stripe PaymentIntent id, a test-provider reference).
    provider_reference = models.CharField(max_length=100, blank=True)
    # What the provider's client-side code needs to confirm the payment (Stripe's client secret).
    client_secret = models.CharField(max_length=200, blank=True)
    amount_received = _money(default=0)
    amount_refunded = _money(default=0)
    # Set when something needs a person: amount mismatch, payment for a cancelled order, ...
    needs_attention = models.BooleanField(default=False)
    attention_reason = models.CharField(max_length=300, blank=True)
    # Who looked at a flagged payment, when, and what they concluded (the flag is then cleared).
    attention_resolved_at = models.DateTimeField(null=True, blank=True)
    attention_resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    attention_resolution = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="payment_status_created"),
            models.Index(
                fields=["created_at"], condition=Q(needs_attention=True), name="payment_attention"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_reference"],
                condition=~Q(provider_reference=""),
                name="payments_reference_unique_per_provider",
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0, amount_received__gte=0, amount_refunded__gte=0),
                name="payments_amounts_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=F("amount_received")),
                name="payments_refund_at_most_received",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_reference or self.pk} ({self.status})"

    @property
    def refundable(self):
        return self.amount_received - self.amount_refunded


class WebhookEvent(models.Model):
    """A provider's event, stored as received before anything is done with it."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Not processed yet"
        APPLIED = "applied", "Applied"
        IGNORED = "ignored", "Ignored (nothing to do)"
        FLAGGED = "flagged", "Needs a person"
        ERROR = "error", "Failed (will be retried)"

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    payload = models.JSONField()
    # What the shop acts on, as the provider's event said it (the raw event is in `payload`):
    # kept beside it so the event can be processed later, by a worker, without the request.
    payment_reference = models.CharField(max_length=100, blank=True)
    amount = _money(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    # For refund events: the provider's total refunded so far on the payment.
    amount_refunded = _money(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome, default=Outcome.PENDING)
    message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["received_at"], condition=Q(processed_at__isnull=True),
                name="webhook_unprocessed",
            ),
            models.Index(
                fields=["provider", "payment_reference"], name="webhook_payment_reference"
            ),
        ]  # fmt: skip
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="payments_event_once_per_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = _money()
    reason = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    provider_reference = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_refund_amount_gt_0"),
            models.UniqueConstraint(
                fields=["payment", "provider_reference"],
                condition=~Q(provider_reference=""),
                name="payments_refund_reference_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} of {self.payment_id} ({self.status})"
