"""The whole purchase with the built-in test provider, through the pages a browser uses:
product → cart → checkout → review → place → pay on the test page → order paid → the emails
written as files (the embedded default), each request checked by CSRF as a browser's would be."""

import re
from decimal import Decimal

import pytest
from django.test import Client

from catalog.tests.factories import ProductFactory
from orders.models import Order, OutboxEmail
from orders.tests.factories import ShippingMethodFactory, TaxRateFactory
from payments.models import Payment, WebhookEvent

# Real commits, so what the requests schedule with on_commit (tasks, emails) runs as in production.
pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "http://testserver"


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def _post(browser: Client, url: str, page_html: str, data: dict):
    token = _hidden(page_html, "csrfmiddlewaretoken")
    return browser.post(url, {"csrfmiddlewaretoken": token, **data}, HTTP_ORIGIN=ORIGIN)


def test_a_guest_buys_and_pays_with_the_test_provider_and_gets_both_emails_as_files(
    settings, tmp_path, test_provider, celery_eager
):
    mail_dir = tmp_path / "mail"
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": str(mail_dir)},
        }
    }
    product = ProductFactory(
        name="Trail tent", slug="trail-tent", variants=[{"price": Decimal("99.00"), "stock": 3}]
    )
    variant = product.variants.get()
    method = ShippingMethodFactory(name="Standard", price=Decimal("4.95"))
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    browser = Client(enforce_csrf_checks=True)

    # Product page → add to cart
    page = browser.get("/product/trail-tent/").content.decode()
    response = _post(browser, "/cart/add/", page, {"variant": variant.pk, "quantity": "2"})
    assert response.status_code == 302

    # Cart → checkout details
    page = browser.get("/checkout/").content.decode()
    response = _post(
        browser,
        "/checkout/",
        page,
        {
            "email": "grace@example.com",
            "address_choice": "new",
            "full_name": "Grace Hopper",
            "line1": "Hauptstraße 1",
            "line2": "",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
            "phone": "",
            "shipping_method": method.pk,
            "voucher_code": "",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/checkout/review/"

    # Review → place the order (only the token and the quote's fingerprint are sent)
    page = browser.get("/checkout/review/").content.decode()
    response = _post(
        browser,
        "/checkout/place/",
        page,
        {
            "checkout_token": _hidden(page, "checkout_token"),
            "fingerprint": _hidden(page, "fingerprint"),
        },
    )
    order = Order.objects.get()
    assert response["Location"] == order.get_absolute_url()
    assert (order.status, order.total) == (Order.Status.PENDING_PAYMENT, Decimal("202.95"))

    # Order page → Pay → the test provider's page → Pay
    page = browser.get(order.get_absolute_url()).content.decode()
    pay_url = f"/payments/start/{order.number}/{order.access_token}/"
    response = _post(browser, pay_url, page, {})
    assert response.status_code == 302
    test_page_url = response["Location"]
    page = browser.get(test_page_url).content.decode()
    response = _post(browser, test_page_url, page, {"action": "pay"})
    assert response.status_code == 302
    page = browser.get(response["Location"]).content.decode()

    # Then the order is paid through the webhook pipeline, and both emails were written as files
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert "payment received" in page.lower()
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    assert list(WebhookEvent.objects.values_list("outcome", flat=True)) == ["applied"]
    assert sorted(OutboxEmail.objects.values_list("kind", "status")) == [
        ("order_paid", "sent"),
        ("order_received", "sent"),
    ]
    written = "".join(path.read_text() for path in sorted(mail_dir.iterdir()))
    assert f"we have received your order {order.number}" in written
    assert order.number in written and "grace@example.com" in written
    assert written.count("To: grace@example.com") == 2
    variant.refresh_from_db()
    assert variant.stock == 1
