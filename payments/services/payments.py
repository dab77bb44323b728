"""Starting payments and refunding them.

Invariants owned here:
- A provider is never called inside a database transaction: each service writes what it is about
  to do in one short transaction, calls the provider, and records the answer in another.
- An order has one provider payment per provider while it is being paid: a second start (another
  tab, a retry after a declined card) continues the same payment, under the order's row lock.
- Only an order awaiting payment can be paid; its payment is for exactly the order's total.
- A refund never exceeds what was received and not yet refunded, counting refunds asked for and
  not settled yet; this is checked under the payment's row lock, and a refused refund writes
  nothing.
- A refund is asked of the provider with an idempotency key of its own (`refund-<id>`), so a
  retried call cannot refund twice; a refund the provider refuses is kept, marked failed.
- The order follows the money: refunded when everything received is refunded, else partially
  refunded (a cancelled order stays cancelled).
"""

import logging
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from orders.models import Order
from orders.services import order_mark_refunded, transition_allowed
from payments import selectors
from payments.exceptions import (
    NotPayable,
    PaymentError,
    ProviderError,
    ProviderUnavailable,
    RefundRefused,
)
from payments.models import Payment, Refund
from payments.providers import StartResult, provider_get
from shop.money import MoneyError, money_format, money_round

logger = logging.getLogger(__name__)

REFUND_REASON_MAX_LENGTH = 200
ATTENTION_REASON_MAX_LENGTH = 300
FLAGGED_REFUND_REASON = "Paid after the order was cancelled."


# --- Starting a payment --------------------------------------------------------------------------


def _not_payable_message(order: Order) -> str:
    if order.status == Order.Status.CANCELLED:
        return f"Order {order.number} was cancelled, so it can no longer be paid."
    if order.status in (Order.Status.REFUNDED, Order.Status.PARTIALLY_REFUNDED):
        return f"Order {order.number} has been refunded and cannot be paid again."
    return f"Order {order.number} has been paid already."


def payment_start(
    *, order_id: int, provider_name: str, return_url: str
) -> tuple[Payment, StartResult]:
    """Start (or continue) paying an order with a provider; return the payment and where the
    customer goes next.

    The provider is given the payment with the reference it had from an earlier start, if any,
    and continues that provider payment rather than opening another. Raises NotPayable unless the
    order awaits payment, ProviderUnavailable, and ProviderError when the provider cannot be
    reached (the payment is then kept, unstarted, for the next try).
    """
    provider = provider_get(provider_name)
    with transaction.atomic():
        # The order's lock makes a concurrent second start wait, then find this payment.
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotPayable("That order does not exist.")
        if order.status != Order.Status.PENDING_PAYMENT:
            raise NotPayable(_not_payable_message(order))
        payment = selectors.payment_reusable_for_order(order_id=order.pk, provider=provider_name)
        if payment is None:
            payment = Payment.objects.create(
                order=order, provider=provider_name, amount=order.total, currency=order.currency
            )
    result = provider.start(payment=payment, return_url=return_url)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().select_related("order").get(pk=payment.pk)
        if payment.status == Payment.Status.SUCCEEDED:
            raise NotPayable(f"Order {payment.order.number} has been paid already.")
        if payment.status == Payment.Status.CANCELED:
            raise NotPayable("This payment was cancelled meanwhile. Please try again.")
        payment.status = Payment.Status.PENDING  # a failed payment is tried again
        payment.provider_reference = result.provider_reference[:100]
        payment.client_secret = result.client_secret[:200]
        payment.save(update_fields=["status", "provider_reference", "client_secret", "updated_at"])
    return payment, result


# --- Refunds -------------------------------------------------------------------------------------


def _lock_payment(payment_id: int) -> Payment:
    payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
    if payment is None:
        raise RefundRefused("That payment does not exist.")
    return payment


def _amount_parse(amount, currency: str) -> Decimal:
    try:
        value = Decimal(str(amount))
        rounded = money_round(value, currency)
    except (InvalidOperation, MoneyError, ValueError) as exc:
        raise RefundRefused(f"{amount!r} is not an amount.") from exc
    if rounded != value:
        raise RefundRefused(f"Give the amount in whole {currency} minor units (cents).")
    return rounded


