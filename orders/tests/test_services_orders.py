"""The order state machine: every transition, its event and email, cancellation, expiry, numbers."""

import itertools
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone

from accounts.tests.factories import UserFactory
from catalog.models import ProductVariant
from orders import services
from orders.exceptions import InvalidTransition, OrderError
from orders.models import Order, OrderEvent, OutboxEmail, Voucher, VoucherRedemption
from orders.services.numbers import ALPHABET, order_number_generate
from orders.services.orders import TRANSITIONS, transition_allowed
from orders.tests.factories import (
    CartFactory,
    CartLineFactory,
    VoucherFactory,
    checkout_ready,
    place,
)

pytestmark = pytest.mark.django_db

S = Order.Status
ALL_STATUSES = list(S)


def _placed(*, stock: int = 10, quantity: int = 2, voucher_code: str = "", email=None) -> Order:
    """An order awaiting payment for one line, placed through the checkout."""
    cart = CartFactory(**({"email": email} if email else {}))
    CartLineFactory(cart=cart, quantity=quantity, variant__stock=stock)
    return place(checkout_ready(cart, voucher_code=voucher_code))


def _in_status(status: str) -> Order:
    """A placed order moved straight to `status` (as if its history had happened)."""
    order = _placed()
    Order.objects.filter(pk=order.pk).update(status=status)
    order.refresh_from_db()
    return order


def _state(order: Order) -> dict:
    """Everything a status change may write, to prove a refusal wrote none of it."""
    row = Order.objects.get(pk=order.pk)
    return {
        "status": row.status,
        "paid_at": row.paid_at,
        "shipped_at": row.shipped_at,
        "cancelled_at": row.cancelled_at,
        "carrier": row.carrier,
        "tracking_number": row.tracking_number,
        "events": list(OrderEvent.objects.filter(order=order).values_list("pk", flat=True)),
        "outbox": list(OutboxEmail.objects.order_by("pk").values_list("kind", flat=True)),
        "stock": dict(ProductVariant.objects.values_list("pk", "stock")),
        "voucher_uses": dict(Voucher.objects.values_list("pk", "used_count")),
        "redemptions": VoucherRedemption.objects.count(),
    }


# One service per target status (pending_payment is only ever the first status: no service).
SERVICE_FOR_STATUS = {
    S.PAID: lambda order, actor: services.order_mark_paid(order_id=order.pk, actor=actor),
    S.FULFILLED: lambda order, actor: services.order_mark_fulfilled(order_id=order.pk, actor=actor),
    S.SHIPPED: lambda order, actor: services.order_mark_shipped(
        order_id=order.pk, carrier="DHL", tracking_number="JJD0001", actor=actor
    ),
    S.DELIVERED: lambda order, actor: services.order_mark_delivered(order_id=order.pk, actor=actor),
    S.CANCELLED: lambda order, actor: services.order_cancel(
        order_id=order.pk, reason="customer asked", actor=actor
    ),
    S.REFUNDED: lambda order, actor: services.order_mark_refunded(
        order_id=order.pk, partial=False, actor=actor
    ),
    S.PARTIALLY_REFUNDED: lambda order, actor: services.order_mark_refunded(
        order_id=order.pk, partial=True, actor=actor
    ),
}
MESSAGE_FOR_STATUS = {
    S.PAID: "Payment received.",
    S.FULFILLED: "Packed and ready to ship.",
    S.SHIPPED: "Shipped with DHL, tracking JJD0001.",
    S.DELIVERED: "Delivered.",
    S.CANCELLED: "Cancelled: customer asked",
    S.REFUNDED: "Refunded.",
    S.PARTIALLY_REFUNDED: "Partially refunded.",
}
EMAIL_FOR_STATUS = {
    S.PAID: "order_paid",
    S.SHIPPED: "order_shipped",
    S.CANCELLED: "order_cancelled",
}


# --- The table -----------------------------------------------------------------------------------


def test_the_transition_table_is_the_documented_pipeline():
    expected = {
        S.PENDING_PAYMENT: {S.PAID, S.CANCELLED},
        S.PAID: {S.FULFILLED, S.REFUNDED, S.PARTIALLY_REFUNDED},
        S.FULFILLED: {S.SHIPPED, S.REFUNDED, S.PARTIALLY_REFUNDED},
        S.SHIPPED: {S.DELIVERED, S.REFUNDED, S.PARTIALLY_REFUNDED},
        S.DELIVERED: {S.REFUNDED, S.PARTIALLY_REFUNDED},
        S.PARTIALLY_REFUNDED: {S.REFUNDED, S.PARTIALLY_REFUNDED},
        S.CANCELLED: set(),
        S.REFUNDED: set(),
    }

    assert expected == TRANSITIONS
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(S, S)))
def test_transition_allowed_answers_from_the_table(from_status, to_status):
    assert transition_allowed(from_status, to_status) is (to_status in TRANSITIONS[from_status])
    assert transition_allowed("no-such-status", to_status) is False


