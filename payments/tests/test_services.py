"""The payments services: starting a payment, refunds, reconciliation, and the provider
registry."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from orders import services as order_services
from orders.models import Order, OrderEvent
from payments import services
from payments.exceptions import NotPayable, ProviderError, ProviderUnavailable, RefundRefused
from payments.models import Payment, Refund, WebhookEvent
from payments.providers import EventType, PaymentState, provider_get, providers_enabled
from payments.providers.test import TestProvider
from payments.tests.factories import PaymentFactory, order_placed

pytestmark = pytest.mark.django_db

S = Order.Status
RETURN_URL = "https://shop.example.com/payments/return/x/y/"


@pytest.fixture(autouse=True)
def _pipeline(test_provider, celery_eager):
    """The test provider is the one provider; tasks run in the test's process."""


def _paid(payment: Payment) -> Payment:
    """Record the payment as received in full, as its webhook would."""
    from payments.tests.factories import signed_event

    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    event, _ = services.webhook_receive(provider_name="test", body=body, headers=headers)
    services.webhook_event_process(event_pk=event.pk)
    payment.refresh_from_db()
    assert payment.order.status == S.PAID
    return payment


def _snapshot(payment: Payment) -> tuple:
    payment.refresh_from_db()
    order = Order.objects.get(pk=payment.order_id)
    return (
        payment.status,
        payment.amount_received,
        payment.amount_refunded,
        order.status,
        Refund.objects.count(),
        OrderEvent.objects.filter(order=order).count(),
    )


# --- Registry -----------------------------------------------------------------------------------


def test_the_test_provider_is_offered_only_while_it_is_switched_on(settings):
    assert [p.name for p in providers_enabled()] == ["test"]

    settings.PAYMENTS_TEST_PROVIDER = False

    assert providers_enabled() == []
    with pytest.raises(ProviderUnavailable):
        provider_get("test")


def test_stripe_is_offered_first_once_its_secret_key_is_set(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_12345"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"

    assert [p.name for p in providers_enabled()] == ["stripe", "test"]
    assert provider_get("stripe").name == "stripe"


def test_an_unknown_provider_is_unavailable():
    with pytest.raises(ProviderUnavailable, match="'paypal' is not available"):
        provider_get("paypal")


# --- Starting a payment -------------------------------------------------------------------------


def test_starting_a_payment_records_it_for_the_order_total_with_the_providers_reference():
    order = order_placed(price="20.00")

    payment, result = services.payment_start(
        order_id=order.pk, provider_name="test", return_url=RETURN_URL
    )

    assert (payment.order_id, payment.provider, payment.status) == (order.pk, "test", "pending")
    assert (payment.amount, payment.currency) == (Decimal("24.95"), "EUR")
    assert payment.provider_reference.startswith("test_")
    assert result.provider_reference == payment.provider_reference
    assert result.redirect_url == f"/payments/test/{payment.provider_reference}/"
    assert Payment.objects.get().provider_reference == payment.provider_reference


def test_starting_again_continues_the_same_payment():
    order = order_placed()
    first, _ = services.payment_start(order_id=order.pk, provider_name="test", return_url="")

    second, result = services.payment_start(order_id=order.pk, provider_name="test", return_url="")

    assert second.pk == first.pk
    assert result.provider_reference == first.provider_reference
    assert Payment.objects.count() == 1


def test_starting_again_after_a_declined_card_tries_the_same_payment_again():
    payment = PaymentFactory(status=Payment.Status.FAILED)

    again, _ = services.payment_start(
        order_id=payment.order_id, provider_name="test", return_url=""
    )

    assert again.pk == payment.pk
    assert Payment.objects.get().status == "pending"


def test_a_cancelled_provider_payment_is_not_continued():
    payment = PaymentFactory(status=Payment.Status.CANCELED)

    again, _ = services.payment_start(
        order_id=payment.order_id, provider_name="test", return_url=""
    )

    assert again.pk != payment.pk
    assert Payment.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("paid", "Order {number} has been paid already."),
        ("cancelled", "Order {number} was cancelled, so it can no longer be paid."),
    ],
)
def test_only_an_order_awaiting_payment_can_be_paid(change, message):
    order = order_placed()
    if change == "paid":
        order_services.order_mark_paid(order_id=order.pk)
    else:
        order_services.order_cancel(order_id=order.pk, reason="by the customer")

    with pytest.raises(NotPayable) as refused:
        services.payment_start(order_id=order.pk, provider_name="test", return_url="")

    assert str(refused.value) == message.format(number=order.number)
    assert Payment.objects.count() == 0