def payment_refund(*, payment_id: int, amount: Decimal, reason: str, actor=None) -> Refund:
    """Refund `amount` of a payment through its provider; return the succeeded refund.

    Raises RefundRefused (and writes nothing) for an amount that is not positive or more than
    was paid and not yet refunded; raises RefundRefused with the provider's message (keeping the
    refund, marked failed) when the provider refuses.
    """
    existing = Payment.objects.filter(pk=payment_id).only("provider", "currency").first()
    if existing is None:
        raise RefundRefused("That payment does not exist.")
    try:
        provider = provider_get(existing.provider)
    except ProviderUnavailable as exc:
        raise RefundRefused(f"Refunds cannot be made now: {exc}") from exc
    amount = _amount_parse(amount, existing.currency)
    reason = (str(reason or "").strip() or "Refund")[:REFUND_REASON_MAX_LENGTH]
    created_by = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        payment = _lock_payment(payment_id)
        if amount <= 0:
            raise RefundRefused("The refund amount must be more than zero.")
        in_flight = selectors.payment_refunds_in_flight(payment_id=payment.pk)
        available = max(payment.refundable - in_flight, Decimal("0"))
        if payment.status != Payment.Status.SUCCEEDED or amount > available:
            raise RefundRefused(
                f"Cannot refund {money_format(amount, payment.currency)}: that is more than was "
                f"paid and not yet refunded ({money_format(available, payment.currency)})."
            )
        refund = Refund.objects.create(
            payment=payment, amount=amount, reason=reason, created_by=created_by
        )
    try:
        reference = provider.refund(
            payment=payment, amount=amount, reason=reason, idempotency_key=f"refund-{refund.pk}"
        )
    except ProviderError as exc:
        with transaction.atomic():
            Refund.objects.filter(pk=refund.pk, status=Refund.Status.PENDING).update(
                status=Refund.Status.FAILED, error=str(exc)[:2000]
            )
        logger.warning("Refund %s of payment %s refused: %s", refund.pk, payment.pk, exc)
        raise RefundRefused(f"The payment provider refused the refund: {exc}") from exc
    with transaction.atomic():
        payment = _lock_payment(payment_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status != Refund.Status.PENDING:
            return refund
        refund.status = Refund.Status.SUCCEEDED
        refund.provider_reference = str(reference)[:100]
        refund.save(update_fields=["status", "provider_reference", "updated_at"])
        # The provider's event about this refund may have been processed already; it left this
        # refund out of its total while it was pending, so adding it here counts it once.
        payment.amount_refunded = min(payment.amount_refunded + amount, payment.amount_received)
        payment.save(update_fields=["amount_refunded", "updated_at"])
        _order_follow_refund(payment, amount=amount, reason=reason, actor=created_by)
    return refund


def _order_follow_refund(payment: Payment, *, amount: Decimal, reason: str, actor) -> None:
    full = payment.amount_refunded >= payment.amount_received
    target = Order.Status.REFUNDED if full else Order.Status.PARTIALLY_REFUNDED
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    if not transition_allowed(order.status, target):
        return  # e.g. a payment for a cancelled order: the order stays cancelled
    order_mark_refunded(
        order_id=order.pk,
        partial=not full,
        actor=actor,
        note=f"Refunded {money_format(amount, payment.currency)}: {reason}",
    )


def payment_refund_flagged(*, payment_id: int) -> Refund | None:
    """Refund in full a payment received for a cancelled order; None if there is nothing (left)
    to refund. Safe to run twice: the second run finds nothing refundable."""
    payment = Payment.objects.select_related("order").filter(pk=payment_id).first()
    if (
        payment is None
        or not payment.needs_attention
        or payment.status != Payment.Status.SUCCEEDED
        or payment.order.status != Order.Status.CANCELLED
    ):
        return None
    amount = payment.refundable - selectors.payment_refunds_in_flight(payment_id=payment.pk)
    if amount <= 0:
        return None
    try:
        refund = payment_refund(payment_id=payment.pk, amount=amount, reason=FLAGGED_REFUND_REASON)
    except RefundRefused as exc:
        if isinstance(exc.__cause__, ProviderError):
            # Not retried automatically: a timeout may hide a refund that went through. A
            # person checks with the provider.
            _attention_note(payment.pk, f"Automatic refund failed ({exc.__cause__}).")
        return None
    _attention_note(payment.pk, f"Refunded {money_format(amount, payment.currency)} automatically.")
    return refund


def _attention_note(payment_id: int, note: str) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        keep = ATTENTION_REASON_MAX_LENGTH - len(note) - 1
        payment.attention_reason = f"{payment.attention_reason[:keep]} {note}".strip()
        payment.save(update_fields=["attention_reason", "updated_at"])


@transaction.atomic
def payment_attention_resolve(*, payment_id: int, note: str, actor=None) -> Payment:
    """Clear a payment's "needs attention" flag once a person has dealt with it, recording who,
    when and what they concluded (reconciliation stops listing it)."""
    note = " ".join(str(note or "").split())
    if not note:
        raise PaymentError("Say what was done about this payment.")
    payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
    if payment is None:
        raise PaymentError("That payment does not exist.")
    if not payment.needs_attention:
        raise PaymentError(f"Payment {payment.pk} does not need attention.")
    payment.needs_attention = False
    payment.attention_resolved_at = timezone.now()
    payment.attention_resolved_by = (
        actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    )
    payment.attention_resolution = note[:300]
    payment.save(
        update_fields=[
            "needs_attention",
            "attention_resolved_at",
            "attention_resolved_by",
            "attention_resolution",
            "updated_at",
        ]
    )
    return payment
