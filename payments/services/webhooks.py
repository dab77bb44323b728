"""Provider events: receive them (verify, store, enqueue) and process them (apply the facts they
report to the payment and bring the order in line).

Invariants owned here:
- Nothing is stored for a request whose signature is missing, forged, tampered with or stale.
- An event is stored before anything is done with it, once per (provider, event id): a second
  delivery returns the stored row and is not processed again.
- An event is processed at most once: processing locks the event row, re-checks `processed_at`
  after the lock, and records the outcome in the same transaction as its effects.
- Rows are locked event -> payment -> order (payment_refund locks payment -> order), so two
  writers never wait on each other in a circle.
- An order is marked paid only when the provider received exactly its total in its currency;
  otherwise the payment is flagged for a person and the order is left alone.
- Facts only move forward: a succeeded payment stays succeeded whatever arrives later; the refunded
  total is the provider's total (never added to) and never goes down.
- The order ends where the facts put it, whatever order the events arrive in (a refund reported
  before the payment: paid, then refunded).
- A payment for a cancelled order is flagged and refunded in full after the commit.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from orders.models import Order
from orders.services import order_mark_paid, order_mark_refunded, transition_allowed
from payments import selectors
from payments.exceptions import SignatureInvalid
from payments.models import Payment, WebhookEvent
from payments.providers import EventType, ProviderEvent, provider_get
from shop.money import money_format

logger = logging.getLogger(__name__)

Outcome = WebhookEvent.Outcome
MESSAGE_MAX_LENGTH = 2000
REASON_MAX_LENGTH = 300


# --- Receiving -----------------------------------------------------------------------------------


def webhook_receive(*, provider_name: str, body: bytes, headers: dict) -> tuple[WebhookEvent, bool]:
    """Verify and store a provider's webhook, and enqueue its processing after the commit.

    Returns the stored event and whether this call stored it (False for a duplicate delivery,
    which is not processed again). Raises ProviderUnavailable for a provider that is switched
    off, SignatureInvalid for a request that is forged, tampered with, stale or unreadable; then
    nothing is stored.
    """
    provider = provider_get(provider_name)
    try:
        event = provider.parse_webhook(body=body, headers=headers)
    except SignatureInvalid:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        # A provider's parser choking on a malformed body: the sender's fault, never a 500.
        raise SignatureInvalid(f"The event cannot be read: {exc}") from exc
    return webhook_event_store(provider_name=provider_name, event=event)


def webhook_event_store(
    *, provider_name: str, event: ProviderEvent, enqueue: bool = True
) -> tuple[WebhookEvent, bool]:
    """Store a verified event once per (provider, event id); return it and whether it is new.

    A new event's processing is enqueued after the commit (unless `enqueue` is False: the caller
    processes it itself).
    """
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.create(
                provider=provider_name,
                event_id=event.event_id[:100],
                event_type=event.event_type[:100],
                payload=event.payload,
                payment_reference=event.payment_reference[:100],
                amount=event.amount,
                currency=event.currency[:3].upper(),
                amount_refunded=event.amount_refunded,
            )
            if enqueue:
                transaction.on_commit(lambda: _enqueue(stored.pk))
    except IntegrityError:
        # Delivered before (or at this very moment by a concurrent request, now committed).
        existing = WebhookEvent.objects.get(provider=provider_name, event_id=event.event_id[:100])
        return existing, False
    return stored, True


def _enqueue(event_pk: int) -> None:
    """Hand the event to a worker; if the broker is down, payments_reconcile processes it."""
    from payments.tasks import webhook_event_process as task

    try:
        task.delay(event_pk)
    except Exception:
        # Runs after the commit: the event is stored, and the provider must get its 2xx.
        logger.warning(
            "Could not enqueue webhook event %s; payments_reconcile will process it.",
            event_pk,
            exc_info=True,
        )


# --- Processing ----------------------------------------------------------------------------------


@dataclass
class _Applied:
    message: str
    flagged: bool = False
    after_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class _Result:
    outcome: str
    message: str
    after_commit: list[Callable[[], None]] = field(default_factory=list)


def webhook_event_process(*, event_pk: int) -> str:
    """Apply a stored event to its payment and order, once; return the outcome.

    Everything happens in one transaction holding the event's row lock, so a second run (a
    redelivered task, reconcile) waits, then finds the event processed. A database error rolls
    the effects back, is counted on the event and re-raised, so the task retries it.
    """
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().filter(pk=event_pk).first()
            if event is None:
                logger.warning("Webhook event %s does not exist; nothing to process.", event_pk)
                return Outcome.IGNORED
            if event.processed_at is not None:
                return event.outcome
            result = _event_apply(event)
            event.outcome = result.outcome
            event.message = result.message[:MESSAGE_MAX_LENGTH]
            event.attempts += 1
            event.processed_at = timezone.now()
            event.save(update_fields=["outcome", "message", "attempts", "processed_at"])
            for callback in result.after_commit:
                transaction.on_commit(callback)
    except Exception as exc:
        _event_record_error(event_pk, exc)
        raise
    logger.info("Webhook event %s (%s): %s", event_pk, event.event_type, event.outcome)
    return event.outcome


def _event_record_error(event_pk: int, exc: Exception) -> None:
    """Count the failed attempt on the event, in a transaction of its own (the attempt's own
    transaction has rolled back)."""
    message = f"{type(exc).__name__}: {exc}"[:MESSAGE_MAX_LENGTH]
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.select_for_update().filter(pk=event_pk).first()
            if event is not None and event.processed_at is None:
                event.attempts += 1
                event.outcome, event.message = Outcome.ERROR, message
                event.save(update_fields=["attempts", "outcome", "message"])
    except DatabaseError:
        logger.warning("Could not record the failure of webhook event %s.", event_pk)
    logger.warning("Processing webhook event %s failed: %s", event_pk, message)


_PAYMENT_EVENTS = {
    EventType.PAYMENT_SUCCEEDED,
    EventType.PAYMENT_FAILED,
    EventType.PAYMENT_CANCELED,
    EventType.CHARGE_REFUNDED,
}


def _event_apply(event: WebhookEvent) -> _Result:
    if event.event_type not in _PAYMENT_EVENTS:
        return _Result(Outcome.IGNORED, f"Nothing to do for a {event.event_type} event.")
    if not event.payment_reference:
        return _Result(Outcome.IGNORED, "The event names no payment.")
    payment = (
        Payment.objects.select_for_update()
        .filter(provider=event.provider, provider_reference=event.payment_reference)
        .first()
    )
    if payment is None:
        return _Result(
            Outcome.IGNORED, f"No payment of this shop has the reference {event.payment_reference}."
        )
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    return _payment_facts_apply(payment=payment, order=order, event=event)


def _facts(payment: Payment) -> tuple:
    return payment.status, payment.amount_received, payment.amount_refunded, payment.needs_attention


def _payment_facts_apply(*, payment: Payment, order: Order, event: WebhookEvent) -> _Result:
    """Apply what `event` reports to the locked payment, then bring the locked order to the
    state the payment's facts imply. The outcome is FLAGGED when a person must look, APPLIED
    when anything changed, IGNORED when nothing did."""
    before = _facts(payment)
    if event.event_type == EventType.PAYMENT_SUCCEEDED:
        applied = _succeeded(payment, order, event)
    elif event.event_type in (EventType.PAYMENT_FAILED, EventType.PAYMENT_CANCELED):
        applied = _failed(payment, event)
    else:
        applied = _Applied("")
    refunded_before = payment.amount_refunded
    _refunded_total_update(payment)
    refund_changed = payment.amount_refunded != refunded_before
    if event.event_type == EventType.CHARGE_REFUNDED:
        if payment.status != Payment.Status.SUCCEEDED:
            applied.message = "Refund noted; it is applied once the payment succeeds."
        else:
            refunded = money_format(payment.amount_refunded, payment.currency)
            applied.message = f"Refunded in all: {refunded}."
    payment.save()
    order, moved = _order_align(payment, order, refund_changed=refund_changed)
    message = applied.message
    if moved:
        message = f"{message} Order {order.number} is now {order.get_status_display().lower()}."
    if applied.flagged:
        outcome = Outcome.FLAGGED
    elif moved or _facts(payment) != before:
        outcome = Outcome.APPLIED
    else:
        outcome = Outcome.IGNORED
    return _Result(outcome, message.strip(), applied.after_commit)


def _succeeded(payment: Payment, order: Order, event: WebhookEvent) -> _Applied:
    was_succeeded = payment.status == Payment.Status.SUCCEEDED
    amount = event.amount if event.amount is not None else payment.amount
    currency = (event.currency or payment.currency).upper()
    payment.status = Payment.Status.SUCCEEDED
    payment.amount_received = amount
    problems = []
    if currency != order.currency.upper() or amount != order.total:
        problems.append(
            f"Received {money_format(amount, currency)} but order {order.number} is for "
            f"{money_format(order.total, order.currency)}: not marked paid."
        )
    after_commit = []
    if order.status == Order.Status.CANCELLED:
        problems.append(f"Paid after order {order.number} was cancelled: refunding in full.")
        if not was_succeeded:
            after_commit.append(lambda: _enqueue_refund(payment.pk))
    elif not problems and order.status != Order.Status.PENDING_PAYMENT and not was_succeeded:
        paid_by_another = (
            Payment.objects.filter(order_id=order.pk, status=Payment.Status.SUCCEEDED)
            .exclude(pk=payment.pk)
            .exists()
        )
        if paid_by_another:
            problems.append(f"Order {order.number} was already paid by another payment.")
    if problems:
        if not payment.needs_attention:  # a repeated event keeps what a person may have added
            payment.attention_reason = " ".join(problems)[:REASON_MAX_LENGTH]
        payment.needs_attention = True
        return _Applied(" ".join(problems), flagged=True, after_commit=after_commit)
    if was_succeeded:
        return _Applied("Payment already recorded as succeeded.")
    return _Applied(f"Payment of {money_format(amount, currency)} received.")


def _failed(payment: Payment, event: WebhookEvent) -> _Applied:
    failed = event.event_type == EventType.PAYMENT_FAILED
    status = Payment.Status.FAILED if failed else Payment.Status.CANCELED
    if payment.status == Payment.Status.SUCCEEDED:
        return _Applied("Arrived after the payment succeeded: it stays succeeded.")
    if payment.status in (status, Payment.Status.CANCELED):
        return _Applied(f"Payment already {payment.status}.")
    payment.status = status
    return _Applied("Payment failed." if failed else "Payment canceled.")


def _refunded_total_update(payment: Payment) -> None:
    """Set the payment's refunded total to what the provider has reported (in any stored event),
    never lower than it is and never above what was received.

    Refunds this shop has asked for and not yet settled are left out of the provider's total:
    `payment_refund` adds them itself when the provider confirms, so they are not counted twice
    when the provider's event about them is processed first.
    """
    reported = selectors.payment_refunded_reported(
        provider=payment.provider, reference=payment.provider_reference
    )
    if reported is None:
        return
    in_flight = selectors.payment_refunds_in_flight(payment_id=payment.pk)
    total = min(reported - in_flight, payment.amount_received)
    payment.amount_refunded = max(payment.amount_refunded, total, Decimal("0"))


def _order_align(payment: Payment, order: Order, *, refund_changed: bool) -> tuple[Order, bool]:
    """Move the locked order to where the payment's facts put it; return it and whether it
    moved. A flagged payment never marks an order paid."""
    if payment.status != Payment.Status.SUCCEEDED:
        return order, False
    moved = False
    label = f"{payment.provider} {payment.provider_reference}"
    if order.status == Order.Status.PENDING_PAYMENT:
        if payment.needs_attention:
            return order, False
        order = order_mark_paid(order_id=order.pk, note=f"Payment received ({label}).")
        moved = True
    if payment.amount_refunded <= 0:
        return order, moved
    full = payment.amount_refunded >= payment.amount_received
    target = Order.Status.REFUNDED if full else Order.Status.PARTIALLY_REFUNDED
    if order.status == target and not (refund_changed and not full):
        return order, moved
    if not transition_allowed(order.status, target):
        return order, moved
    refunded = money_format(payment.amount_refunded, payment.currency)
    order = order_mark_refunded(
        order_id=order.pk, partial=not full, note=f"Refunded {refunded} in all ({label})."
    )
    return order, True


def _enqueue_refund(payment_pk: int) -> None:
    from payments.tasks import payment_refund_for_flagged

    try:
        payment_refund_for_flagged.delay(payment_pk)
    except Exception:
        logger.warning(
            "Could not enqueue the refund of flagged payment %s; it is listed for a person.",
            payment_pk,
            exc_info=True,
        )