# --- Every pair through the services ------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (from_status, to_status)
        for from_status, to_status in itertools.product(S, S)
        if to_status in SERVICE_FOR_STATUS
        # Shipping straight from "paid" packs on the way: tested on its own below.
        and (from_status, to_status) != (S.PAID, S.SHIPPED)
    ],
)
def test_every_status_change_follows_the_table(from_status, to_status):
    order = _in_status(from_status)
    merchant = UserFactory(is_staff=True)
    before = _state(order)

    if transition_allowed(from_status, to_status):
        result = SERVICE_FOR_STATUS[to_status](order, merchant)

        assert result.status == to_status
        after = _state(order)
        assert after["status"] == to_status
        assert list(
            OrderEvent.objects.filter(order=order)
            .exclude(pk__in=before["events"])
            .values_list("from_status", "to_status", "actor", "message")
        ) == [(from_status, to_status, merchant.pk, MESSAGE_FOR_STATUS[to_status])]
        new_emails = after["outbox"][len(before["outbox"]) :]
        assert new_emails == (
            [EMAIL_FOR_STATUS[to_status]] if to_status in EMAIL_FOR_STATUS else []
        )
    else:
        with pytest.raises(InvalidTransition) as error:
            SERVICE_FOR_STATUS[to_status](order, merchant)

        assert str(error.value) == (
            f"Order {order.number} is {S(from_status).label.lower()} "
            f"and cannot become {S(to_status).label.lower()}."
        )
        assert (error.value.from_status, error.value.to_status) == (from_status, to_status)
        assert _state(order) == before


def test_shipping_a_paid_order_packs_it_on_the_way():
    order = _in_status(S.PAID)
    merchant = UserFactory(is_staff=True)

    result = services.order_mark_shipped(
        order_id=order.pk, carrier=" DHL ", tracking_number=" JJD0001 ", actor=merchant
    )

    assert result.status == S.SHIPPED
    stored = Order.objects.get(pk=order.pk)
    assert (stored.carrier, stored.tracking_number) == ("DHL", "JJD0001")
    assert stored.shipped_at is not None
    assert list(
        order.events.filter(from_status__in=[S.PAID, S.FULFILLED]).values_list(
            "from_status", "to_status", "actor"
        )
    ) == [(S.PAID, S.FULFILLED, merchant.pk), (S.FULFILLED, S.SHIPPED, merchant.pk)]
    assert list(order.emails.values_list("kind", flat=True)) == ["order_received", "order_shipped"]


def test_status_changes_stamp_their_times():
    order = _placed()

    services.order_mark_paid(order_id=order.pk)
    paid = Order.objects.get(pk=order.pk)
    services.order_mark_shipped(order_id=order.pk, carrier="DHL", tracking_number="1")
    shipped = Order.objects.get(pk=order.pk)

    assert paid.paid_at is not None and paid.shipped_at is None
    assert shipped.shipped_at >= shipped.paid_at
    assert shipped.cancelled_at is None


def test_an_anonymous_actor_is_recorded_as_nobody_and_a_note_is_the_message():
    order = _placed()

    services.order_mark_paid(order_id=order.pk, actor=AnonymousUser(), note="Paid by card 4242.")

    assert list(order.events.filter(to_status=S.PAID).values_list("actor", "message")) == [
        (None, "Paid by card 4242.")
    ]


def test_a_partially_refunded_order_can_be_refunded_partially_again_without_new_emails():
    order = _in_status(S.PAID)

    services.order_mark_refunded(order_id=order.pk, partial=True, note="One item back.")
    services.order_mark_refunded(order_id=order.pk, partial=True, note="Another item back.")
    services.order_mark_refunded(order_id=order.pk, partial=False)

    assert Order.objects.get(pk=order.pk).status == S.REFUNDED
    assert list(order.events.exclude(from_status="").values_list("to_status", "message")) == [
        (S.PARTIALLY_REFUNDED, "One item back."),
        (S.PARTIALLY_REFUNDED, "Another item back."),
        (S.REFUNDED, "Refunded."),
    ]
    assert list(order.emails.values_list("kind", flat=True)) == ["order_received"]


def test_an_unknown_order_is_refused():
    with pytest.raises(OrderError) as error:
        services.order_mark_paid(order_id=987654)

    assert str(error.value) == "That order does not exist."


