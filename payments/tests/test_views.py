"""The customer's side of paying: the order page's Pay button, choosing a provider, the test
provider's hosted page and the page the customer returns to."""

from decimal import Decimal

import pytest
from django.urls import reverse

from orders import services as order_services
from orders.models import Order, OutboxEmail
from payments.models import Payment, WebhookEvent
from payments.providers import StartResult
from payments.tests.factories import PaymentFactory, order_placed

pytestmark = pytest.mark.django_db

S = Order.Status


@pytest.fixture(autouse=True)
def _pipeline(test_provider, celery_eager):
    """The test provider is the one provider; tasks run in the test's process."""


@pytest.fixture
def pay(client, django_capture_on_commit_callbacks):
    """POST to a URL, running what the request enqueued after its commit."""

    def post(url: str, data: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data or {})

    return post


def _start_url(order: Order) -> str:
    return reverse("payments:start", kwargs={"number": order.number, "token": order.access_token})


def _return_url(order: Order) -> str:
    return reverse("payments:return", kwargs={"number": order.number, "token": order.access_token})


def _test_page(payment: Payment) -> str:
    return reverse("payments:test-page", kwargs={"reference": payment.provider_reference})


# --- The order page and starting a payment ------------------------------------------------------


def test_the_order_page_pay_button_posts_to_the_payment_start(client):
    order = order_placed()

    html = client.get(order.get_absolute_url()).content.decode()

    assert f'action="{_start_url(order)}"' in html
    assert "Pay now · €14.95" in html


def test_paying_with_the_one_provider_goes_straight_to_its_page(client):
    order = order_placed()

    response = client.post(_start_url(order))

    payment = Payment.objects.get()
    assert (payment.order_id, payment.provider, payment.amount) == (order.pk, "test", order.total)
    assert response.status_code == 302
    assert response["Location"] == _test_page(payment)


