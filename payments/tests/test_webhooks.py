"""Provider webhooks, end to end: the endpoint verifies, stores and enqueues; the task applies the
event to the payment and the order, once, whatever order the events arrive in."""

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.urls import reverse
from kombu.exceptions import OperationalError as BrokerError

from orders import services as order_services
from orders.models import Order, OrderEvent, OutboxEmail
from payments import services
from payments.models import Payment, Refund, WebhookEvent
from payments.providers import EventType
from payments.providers.test import SIGNATURE_HEADER, signature_header
from payments.tests.factories import PaymentFactory, signed_event

pytestmark = pytest.mark.django_db

URL = "/payments/webhooks/test/"
O = WebhookEvent.Outcome  # noqa: E741
S = Order.Status


@pytest.fixture(autouse=True)
def _pipeline(test_provider, celery_eager):
    """The test provider signs; tasks run in the test's process once the request commits."""


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST an event to the test provider's webhook, running what it enqueues after commit."""

    def post(body: bytes, headers: dict):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, data=body, content_type="application/json", headers=headers)

    return post


def _order_events(order: Order) -> list[tuple[str, str]]:
    return list(order.events.values_list("from_status", "to_status"))


def _paid_emails(order: Order) -> int:
    return OutboxEmail.objects.filter(order=order, kind=OutboxEmail.Kind.ORDER_PAID).count()


# --- The happy path, and duplicates -------------------------------------------------------------


def test_a_signed_event_marks_the_order_paid_once_even_when_delivered_twice(deliver, mailoutbox):
    payment = PaymentFactory()
    order = payment.order
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)

    first = deliver(body, headers)
    second = deliver(body, headers)

    assert (first.status_code, first.json()) == (200, {"received": True, "duplicate": False})
    assert (second.status_code, second.json()) == (200, {"received": True, "duplicate": True})
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == S.PAID and order.paid_at is not None
    assert (payment.status, payment.amount_received) == ("succeeded", order.total)
    assert _order_events(order)[-1] == ("pending_payment", "paid")
    assert OrderEvent.objects.filter(order=order, to_status="paid").count() == 1
    assert _paid_emails(order) == 1
    assert [(m.to, "payment received" in m.subject) for m in mailoutbox] == [([order.email], True)]
    event = WebhookEvent.objects.get()
    assert (event.provider, event.event_type, event.outcome, event.attempts) == (
        "test", EventType.PAYMENT_SUCCEEDED, O.APPLIED, 1,
    )  # fmt: skip
    assert event.processed_at is not None
    assert event.payment_reference == payment.provider_reference
    assert event.payload["data"]["amount"] == str(order.total)


def test_processing_an_event_again_changes_nothing(deliver):
    payment = PaymentFactory()
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))
    event = WebhookEvent.objects.get()

    outcome = services.webhook_event_process(event_pk=event.pk)

    assert outcome == O.APPLIED
    event.refresh_from_db()
    assert event.attempts == 1
    assert OrderEvent.objects.filter(order=payment.order, to_status="paid").count() == 1
    assert _paid_emails(payment.order) == 1


def test_the_same_fact_in_a_second_event_changes_nothing(deliver):
    payment = PaymentFactory()
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    assert list(WebhookEvent.objects.order_by("id").values_list("outcome", flat=True)) == [
        O.APPLIED,
        O.IGNORED,
    ]
    assert OrderEvent.objects.filter(order=payment.order, to_status="paid").count() == 1
    assert _paid_emails(payment.order) == 1


# --- Refused requests store nothing -------------------------------------------------------------


def _forged(payment):
    body, _ = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    return body, {SIGNATURE_HEADER: signature_header(body, secret="not-the-secret")}


def _tampered(payment):
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED, amount=Decimal("0.01"))
    return body.replace(b'"0.01"', b'"99.00"'), headers


def _stale(payment):
    return signed_event(
        payment, EventType.PAYMENT_SUCCEEDED, timestamp=int(time.time()) - 301
    )  # fmt: skip


def _from_the_future(payment):
    return signed_event(payment, EventType.PAYMENT_SUCCEEDED, timestamp=int(time.time()) + 301)


def _unsigned(payment):
    body, _ = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    return body, {}


def _garbled_header(payment):
    body, _ = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    return body, {SIGNATURE_HEADER: "t=soon,v1=\u00e9\u00e9"}


def _signed(body: bytes):
    return lambda payment: (body, {SIGNATURE_HEADER: signature_header(body)})