def test_a_switched_off_provider_cannot_start_a_payment(settings):
    order = order_placed()
    settings.PAYMENTS_TEST_PROVIDER = False

    with pytest.raises(ProviderUnavailable):
        services.payment_start(order_id=order.pk, provider_name="test", return_url="")

    assert Payment.objects.count() == 0


def test_an_unreachable_provider_leaves_the_payment_unstarted_for_the_next_try(monkeypatch):
    order = order_placed()

    def unreachable(self, *, payment, return_url):
        raise ProviderError("Connection timed out")

    monkeypatch.setattr(TestProvider, "start", unreachable)
    with pytest.raises(ProviderError):
        services.payment_start(order_id=order.pk, provider_name="test", return_url="")

    payment = Payment.objects.get()
    assert (payment.status, payment.provider_reference) == ("pending", "")
    monkeypatch.undo()
    again, _ = services.payment_start(order_id=order.pk, provider_name="test", return_url="")
    assert again.pk == payment.pk and again.provider_reference


@pytest.mark.django_db(transaction=True)
def test_the_provider_is_called_outside_any_transaction(monkeypatch):
    order = order_placed()
    in_transaction = []
    real_start, real_refund = TestProvider.start, TestProvider.refund

    def start(self, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return real_start(self, **kwargs)

    def refund(self, **kwargs):
        in_transaction.append(connection.in_atomic_block)
        return real_refund(self, **kwargs)

    monkeypatch.setattr(TestProvider, "start", start)
    monkeypatch.setattr(TestProvider, "refund", refund)

    payment, _ = services.payment_start(order_id=order.pk, provider_name="test", return_url="")
    _paid(payment)
    services.payment_refund(payment_id=payment.pk, amount=Decimal("1.00"), reason="Goodwill")

    assert in_transaction == [False, False]


# --- Refunds ------------------------------------------------------------------------------------


def test_a_partial_refund_then_the_rest_refund_the_order(admin_user):
    payment = _paid(PaymentFactory())

    first = services.payment_refund(
        payment_id=payment.pk, amount=Decimal("4.95"), reason="Shipping refunded", actor=admin_user
    )
    payment.refresh_from_db()
    assert (first.status, first.amount, first.created_by) == (
        "succeeded",
        Decimal("4.95"),
        admin_user,
    )
    assert first.provider_reference.startswith("test_re_")
    assert payment.amount_refunded == Decimal("4.95")
    assert payment.order.status == S.PARTIALLY_REFUNDED

    services.payment_refund(payment_id=payment.pk, amount=Decimal("10.00"), reason="Returned")

    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.refundable) == (Decimal("14.95"), Decimal("0"))
    assert payment.order.status == S.REFUNDED
    events = list(payment.order.events.values_list("to_status", "message", "actor"))
    assert events[-2:] == [
        ("partially_refunded", "Refunded €4.95: Shipping refunded", admin_user.pk),
        ("refunded", "Refunded €10.00: Returned", None),
    ]


def test_the_refund_is_asked_with_an_idempotency_key_of_its_own(monkeypatch):
    payment = _paid(PaymentFactory())
    keys = []

    def refund(self, *, payment, amount, reason, idempotency_key):
        keys.append((amount, reason, idempotency_key))
        return "re_1"

    monkeypatch.setattr(TestProvider, "refund", refund)

    refund_row = services.payment_refund(payment_id=payment.pk, amount=Decimal("2"), reason="x")

    assert keys == [(Decimal("2"), "x", f"refund-{refund_row.pk}")]


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (
            "14.96",
            "Cannot refund €14.96: that is more than was paid and not yet refunded (€14.95).",
        ),
        ("0", "The refund amount must be more than zero."),
        ("-1.00", "The refund amount must be more than zero."),
        ("1.001", "Give the amount in whole EUR minor units (cents)."),
        ("lots", "'lots' is not an amount."),
    ],
)
def test_a_refund_of_a_wrong_amount_is_refused_and_writes_nothing(amount, message):
    payment = _paid(PaymentFactory())
    before = _snapshot(payment)

    with pytest.raises(RefundRefused) as refused:
        services.payment_refund(payment_id=payment.pk, amount=amount, reason="Too generous")

    assert str(refused.value) == message
    assert _snapshot(payment) == before