def test_with_several_providers_the_customer_chooses_one(client, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_12345"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    order = order_placed()

    page = client.post(_start_url(order))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="provider" value="stripe"' in html and 'name="provider" value="test"' in html
    assert f'action="{_start_url(order)}"' in html
    assert Payment.objects.count() == 0

    chosen = client.post(_start_url(order), {"provider": "test"})

    assert chosen["Location"] == _test_page(Payment.objects.get())


def test_a_provider_with_its_own_payment_form_gets_the_stripe_checkout_page(
    client, settings, monkeypatch
):
    settings.STRIPE_SECRET_KEY = "sk_test_12345"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    order = order_placed()

    def start(self, *, payment, return_url):
        assert return_url == f"http://testserver{_return_url(order)}"
        return StartResult(provider_reference="pi_123", client_secret="pi_123_secret_456")

    monkeypatch.setattr("payments.providers.stripe.StripeProvider.start", start)

    page = client.post(_start_url(order), {"provider": "stripe"})

    assert page.status_code == 200
    assert [t.name for t in page.templates][0] == "payments/stripe_checkout.html"
    assert page.context["client_secret"] == "pi_123_secret_456"
    assert page.context["publishable_key"] == "pk_test_12345"
    assert page.context["payment"] == Payment.objects.get(provider_reference="pi_123")


def test_an_unknown_provider_choice_is_refused(client):
    order = order_placed()

    response = client.post(_start_url(order), {"provider": "paypal"}, follow=True)

    assert "That way of paying is not available." in response.content.decode()
    assert Payment.objects.count() == 0


def test_without_any_provider_the_customer_is_told_so(client, settings):
    settings.PAYMENTS_TEST_PROVIDER = False
    order = order_placed()

    response = client.post(_start_url(order), follow=True)

    assert "Online payment is not available right now." in response.content.decode()
    assert Payment.objects.count() == 0


def test_a_paid_order_cannot_be_paid_again(client):
    order = order_placed()
    order_services.order_mark_paid(order_id=order.pk)

    response = client.post(_start_url(order), follow=True)

    assert f"Order {order.number} has been paid already." in response.content.decode()
    assert Payment.objects.count() == 0


def test_starting_a_payment_needs_the_orders_token_and_a_post(client):
    order = order_placed()

    assert client.post(_start_url(order).replace(order.access_token, "wrong")).status_code == 404
    assert client.get(_start_url(order)).status_code == 405
    assert Payment.objects.count() == 0


# --- The test provider's page -------------------------------------------------------------------


def test_the_test_page_shows_the_order_and_what_to_pay(client):
    payment = PaymentFactory()

    html = client.get(_test_page(payment)).content.decode()

    assert payment.order.number in html and "€14.95" in html
    for action in ("pay", "decline", "later"):
        assert f'name="action" value="{action}"' in html


def test_paying_on_the_test_page_goes_through_the_webhook_pipeline(pay, client):
    payment = PaymentFactory()
    order = payment.order

    response = pay(_test_page(payment), {"action": "pay"})

    assert response["Location"] == _return_url(order)
    event = WebhookEvent.objects.get()
    assert (event.provider, event.event_type, event.outcome) == (
        "test", "payment_intent.succeeded", "applied",
    )  # fmt: skip
    order.refresh_from_db()
    assert order.status == S.PAID
    assert OutboxEmail.objects.filter(order=order, kind="order_paid").count() == 1
    html = client.get(response["Location"]).content.decode()
    assert "payment received" in html
    assert 'http-equiv="refresh"' not in html


def test_declining_on_the_test_page_lets_the_customer_try_again(pay, client):
    payment = PaymentFactory()
    order = payment.order

    response = pay(_test_page(payment), {"action": "decline"})

    payment.refresh_from_db()
    assert (payment.status, Order.objects.get(pk=order.pk).status) == ("failed", S.PENDING_PAYMENT)
    html = client.get(response["Location"]).content.decode()
    assert "Your payment failed" in html and "Try again" in html

    again = client.post(_start_url(order))

    assert again["Location"] == _test_page(payment)
    assert Payment.objects.get().status == "pending"


def test_paying_later_on_the_test_page_sends_nothing_and_the_return_page_waits(pay, client):
    payment = PaymentFactory()

    response = pay(_test_page(payment), {"action": "later"})

    assert WebhookEvent.objects.count() == 0
    html = client.get(response["Location"]).content.decode()
    assert "Waiting for confirmation" in html
    assert '<meta http-equiv="refresh" content="3">' in html


def test_the_test_page_cannot_pay_twice(pay):
    payment = PaymentFactory()
    pay(_test_page(payment), {"action": "pay"})

    pay(_test_page(payment), {"action": "pay"})

    assert WebhookEvent.objects.count() == 1


def test_the_test_page_does_not_exist_while_the_test_provider_is_off(client, settings):
    payment = PaymentFactory()
    settings.PAYMENTS_TEST_PROVIDER = False

    assert client.get(_test_page(payment)).status_code == 404
    assert client.post(_test_page(payment), {"action": "pay"}).status_code == 404
    assert WebhookEvent.objects.count() == 0


def test_the_test_page_of_an_unknown_reference_does_not_exist(client):
    assert client.get("/payments/test/test_nothing/").status_code == 404


# --- The return page ----------------------------------------------------------------------------


def test_the_return_page_needs_the_orders_token(client):
    order = order_placed()

    assert client.get(_return_url(order).replace(order.access_token, "nope")).status_code == 404


def test_the_return_page_of_a_flagged_payment_says_it_is_being_checked(client):
    payment = PaymentFactory(
        status="succeeded", amount_received=Decimal("1.00"), needs_attention=True
    )

    html = client.get(_return_url(payment.order)).content.decode()

    assert "We are checking your payment" in html


def test_the_return_page_of_a_cancelled_order_paid_late_says_it_is_refunded(client):
    payment = PaymentFactory(status="succeeded", amount_received=Decimal("14.95"))
    order_services.order_cancel(order_id=payment.order_id, reason="by the customer")

    html = client.get(_return_url(payment.order)).content.decode()

    assert "This order was cancelled" in html and "we are refunding it in full" in html