# --- Emails: once per order and kind, never on rollback ----------------------------------------


def test_a_status_email_is_recorded_and_scheduled_once(django_capture_on_commit_callbacks):
    order = _placed(email="ada@example.com")

    with django_capture_on_commit_callbacks() as callbacks:
        services.order_mark_paid(order_id=order.pk)

    assert len(callbacks) == 1
    assert list(order.emails.values_list("kind", "to_email")) == [
        ("order_received", "ada@example.com"),
        ("order_paid", "ada@example.com"),
    ]


def test_recording_the_same_email_again_is_a_no_op(django_capture_on_commit_callbacks):
    order = _placed()

    with django_capture_on_commit_callbacks() as callbacks:
        again = services.outbox_record(
            kind=OutboxEmail.Kind.ORDER_RECEIVED, order=order, to_email=order.email
        )

    assert again is None
    assert callbacks == []
    assert order.emails.count() == 1


def test_no_email_is_recorded_or_scheduled_when_the_change_rolls_back(
    django_capture_on_commit_callbacks,
):
    order = _placed()
    before = _state(order)

    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.order_mark_paid(order_id=order.pk)
        raise RuntimeError("the payment webhook failed later")

    assert callbacks == []
    assert _state(order) == before


# --- Shipping needs a carrier and a tracking number ---------------------------------------------


@pytest.mark.parametrize(
    ("carrier", "tracking_number"),
    [("", "JJD1"), ("DHL", ""), ("   ", "JJD1"), ("DHL", " \t "), (None, "JJD1"), ("DHL", None)],
)
def test_shipping_without_a_carrier_and_tracking_number_is_refused(carrier, tracking_number):
    order = _in_status(S.FULFILLED)
    before = _state(order)

    with pytest.raises(OrderError) as error:
        services.order_mark_shipped(
            order_id=order.pk, carrier=carrier, tracking_number=tracking_number
        )

    assert str(error.value) == "Give the carrier and the tracking number of the shipment."
    assert _state(order) == before


def test_a_refused_shipment_keeps_no_carrier_or_tracking_number():
    order = _placed()
    before = _state(order)

    with pytest.raises(InvalidTransition):
        services.order_mark_shipped(order_id=order.pk, carrier="DHL", tracking_number="JJD1")

    assert _state(order) == before
    assert before["carrier"] == "" and before["tracking_number"] == ""


def test_long_carrier_and_tracking_number_are_cut_to_fit():
    order = _in_status(S.FULFILLED)

    services.order_mark_shipped(order_id=order.pk, carrier="C" * 80, tracking_number="T" * 150)

    stored = Order.objects.get(pk=order.pk)
    assert (stored.carrier, stored.tracking_number) == ("C" * 60, "T" * 100)


# --- Cancellation --------------------------------------------------------------------------------


def test_cancelling_returns_the_stock_and_the_voucher_use_exactly_once():
    VoucherFactory(code="SPRING", usage_limit=10)
    order = _placed(stock=10, quantity=3, voucher_code="SPRING")
    variant_id = order.lines.get().variant_id
    assert ProductVariant.objects.get(pk=variant_id).stock == 7
    assert Voucher.objects.get(code="SPRING").used_count == 1

    services.order_cancel(order_id=order.pk, reason="customer asked")
    with pytest.raises(InvalidTransition) as error:
        services.order_cancel(order_id=order.pk, reason="twice")

    assert str(error.value) == f"Order {order.number} is cancelled and cannot become cancelled."
    assert ProductVariant.objects.get(pk=variant_id).stock == 10
    assert Voucher.objects.get(code="SPRING").used_count == 0
    assert VoucherRedemption.objects.count() == 0
    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.voucher_code) == (S.CANCELLED, "SPRING")
    assert stored.cancelled_at is not None
    assert list(order.emails.values_list("kind", flat=True)) == [
        "order_received",
        "order_cancelled",
    ]


@pytest.mark.parametrize("status", [S.PAID, S.SHIPPED, S.REFUNDED])
def test_an_order_past_payment_is_never_cancelled_and_keeps_its_stock(status):
    order = _in_status(status)
    before = _state(order)

    with pytest.raises(InvalidTransition):
        services.order_cancel(order_id=order.pk, reason="too late")

    assert _state(order) == before


def test_a_customer_cancels_their_order_while_it_awaits_payment():
    user = UserFactory()
    order = _placed(stock=5, quantity=2)

    services.order_cancel_by_customer(order=order, user=user)

    assert Order.objects.get(pk=order.pk).status == S.CANCELLED
    assert ProductVariant.objects.get().stock == 5
    assert list(order.events.filter(to_status=S.CANCELLED).values_list("actor", "message")) == [
        (user.pk, "Cancelled: by the customer")
    ]