@pytest.mark.parametrize(
    "request_for",
    [
        pytest.param(_forged, id="forged"),
        pytest.param(_tampered, id="tampered"),
        pytest.param(_stale, id="stale"),
        pytest.param(_from_the_future, id="from-the-future"),
        pytest.param(_unsigned, id="unsigned"),
        pytest.param(_garbled_header, id="garbled-header"),
        pytest.param(_signed(b"not json"), id="signed-but-not-json"),
        pytest.param(_signed(b"[1, 2]"), id="signed-but-not-an-object"),
        pytest.param(_signed(b'{"id": "evt_1", "type": "x"}'), id="signed-but-no-data"),
        pytest.param(
            _signed(
                b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": '
                b'{"reference": "r", "amount": "NaN", "currency": "EUR"}}'
            ),
            id="signed-but-no-amount",
        ),  # fmt: skip
        pytest.param(
            _signed(b'{"id": 7, "type": "payment_intent.succeeded", "data": {}}'),
            id="signed-but-no-id",
        ),
    ],
)
def test_a_request_that_is_not_a_genuine_event_is_refused_and_nothing_is_stored(
    deliver, request_for, caplog
):
    payment = PaymentFactory()

    response = deliver(*request_for(payment))

    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0
    payment.refresh_from_db()
    assert (payment.status, payment.order.status) == ("pending", "pending_payment")
    assert "Refused a test webhook" in caplog.text


def test_the_webhook_answers_only_posts(client):
    assert client.get(URL).status_code == 405


def test_the_test_webhook_is_gone_while_the_test_provider_is_off(deliver, settings):
    payment = PaymentFactory()
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    settings.PAYMENTS_TEST_PROVIDER = False

    assert deliver(body, headers).status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_the_stripe_webhook_is_gone_while_stripe_is_not_configured(client):
    response = client.post(reverse("payments:webhook-stripe"), data=b"{}", content_type="x/y")

    assert response.status_code == 404


# --- Amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_change", "currency", "reason"),
    [
        (Decimal("-0.01"), "", "Received €14.94 but order {number} is for €14.95"),
        (Decimal("1.00"), "", "Received €15.95 but order {number} is for €14.95"),
        (Decimal("0"), "USD", "Received $14.95 but order {number} is for €14.95"),
    ],
)
def test_a_payment_of_another_amount_is_flagged_and_never_marks_the_order_paid(
    deliver, amount_change, currency, reason
):
    payment = PaymentFactory()
    order = payment.order
    assert order.total == Decimal("14.95")

    deliver(
        *signed_event(
            payment,
            EventType.PAYMENT_SUCCEEDED,
            amount=order.total + amount_change,
            currency=currency,
        )
    )

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == S.PENDING_PAYMENT
    assert payment.status == "succeeded"
    assert payment.amount_received == order.total + amount_change
    assert payment.needs_attention is True
    assert payment.attention_reason.startswith(reason.format(number=order.number))
    assert WebhookEvent.objects.get().outcome == O.FLAGGED
    assert _paid_emails(order) == 0


# --- Out of order -------------------------------------------------------------------------------


def test_a_refund_reported_before_the_payment_ends_refunded(deliver):
    payment = PaymentFactory()
    order = payment.order

    deliver(*signed_event(payment, EventType.CHARGE_REFUNDED, amount_refunded=order.total))

    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.amount_refunded, order.status) == (
        "pending", Decimal("0"), S.PENDING_PAYMENT,
    )  # fmt: skip
    assert WebhookEvent.objects.get().outcome == O.IGNORED

    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.amount_received, payment.amount_refunded) == (
        "succeeded", order.total, order.total,
    )  # fmt: skip
    assert order.status == S.REFUNDED
    assert _order_events(order)[-2:] == [("pending_payment", "paid"), ("paid", "refunded")]


def test_a_partial_refund_reported_before_the_payment_ends_partially_refunded(deliver):
    payment = PaymentFactory()

    deliver(*signed_event(payment, EventType.CHARGE_REFUNDED, amount_refunded=Decimal("5.00")))
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("5.00")
    assert payment.order.status == S.PARTIALLY_REFUNDED