def test_a_refund_beyond_what_is_left_after_earlier_refunds_is_refused():
    payment = _paid(PaymentFactory())
    services.payment_refund(payment_id=payment.pk, amount=Decimal("10.00"), reason="Returned")
    before = _snapshot(payment)

    with pytest.raises(RefundRefused, match=r"more than was paid and not yet refunded \(€4.95\)"):
        services.payment_refund(payment_id=payment.pk, amount=Decimal("5.00"), reason="Again")

    assert _snapshot(payment) == before


def test_a_refund_in_flight_counts_against_what_can_still_be_refunded():
    payment = _paid(PaymentFactory())
    Refund.objects.create(payment=payment, amount=Decimal("10.00"), reason="Being refunded")

    with pytest.raises(RefundRefused, match=r"not yet refunded \(€4.95\)"):
        services.payment_refund(payment_id=payment.pk, amount=Decimal("5.00"), reason="Again")


def test_a_payment_that_did_not_go_through_cannot_be_refunded():
    payment = PaymentFactory()
    before = _snapshot(payment)

    with pytest.raises(RefundRefused, match="more than was paid"):
        services.payment_refund(payment_id=payment.pk, amount=Decimal("1.00"), reason="x")

    assert _snapshot(payment) == before


def test_a_refund_the_provider_refuses_is_kept_as_failed_and_reported(monkeypatch):
    payment = _paid(PaymentFactory())

    def refuse(self, **kwargs):
        raise ProviderError("Charge ch_1 has been disputed.")

    monkeypatch.setattr(TestProvider, "refund", refuse)

    with pytest.raises(RefundRefused) as refused:
        services.payment_refund(payment_id=payment.pk, amount=Decimal("5.00"), reason="x")

    assert str(refused.value) == (
        "The payment provider refused the refund: Charge ch_1 has been disputed."
    )
    refund = Refund.objects.get()
    assert (refund.status, refund.error) == ("failed", "Charge ch_1 has been disputed.")
    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.order.status) == (Decimal("0"), S.PAID)


def test_a_refund_for_a_payment_of_a_cancelled_order_leaves_the_order_cancelled(monkeypatch):
    payment = PaymentFactory()
    monkeypatch.setattr("payments.services.webhooks._enqueue_refund", lambda pk: None)
    order_services.order_cancel(order_id=payment.order_id, reason="by the customer")
    from payments.tests.factories import signed_event

    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)
    event, _ = services.webhook_receive(provider_name="test", body=body, headers=headers)
    services.webhook_event_process(event_pk=event.pk)

    refund = services.payment_refund_flagged(payment_id=payment.pk)

    payment.refresh_from_db()
    assert (refund.amount, payment.amount_refunded) == (Decimal("14.95"), Decimal("14.95"))
    assert payment.order.status == S.CANCELLED
    assert services.payment_refund_flagged(payment_id=payment.pk) is None


def test_an_automatic_refund_the_provider_refuses_is_left_to_a_person(monkeypatch):
    payment = PaymentFactory(
        status="succeeded", amount_received=Decimal("14.95"), needs_attention=True,
        attention_reason="Paid after the order was cancelled.",
    )  # fmt: skip
    order_services.order_cancel(order_id=payment.order_id, reason="by the customer")

    def refuse(self, **kwargs):
        raise ProviderError("Read timed out.")

    monkeypatch.setattr(TestProvider, "refund", refuse)

    assert services.payment_refund_flagged(payment_id=payment.pk) is None

    payment.refresh_from_db()
    assert payment.attention_reason == (
        "Paid after the order was cancelled. Automatic refund failed (Read timed out.)."
    )
    assert payment.amount_refunded == Decimal("0")