def test_a_customer_cannot_cancel_a_paid_order():
    order = _in_status(S.PAID)
    before = _state(order)

    with pytest.raises(InvalidTransition) as error:
        services.order_cancel_by_customer(order=order, user=UserFactory())

    assert str(error.value) == "This order can no longer be cancelled here; contact us instead."
    assert (error.value.from_status, error.value.to_status) == (S.PAID, S.CANCELLED)
    assert _state(order) == before


# --- Expiry -----------------------------------------------------------------------------------


def _placed_minutes_ago(minutes: int, **kwargs) -> Order:
    order = _placed(**kwargs)
    Order.objects.filter(pk=order.pk).update(placed_at=timezone.now() - timedelta(minutes=minutes))
    return order


def test_expiry_cancels_only_orders_unpaid_for_too_long():
    old = _placed_minutes_ago(90, stock=5, quantity=2)
    older = _placed_minutes_ago(120, stock=5, quantity=1)
    recent = _placed_minutes_ago(30)
    paid = _placed_minutes_ago(90)
    services.order_mark_paid(order_id=paid.pk)

    expired = services.orders_expire_unpaid(older_than=timedelta(hours=1))

    assert expired == [older.number, old.number]
    statuses = dict(Order.objects.values_list("number", "status"))
    assert statuses == {
        old.number: S.CANCELLED,
        older.number: S.CANCELLED,
        recent.number: S.PENDING_PAYMENT,
        paid.number: S.PAID,
    }
    assert ProductVariant.objects.get(pk=old.lines.get().variant_id).stock == 5
    assert ProductVariant.objects.get(pk=older.lines.get().variant_id).stock == 5
    assert list(old.events.filter(to_status=S.CANCELLED).values_list("actor", "message")) == [
        (None, "Cancelled: not paid in time (expired)")
    ]
    assert services.orders_expire_unpaid(older_than=timedelta(hours=1)) == []


def test_expiry_dry_run_lists_without_changing_anything():
    old = _placed_minutes_ago(90)
    before = _state(old)

    listed = services.orders_expire_unpaid(older_than=timedelta(hours=1), dry_run=True)

    assert listed == [old.number]
    assert _state(old) == before


def test_expiry_carries_on_past_an_order_deleted_in_the_meantime(monkeypatch):
    gone = _placed_minutes_ago(120)
    kept = _placed_minutes_ago(90)
    real_cancel = services.orders.order_cancel

    def cancel_after_a_deletion(*, order_id, reason, actor=None):
        if order_id == gone.pk:
            Order.objects.filter(pk=gone.pk).delete()
        return real_cancel(order_id=order_id, reason=reason, actor=actor)

    monkeypatch.setattr(services.orders, "order_cancel", cancel_after_a_deletion)

    expired = services.orders_expire_unpaid(older_than=timedelta(hours=1))

    assert expired == [kept.number]
    assert Order.objects.get(pk=kept.pk).status == S.CANCELLED


# --- Order numbers -----------------------------------------------------------------------------

NUMBER = re.compile(r"NW-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}")


def test_order_numbers_are_readable_and_avoid_look_alike_characters():
    numbers = [order_number_generate() for _ in range(2000)]

    assert all(NUMBER.fullmatch(number) for number in numbers), numbers[:5]
    assert all(len(number) == 12 for number in numbers)
    assert not set("01OILU") & set(ALPHABET)
    assert len(set(numbers)) == len(numbers)
    # Every character of the alphabet turns up: the numbers are not drawn from a smaller set.
    assert set("".join(number[3:].replace("-", "") for number in numbers)) == set(ALPHABET)


def test_a_placed_order_gets_such_a_number():
    order = _placed()

    assert NUMBER.fullmatch(order.number)
    assert Order._meta.get_field("number").max_length >= len(order.number)


def test_amounts_survive_the_state_machine_unchanged():
    order = _placed(quantity=2)
    amounts = Order.objects.values_list("subtotal", "total").get(pk=order.pk)

    services.order_mark_paid(order_id=order.pk)
    services.order_mark_shipped(order_id=order.pk, carrier="DHL", tracking_number="1")
    services.order_mark_delivered(order_id=order.pk)

    assert Order.objects.values_list("subtotal", "total").get(pk=order.pk) == amounts
    assert amounts == (Decimal("39.98"), Decimal("44.93"))


@pytest.mark.parametrize("status", list(Order.Status))
def test_order_can_ship_only_from_paid_or_packed(status):
    assert services.order_can_ship(status) is (status in {"paid", "fulfilled"})
