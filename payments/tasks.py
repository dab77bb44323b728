"""Celery tasks of the payments app: thin, take ids, safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from payments import services
from payments.exceptions import ProviderError


# A lost database connection or an unreachable provider is retried after about 5 s, 10 s, 20 s,
# ... (with jitter, at most 10 minutes apart); whatever still fails is left unprocessed and picked
# up by payments_reconcile.
@shared_task(acks_late=True, autoretry_for=(OperationalError, ProviderError), retry_backoff=5,
             retry_backoff_max=600, max_retries=8)  # fmt: skip
def webhook_event_process(event_pk: int) -> str:
    """Apply a stored provider event (does nothing if it was processed already)."""
    return services.webhook_event_process(event_pk=event_pk)


# Provider errors are not retried: a timeout may hide a refund that went through, so the payment
# stays flagged for a person instead.
@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=30,
             retry_backoff_max=600, max_retries=5)  # fmt: skip
def payment_refund_for_flagged(payment_pk: int) -> int | None:
    """Refund in full a payment received for a cancelled order; return the refund's id (None if
    there was nothing left to refund)."""
    refund = services.payment_refund_flagged(payment_id=payment_pk)
    return refund.pk if refund is not None else None