def test_a_failure_reported_after_the_success_leaves_the_order_paid(deliver):
    payment = PaymentFactory()
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    deliver(*signed_event(payment, EventType.PAYMENT_FAILED))
    deliver(*signed_event(payment, EventType.PAYMENT_CANCELED))

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.order.status == S.PAID
    late = WebhookEvent.objects.order_by("id")[1:]
    assert [(e.outcome, e.message) for e in late] == [
        (O.IGNORED, "Arrived after the payment succeeded: it stays succeeded."),
    ] * 2


def test_a_declined_card_then_a_success_marks_the_order_paid(deliver):
    payment = PaymentFactory()

    deliver(*signed_event(payment, EventType.PAYMENT_FAILED))
    payment.refresh_from_db()
    assert (payment.status, payment.order.status) == ("failed", S.PENDING_PAYMENT)

    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    payment.refresh_from_db()
    assert (payment.status, payment.order.status) == ("succeeded", S.PAID)


def test_refunds_reported_out_of_order_never_lower_the_refunded_total(deliver):
    payment = PaymentFactory()
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    deliver(*signed_event(payment, EventType.CHARGE_REFUNDED, amount_refunded=Decimal("8.00")))
    deliver(*signed_event(payment, EventType.CHARGE_REFUNDED, amount_refunded=Decimal("5.00")))

    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("8.00")
    assert payment.order.status == S.PARTIALLY_REFUNDED
    assert [e.outcome for e in WebhookEvent.objects.order_by("id")] == [
        O.APPLIED, O.APPLIED, O.IGNORED,
    ]  # fmt: skip


def test_a_full_refund_reported_by_the_provider_refunds_the_order(deliver):
    payment = PaymentFactory()
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))
    order_services.order_mark_shipped(
        order_id=payment.order_id, carrier="DHL", tracking_number="123"
    )

    deliver(*signed_event(payment, EventType.CHARGE_REFUNDED, amount_refunded=Decimal("14.95")))

    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("14.95")
    assert payment.order.status == S.REFUNDED


# --- Events the shop does not act on ------------------------------------------------------------


def test_an_event_of_an_unknown_type_is_stored_and_ignored(deliver):
    payment = PaymentFactory()

    response = deliver(*signed_event(payment, "customer.created"))

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.outcome) == ("customer.created", O.IGNORED)
    assert event.message == "Nothing to do for a customer.created event."
    assert event.processed_at is not None
    payment.refresh_from_db()
    assert (payment.status, payment.order.status) == ("pending", S.PENDING_PAYMENT)


def test_an_event_about_a_payment_the_shop_does_not_know_is_ignored(deliver):
    payment = PaymentFactory.build(provider_reference="test_somebody_else", amount=Decimal("5"))

    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED, currency="EUR"))

    event = WebhookEvent.objects.get()
    assert event.outcome == O.IGNORED
    assert event.message == "No payment of this shop has the reference test_somebody_else."


# --- Broker and database failures ---------------------------------------------------------------


class BrokerDown:
    def delay(self, *args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_an_event_received_while_the_broker_is_down_is_stored_and_later_reconciled(
    deliver, monkeypatch, django_capture_on_commit_callbacks
):
    payment = PaymentFactory()
    monkeypatch.setattr("payments.tasks.webhook_event_process.delay", BrokerDown().delay)

    response = deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.processed_at, event.outcome) == (None, O.PENDING)
    assert payment.order.__class__.objects.get(pk=payment.order_id).status == S.PENDING_PAYMENT

    monkeypatch.undo()  # the broker is back
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=event.received_at - timedelta(1))
    with django_capture_on_commit_callbacks(execute=True):
        report = services.payments_reconcile(older_than=timedelta(minutes=10), dry_run=False)

    assert report.events_requeued == [event.pk]
    event.refresh_from_db()
    assert event.outcome == O.APPLIED
    assert Order.objects.get(pk=payment.order_id).status == S.PAID
    assert _paid_emails(payment.order) == 1


def test_reconcile_processes_the_event_itself_while_the_broker_is_still_down(
    deliver, monkeypatch, django_capture_on_commit_callbacks
):
    payment = PaymentFactory()
    monkeypatch.setattr("payments.tasks.webhook_event_process.delay", BrokerDown().delay)
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))
    event = WebhookEvent.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        report = services.payments_reconcile(older_than=timedelta(0), dry_run=False)

    assert report.events_requeued == [event.pk]
    assert Order.objects.get(pk=payment.order_id).status == S.PAID