# --- Reconciliation -----------------------------------------------------------------------------


def _aged(payment: Payment, minutes: int = 60) -> Payment:
    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )
    return payment


def _provider_says(monkeypatch, **states):
    """Make the test provider report these states, by payment pk."""

    def fetch(self, *, payment):
        return states[str(payment.pk)]

    monkeypatch.setattr(TestProvider, "fetch", fetch)


def test_reconcile_applies_a_payment_whose_event_never_came(monkeypatch, mailoutbox):
    payment = _aged(PaymentFactory())
    _provider_says(
        monkeypatch,
        **{str(payment.pk): PaymentState("succeeded", Decimal("14.95"), Decimal("0"))},
    )

    report = services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)

    assert (report.payments_fixed, report.events_requeued, report.needs_human) == (
        [payment.pk],
        [],
        [],
    )
    payment.refresh_from_db()
    assert (payment.status, payment.order.status) == ("succeeded", S.PAID)
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.event_type, event.outcome) == (
        f"reconcile-{payment.pk}-succeeded", EventType.PAYMENT_SUCCEEDED, "applied",
    )  # fmt: skip

    again = services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)

    assert again.payments_fixed == []
    assert WebhookEvent.objects.count() == 1
    assert OrderEvent.objects.filter(order=payment.order, to_status="paid").count() == 1


def test_reconcile_applies_a_payment_refunded_in_the_meantime(monkeypatch):
    payment = _aged(PaymentFactory())
    _provider_says(
        monkeypatch,
        **{str(payment.pk): PaymentState("succeeded", Decimal("14.95"), Decimal("14.95"))},
    )

    services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)

    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.order.status) == (Decimal("14.95"), S.REFUNDED)


def test_reconcile_records_a_failed_payment_and_leaves_pending_ones(monkeypatch):
    failed, waiting = _aged(PaymentFactory()), _aged(PaymentFactory())
    _provider_says(
        monkeypatch,
        **{
            str(failed.pk): PaymentState("failed", Decimal("0"), Decimal("0")),
            str(waiting.pk): PaymentState("pending", Decimal("0"), Decimal("0")),
        },
    )

    report = services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)

    assert report.payments_fixed == [failed.pk]
    assert Payment.objects.get(pk=failed.pk).status == "failed"
    assert Payment.objects.get(pk=waiting.pk).status == "pending"


def test_reconcile_leaves_young_payments_to_the_customer(monkeypatch):
    payment = PaymentFactory()
    _provider_says(
        monkeypatch,
        **{str(payment.pk): PaymentState("succeeded", Decimal("14.95"), Decimal("0"))},
    )

    report = services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)

    assert report.payments_fixed == []
    assert Payment.objects.get().status == "pending"


def test_reconcile_skips_a_provider_it_cannot_reach(monkeypatch):
    payment = _aged(PaymentFactory())

    def unreachable(self, *, payment):
        raise ProviderError("Connection refused")

    monkeypatch.setattr(TestProvider, "fetch", unreachable)

    report = services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)

    assert report.payments_fixed == []
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_a_dry_run_reports_and_writes_nothing(monkeypatch):
    payment = _aged(PaymentFactory())
    flagged = PaymentFactory(needs_attention=True, attention_reason="Amount differs")
    _provider_says(
        monkeypatch,
        **{str(payment.pk): PaymentState("succeeded", Decimal("14.95"), Decimal("0"))},
    )

    report = services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=True)

    assert report.dry_run is True
    assert (report.payments_fixed, report.needs_human) == ([payment.pk], [flagged.pk])
    assert WebhookEvent.objects.count() == 0
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_reconcile_flags_a_refund_left_unsettled():
    payment = _paid(PaymentFactory())
    refund = Refund.objects.create(
        payment=payment, amount=Decimal("5.00"), reason="x",
        created_at=timezone.now() - timedelta(hours=2),
    )  # fmt: skip

    report = services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)
    services.payments_reconcile(older_than=timedelta(minutes=30), dry_run=False)

    assert report.needs_human == [payment.pk]
    payment.refresh_from_db()
    assert payment.needs_attention is True
    assert (
        payment.attention_reason
        == f"Refund {refund.pk} is still pending: check it with the provider."
    )
