"""The order state machine, and every change of an order's status.

    pending_payment ──> paid ──> fulfilled ──> shipped ──> delivered
           │              └──────────┴────────────┴───────────┴──> refunded / partially_refunded
           └──> cancelled   (by the customer, the merchant, or expiry)

Invariants owned here:
- `TRANSITIONS` is the only definition of which status may follow which; anything else raises
  InvalidTransition and changes nothing.
- Every change locks the order row, re-checks the status after the lock, and writes an
  OrderEvent (who, from, to, why) in the same transaction.
- Cancelling a pending order returns its stock, its sale units and its voucher use exactly once:
  the second of two concurrent cancellations finds the order already cancelled.
- Paying an order turns its sale holds into sold units; an unpaid order past its time (its
  `expires_at`, earlier for sale orders) is cancelled by cron and, lazily, by the next checkout
  that wants its sale units.
- The customer's email for a change is recorded in the same transaction (see services.emails).
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import ProductVariant
from catalog.selectors import sale_offers
from catalog.services import sale_hold_release, sale_hold_sell
from orders import selectors
from orders.exceptions import InvalidTransition, OrderError
from orders.models import Order, OrderEvent, OutboxEmail, Voucher, VoucherRedemption
from orders.services.emails import outbox_record

S = Order.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.FULFILLED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.FULFILLED: frozenset({S.SHIPPED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

EMAIL_FOR_STATUS = {
    S.PAID: OutboxEmail.Kind.ORDER_PAID,
    S.SHIPPED: OutboxEmail.Kind.ORDER_SHIPPED,
    S.CANCELLED: OutboxEmail.Kind.ORDER_CANCELLED,
}


def transition_allowed(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def order_can_ship(status: str) -> bool:
    """Whether `order_mark_shipped` accepts an order in this status (a paid order is packed on
    the way)."""
    return transition_allowed(status, S.SHIPPED) or (
        transition_allowed(status, S.FULFILLED) and transition_allowed(S.FULFILLED, S.SHIPPED)
    )


def _lock(order_id: int) -> Order:
    try:
        return Order.objects.select_for_update().get(pk=order_id)
    except Order.DoesNotExist:
        raise OrderError("That order does not exist.") from None


def _transition(order: Order, to_status: str, *, actor=None, message: str) -> Order:
    """Move a locked order to `to_status`, with its event and email; raise if not allowed."""
    if not transition_allowed(order.status, to_status):
        raise InvalidTransition(
            f"Order {order.number} is {order.get_status_display().lower()} and cannot become "
            f"{S(to_status).label.lower()}.",
            from_status=order.status,
            to_status=to_status,
        )
    from_status = order.status
    order.status = to_status
    now = timezone.now()
    fields = ["status", "updated_at"]
    for status, stamp in (
        (S.PAID, "paid_at"),
        (S.SHIPPED, "shipped_at"),
        (S.CANCELLED, "cancelled_at"),
    ):
        if to_status == status:
            setattr(order, stamp, now)
            fields.append(stamp)
    order.save(update_fields=fields)
    OrderEvent.objects.create(
        order=order,
        from_status=from_status,
        to_status=to_status,
        message=message[:300],
        actor=actor if actor is not None and getattr(actor, "is_authenticated", False) else None,
    )
    kind = EMAIL_FOR_STATUS.get(to_status)
    if kind is not None:
        outbox_record(kind=kind, order=order, to_email=order.email)
    return order


@transaction.atomic
def order_mark_paid(*, order_id: int, actor=None, note: str = "") -> Order:
    """Record that the order is paid (called by the payments app once a payment succeeds); its
    sale units are then sold, no longer held."""
    order = _lock(order_id)
    _transition(order, S.PAID, actor=actor, message=note or "Payment received.")
    for hold_id in _sale_hold_ids(order):
        sale_hold_sell(hold_id=hold_id)
    return order


def _sale_hold_ids(order: Order) -> list[int]:
    return list(
        order.lines.filter(sale_hold__isnull=False)
        .order_by("variant_id")
        .values_list("sale_hold_id", flat=True)
    )


@transaction.atomic
def order_mark_fulfilled(*, order_id: int, actor=None) -> Order:
    order = _lock(order_id)
    return _transition(order, S.FULFILLED, actor=actor, message="Packed and ready to ship.")


@transaction.atomic
def order_mark_shipped(*, order_id: int, carrier: str, tracking_number: str, actor=None) -> Order:
    """Record the shipment with its carrier and tracking number (a paid order is packed on the
    way, so a merchant can ship straight from 'paid')."""
    carrier, tracking_number = str(carrier or "").strip(), str(tracking_number or "").strip()
    if not carrier or not tracking_number:
        raise OrderError("Give the carrier and the tracking number of the shipment.")
    order = _lock(order_id)
    if order.status == S.PAID:
        _transition(order, S.FULFILLED, actor=actor, message="Packed and ready to ship.")
    order.carrier, order.tracking_number = carrier[:60], tracking_number[:100]
    order.save(update_fields=["carrier", "tracking_number"])
    return _transition(
        order,
        S.SHIPPED,
        actor=actor,
        message=f"Shipped with {carrier}, tracking {tracking_number}.",
    )


@transaction.atomic
def order_mark_delivered(*, order_id: int, actor=None) -> Order:
    order = _lock(order_id)
    return _transition(order, S.DELIVERED, actor=actor, message="Delivered.")


@transaction.atomic
def order_mark_refunded(*, order_id: int, partial: bool, actor=None, note: str = "") -> Order:
    """Record a refund (called by the payments app once the provider has refunded)."""
    order = _lock(order_id)
    to_status = S.PARTIALLY_REFUNDED if partial else S.REFUNDED
    return _transition(order, to_status, actor=actor, message=note or S(to_status).label + ".")


@transaction.atomic
def order_cancel(*, order_id: int, reason: str, actor=None) -> Order:
    """Cancel an order awaiting payment: return its stock, its sale units and its voucher use,
    exactly once."""
    order = _lock(order_id)
    _transition(order, S.CANCELLED, actor=actor, message=f"Cancelled: {reason}")
    lines = sorted(order.lines.all(), key=lambda line: line.variant_id)
    for line in lines:  # ascending variant id, as placement: no deadlock between the two
        ProductVariant.objects.filter(pk=line.variant_id).update(stock=F("stock") + line.quantity)
    for line in lines:  # then the sale units, back on sale (each hold exactly once)
        if line.sale_hold_id is not None:
            sale_hold_release(hold_id=line.sale_hold_id)
    redemption = VoucherRedemption.objects.filter(order=order).first()
    if redemption is not None:
        Voucher.objects.filter(pk=redemption.voucher_id, used_count__gt=0).update(
            used_count=F("used_count") - 1
        )
        redemption.delete()
    return order


def order_cancel_by_customer(*, order: Order, user) -> Order:
    """Let a customer cancel their own order while it awaits payment."""
    if order.status != S.PENDING_PAYMENT:
        raise InvalidTransition(
            "This order can no longer be cancelled here; contact us instead.",
            from_status=order.status,
            to_status=S.CANCELLED,
        )
    return order_cancel(order_id=order.pk, reason="by the customer", actor=user)


def orders_expire_unpaid(*, older_than: timedelta, dry_run: bool = False) -> list[str]:
    """Cancel every order left unpaid for longer than `older_than`, or past its own time (a
    sale order's hold); return their numbers.

    Each order is cancelled in its own short transaction, after locking and re-checking it, so
    this is safe beside checkouts, payments and another run of itself.
    """
    cutoff = timezone.now() - older_than
    candidates = list(
        selectors.orders_pending_older_than(cutoff=cutoff).order_by("placed_at", "id")
        .values_list("pk", "number")
    )  # fmt: skip
    if dry_run:
        return [number for _, number in candidates]
    expired = []
    for pk, number in candidates:
        try:
            order_cancel(order_id=pk, reason="not paid in time (expired)")
        except OrderError:
            continue  # paid, cancelled or deleted in the meantime (InvalidTransition, not found)
        expired.append(number)
    return expired


def expired_sale_holds_release(*, variant_ids) -> list[str]:
    """Cancel the unpaid orders past their time that hold sale units of these variants, so the
    units go back on sale now (each in its own transaction, locked and re-checked); return the
    numbers of the orders cancelled."""
    offers = sale_offers(variant_ids=list(variant_ids), live_only=True)
    if not offers:
        return []
    due = selectors.orders_holding_expired_sale_units(
        sale_item_ids=[offer.item_id for offer in offers.values()]
    ).values_list("pk", "number")
    released = []
    for pk, number in due:
        try:
            order_cancel(order_id=pk, reason="not paid in time (its sale units went back on sale)")
        except OrderError:
            continue  # paid or cancelled meanwhile
        released.append(number)
    return released