def test_a_database_error_is_counted_rolled_back_and_raised_for_a_retry(deliver, monkeypatch):
    payment = PaymentFactory()
    monkeypatch.setattr("payments.tasks.webhook_event_process.delay", lambda pk: None)
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))
    event = WebhookEvent.objects.get()

    def connection_lost(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("payments.services.webhooks.order_mark_paid", connection_lost)
    with pytest.raises(OperationalError):
        services.webhook_event_process(event_pk=event.pk)

    event.refresh_from_db()
    payment.refresh_from_db()
    assert (event.processed_at, event.outcome, event.attempts) == (None, O.ERROR, 1)
    assert event.message == "OperationalError: server closed the connection unexpectedly"
    assert (payment.status, payment.amount_received) == ("pending", Decimal("0"))

    monkeypatch.undo()
    assert services.webhook_event_process(event_pk=event.pk) == O.APPLIED
    event.refresh_from_db()
    assert (event.outcome, event.attempts) == (O.APPLIED, 2)
    assert Order.objects.get(pk=payment.order_id).status == S.PAID


def test_the_task_retries_on_a_database_error():
    from payments.tasks import webhook_event_process

    assert OperationalError in webhook_event_process.autoretry_for
    assert webhook_event_process.acks_late is True


# --- Payments for cancelled orders, and refunds -------------------------------------------------


def test_a_payment_for_a_cancelled_order_is_flagged_and_refunded_in_full(deliver):
    payment = PaymentFactory()
    order = payment.order
    order_services.order_cancel(order_id=order.pk, reason="not paid in time (expired)")

    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == S.CANCELLED
    assert WebhookEvent.objects.get().outcome == O.FLAGGED
    assert payment.needs_attention is True
    assert payment.attention_reason == (
        f"Paid after order {order.number} was cancelled: refunding in full. "
        "Refunded €14.95 automatically."
    )
    refund = Refund.objects.get()
    assert (refund.amount, refund.status, refund.payment_id) == (
        order.total,
        "succeeded",
        payment.pk,
    )
    assert refund.provider_reference.startswith("test_re_")
    assert (payment.amount_received, payment.amount_refunded) == (order.total, order.total)
    assert _paid_emails(order) == 0


def test_the_flagged_refund_task_is_safe_to_run_twice(deliver):
    from payments.tasks import payment_refund_for_flagged

    payment = PaymentFactory()
    order_services.order_cancel(order_id=payment.order_id, reason="by the customer")
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))

    assert payment_refund_for_flagged(payment.pk) is None
    assert Refund.objects.count() == 1


def test_a_refund_event_after_a_refund_made_here_is_not_counted_twice(deliver):
    payment = PaymentFactory()
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))
    services.payment_refund(payment_id=payment.pk, amount=Decimal("5.00"), reason="Scratched")

    deliver(*signed_event(payment, EventType.CHARGE_REFUNDED, amount_refunded=Decimal("5.00")))

    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("5.00")
    assert WebhookEvent.objects.order_by("id").last().outcome == O.IGNORED
    assert _order_events(payment.order)[-1] == ("paid", "partially_refunded")
    assert (
        OrderEvent.objects.filter(order=payment.order, to_status="partially_refunded").count() == 1
    )


def test_a_refund_event_processed_while_the_refund_is_in_flight_is_not_counted_twice(
    deliver, monkeypatch
):
    """The provider's event about a refund may be processed before the refund's own
    bookkeeping commits: the refund is counted once either way."""
    payment = PaymentFactory()
    deliver(*signed_event(payment, EventType.PAYMENT_SUCCEEDED))
    from payments.providers.test import TestProvider

    real_refund = TestProvider.refund

    def refund_and_report_at_once(self, *, payment, amount, reason, idempotency_key):
        reference = real_refund(
            self, payment=payment, amount=amount, reason=reason, idempotency_key=idempotency_key
        )
        deliver(*signed_event(payment, EventType.CHARGE_REFUNDED, amount_refunded=amount))
        return reference

    monkeypatch.setattr(TestProvider, "refund", refund_and_report_at_once)

    services.payment_refund(payment_id=payment.pk, amount=Decimal("5.00"), reason="Scratched")

    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("5.00")
    assert payment.order.status == S.PARTIALLY_REFUNDED


def test_the_stored_payload_is_the_event_as_sent(deliver):
    payment = PaymentFactory()
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED, event_id="evt_test_42")

    deliver(body, headers)

    event = WebhookEvent.objects.get()
    assert event.event_id == "evt_test_42"
    assert event.payload == json.loads(body)
    assert Payment.objects.get().status == "succeeded"
