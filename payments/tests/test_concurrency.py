"""Concurrency claims of the payments services, proved with real threads on PostgreSQL.

Each thread works through its own database connection, the threads start together at a barrier,
and the test then asserts on what the database holds. Tasks run in the thread that enqueues them,
after its commit. Skipped on SQLite, which serialises every writer anyway.
"""

from decimal import Decimal

import pytest
from django.test import Client

from orders import services as order_services
from orders.exceptions import InvalidTransition
from orders.models import Order, OrderEvent, OutboxEmail
from orders.tests.concurrency import run_together
from payments import services
from payments.exceptions import RefundRefused
from payments.models import Payment, Refund, WebhookEvent
from payments.providers import EventType, PaymentState
from payments.providers.test import TestProvider
from payments.tests.factories import PaymentFactory, order_placed, signed_event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

S = Order.Status


@pytest.fixture(autouse=True)
def _pipeline(test_provider, celery_eager):
    """The test provider is the one provider; tasks run in the thread that enqueued them."""


def _paid_once(order: Order) -> None:
    assert OrderEvent.objects.filter(order=order, to_status=S.PAID).count() == 1
    assert OutboxEmail.objects.filter(order=order, kind=OutboxEmail.Kind.ORDER_PAID).count() == 1


def test_the_same_event_delivered_twice_at_once_marks_the_order_paid_once():
    payment = PaymentFactory()
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)

    def deliver():
        response = Client().post(
            "/payments/webhooks/test/", data=body, content_type="application/json",
            headers=headers,
        )  # fmt: skip
        return response.status_code, response.json()["duplicate"]

    outcomes = run_together([deliver, deliver])

    assert sorted(value for _, value in outcomes) == [(200, False), (200, True)]
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.attempts) == ("applied", 1)
    assert Order.objects.get(pk=payment.order_id).status == S.PAID
    _paid_once(payment.order)


def test_two_workers_processing_one_event_apply_it_once():
    payment = PaymentFactory()
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    parsed = TestProvider().parse_webhook(body=body, headers=headers)
    event, _ = services.webhook_event_store(provider_name="test", event=parsed, enqueue=False)

    outcomes = run_together([lambda: services.webhook_event_process(event_pk=event.pk)] * 2)

    assert outcomes == [("ok", "applied"), ("ok", "applied")]
    event.refresh_from_db()
    assert event.attempts == 1
    _paid_once(payment.order)


def test_a_webhook_and_reconcile_at_once_mark_the_order_paid_once(monkeypatch):
    from datetime import timedelta

    payment = PaymentFactory()
    Payment.objects.filter(pk=payment.pk).update(created_at=payment.created_at - timedelta(hours=1))
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    parsed = TestProvider().parse_webhook(body=body, headers=headers)
    event, _ = services.webhook_event_store(provider_name="test", event=parsed, enqueue=False)
    monkeypatch.setattr(
        TestProvider,
        "fetch",
        lambda self, *, payment: PaymentState("succeeded", Decimal("14.95"), Decimal("0")),
    )

    outcomes = run_together(
        [
            lambda: services.webhook_event_process(event_pk=event.pk),
            lambda: services.payments_reconcile(older_than=timedelta(minutes=1), dry_run=False),
        ]
    )

    assert [kind for kind, _ in outcomes] == ["ok", "ok"]
    assert Order.objects.get(pk=payment.order_id).status == S.PAID
    _paid_once(payment.order)


def test_a_payment_racing_the_expiry_ends_paid_or_cancelled_and_refunded_never_both():
    payment = PaymentFactory()
    order = payment.order
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    parsed = TestProvider().parse_webhook(body=body, headers=headers)
    event, _ = services.webhook_event_store(provider_name="test", event=parsed, enqueue=False)

    outcomes = run_together(
        [
            lambda: order_services.order_cancel(order_id=order.pk, reason="expired"),
            lambda: services.webhook_event_process(event_pk=event.pk),
        ]
    )

    order.refresh_from_db()
    payment.refresh_from_db()
    cancel, process = outcomes
    assert process[0] == "ok"
    if order.status == S.PAID:
        assert cancel[0] == "error" and isinstance(cancel[1], InvalidTransition)
        assert (process[1], payment.needs_attention, Refund.objects.count()) == (
            "applied", False, 0,
        )  # fmt: skip
    else:
        assert order.status == S.CANCELLED and cancel[0] == "ok"
        assert (process[1], payment.needs_attention) == ("flagged", True)
        refund = Refund.objects.get()
        assert (refund.status, refund.amount) == ("succeeded", order.total)
        assert payment.amount_refunded == order.total


def test_two_refunds_at_once_never_refund_more_than_was_paid():
    payment = PaymentFactory()
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    services.webhook_receive(provider_name="test", body=body, headers=headers)
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"

    def refund():
        return services.payment_refund(
            payment_id=payment.pk, amount=Decimal("10.00"), reason="Returned"
        )

    outcomes = run_together([refund, refund])

    kinds = sorted(kind for kind, _ in outcomes)
    assert kinds == ["error", "ok"]
    error = next(value for kind, value in outcomes if kind == "error")
    assert isinstance(error, RefundRefused) and "more than was paid" in str(error)
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("10.00")
    assert Refund.objects.filter(status="succeeded").count() == 1
    assert Refund.objects.count() == 1


def test_two_starts_at_once_make_one_payment():
    order = order_placed()

    def start():
        payment, result = services.payment_start(
            order_id=order.pk, provider_name="test", return_url=""
        )
        return payment.pk, result.provider_reference

    outcomes = run_together([start, start])

    assert [kind for kind, _ in outcomes] == ["ok", "ok"]
    assert outcomes[0][1] == outcomes[1][1]
    assert Payment.objects.count() == 1
