"""Reconciliation: the safety net for events that were never processed and payments whose
events never came.

Invariants owned here:
- Nothing is applied here that a webhook would not apply: a payment's state fetched from its
  provider becomes a stored event with a deterministic id ("reconcile-<payment>-<status>") and
  goes through the same processing, so running this twice, or beside workers processing the real
  events, changes nothing more than once (event and payment row locks, stored-once events).
- Only what is older than `older_than` is touched: younger events belong to their task, younger
  payments to a customer who may be paying right now.
- A dry run writes nothing (it may ask providers, which only reads).
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from orders.exceptions import OrderError
from payments import selectors
from payments.exceptions import PaymentError
from payments.models import Payment, Refund, WebhookEvent
from payments.providers import EventType, ProviderEvent, provider_get
from payments.services.webhooks import webhook_event_process, webhook_event_store

logger = logging.getLogger(__name__)

ATTENTION_REASON_MAX_LENGTH = 300

_EVENT_FOR_STATUS = {
    Payment.Status.SUCCEEDED: EventType.PAYMENT_SUCCEEDED,
    Payment.Status.FAILED: EventType.PAYMENT_FAILED,
    Payment.Status.CANCELED: EventType.PAYMENT_CANCELED,
}


@dataclass
class ReconcileReport:
    # Ids of the stored events handed to a worker again (or processed here if it was down).
    events_requeued: list[int] = field(default_factory=list)
    # Ids of the pending payments brought up to date from their provider.
    payments_fixed: list[int] = field(default_factory=list)
    # Ids of the payments flagged for a person.
    needs_human: list[int] = field(default_factory=list)
    dry_run: bool = False


def payments_reconcile(*, older_than: timedelta, dry_run: bool) -> ReconcileReport:
    """Process stored events left unprocessed, bring pending payments up to date from their
    providers, flag refunds left unsettled, and list the payments a person must look at."""
    cutoff = timezone.now() - older_than
    report = ReconcileReport(dry_run=dry_run)
    stale_events = selectors.webhook_events_unprocessed(received_before=cutoff)
    for event_pk in stale_events.values_list("pk", flat=True):
        report.events_requeued.append(event_pk)
        if not dry_run:
            _requeue(event_pk)
    for payment in selectors.payments_pending(created_before=cutoff):
        if _payment_catch_up(payment, dry_run=dry_run):
            report.payments_fixed.append(payment.pk)
    for refund in selectors.refunds_pending(created_before=cutoff):
        if not dry_run:
            _flag_unsettled_refund(refund)
    report.needs_human = list(selectors.payments_needing_attention().values_list("pk", flat=True))
    return report


def _requeue(event_pk: int) -> None:
    from payments.tasks import webhook_event_process as task

    try:
        task.delay(event_pk)
        return
    except Exception:
        logger.warning(
            "Broker unavailable; processing webhook event %s here.", event_pk, exc_info=True
        )
    try:
        webhook_event_process(event_pk=event_pk)
    except (DatabaseError, PaymentError, OrderError):
        logger.warning("Processing webhook event %s failed.", event_pk, exc_info=True)


def _payment_catch_up(payment: Payment, *, dry_run: bool) -> bool:
    """Ask the provider what became of a pending payment and apply it; return whether it
    changed (or, in a dry run, would change)."""
    try:
        state = provider_get(payment.provider).fetch(payment=payment)
    except PaymentError as exc:  # provider switched off or unreachable: try next time
        logger.warning("Could not fetch payment %s from %s: %s", payment.pk, payment.provider, exc)
        return False
    event_type = _EVENT_FOR_STATUS.get(state.status)
    if event_type is None:
        return False  # still pending at the provider
    if dry_run:
        return True
    event = ProviderEvent(
        event_id=f"reconcile-{payment.pk}-{state.status}",
        event_type=event_type,
        payload={
            "source": "reconcile",
            "status": state.status,
            "amount_received": str(state.amount_received),
            "amount_refunded": str(state.amount_refunded),
        },
        payment_reference=payment.provider_reference,
        amount=state.amount_received if state.status == Payment.Status.SUCCEEDED else None,
        currency=payment.currency,
        amount_refunded=state.amount_refunded if state.amount_refunded > 0 else None,
    )
    stored, created = webhook_event_store(
        provider_name=payment.provider, event=event, enqueue=False
    )
    try:
        outcome = webhook_event_process(event_pk=stored.pk)
    except (DatabaseError, PaymentError, OrderError):
        logger.warning("Reconciling payment %s failed.", payment.pk, exc_info=True)
        return False
    return created and outcome != WebhookEvent.Outcome.IGNORED


def _flag_unsettled_refund(refund: Refund) -> None:
    """A refund still pending long after it was asked for: the process died between the
    provider's answer and its record. Only the provider knows; a person checks."""
    note = f"Refund {refund.pk} is still pending: check it with the provider."
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        if note in payment.attention_reason:
            return
        keep = ATTENTION_REASON_MAX_LENGTH - len(note) - 1
        payment.needs_attention = True
        payment.attention_reason = f"{payment.attention_reason[:keep]} {note}".strip()
        payment.save(update_fields=["needs_attention", "attention_reason", "updated_at"])
