"""The shop's emails: what each says, and that each goes out exactly once, after the commit of
the change it reports, even when the broker is down or a sender runs twice."""

import threading
from datetime import timedelta
from decimal import Decimal
from smtplib import SMTPServerDisconnected

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from catalog.models import ProductVariant
from catalog.tests.factories import ProductFactory, ProductVariantFactory
from orders import services
from orders.emails import email_message_build
from orders.models import Cart, Order, OutboxEmail
from orders.services.emails import MAX_ATTEMPTS, outbox_send, outbox_sweep
from orders.tests.factories import ADDRESS as FACTORY_ADDRESS
from orders.tests.factories import (
    CartFactory,
    CartLineFactory,
    ShippingMethodFactory,
    TaxRateFactory,
    VoucherFactory,
    checkout_ready,
    place,
)

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script> Boots"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; Boots"
BASE_URL = "https://shop.example.com"
ADDRESS = {**FACTORY_ADDRESS, "full_name": "Ada <b>Customer</b>"}
K = OutboxEmail.Kind


@pytest.fixture(autouse=True)
def shop_settings(settings):
    """Fix what the emails show, whatever the environment says."""
    settings.SHOP_NAME = "Northwind & Co"
    settings.SHOP_BASE_URL = BASE_URL
    settings.SHOP_CURRENCY = "EUR"
    settings.SHOP_PRICES_INCLUDE_TAX = True
    settings.SHOP_ORDER_PAYMENT_MINUTES = 60
    settings.DEFAULT_FROM_EMAIL = "Northwind <shop@example.com>"
    return settings


@pytest.fixture
def celery_eager(settings):
    """Run tasks in the test's process, also when REDIS_URL points the app at a real broker (no
    worker consumes it during tests). The Celery app read its settings at start-up: set both."""
    from orders.tasks import outbox_email_send

    conf = outbox_email_send.app.conf
    was_eager = conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    conf.task_always_eager = True
    yield
    conf.task_always_eager = was_eager


class BrokerDown:
    """The task as seen with Redis unreachable: enqueueing raises."""

    def delay(self, *args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


class BrokenMailServer(BaseEmailBackend):
    def send_messages(self, messages):
        raise SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.fixture
def mail_server_down(settings):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.BrokenMailServer"}}


def variant_for_sale(*, name: str = HOSTILE, price: str = "20.00", stock: int = 10, size="M"):
    product = ProductFactory(name=name, variants=[])
    return ProductVariantFactory(
        product=product, price=Decimal(price), stock=stock, options={"size": size}
    )


def order_placed(*, quantity: int = 2, voucher_code: str = "", email="ada@example.com") -> Order:
    """Place an order for `quantity` × €20.00 shipped to DE (19% VAT included), €4.95 shipping."""
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    cart = CartFactory(email=email)
    CartLineFactory(cart=cart, variant=variant_for_sale(), quantity=quantity)
    method = ShippingMethodFactory(name="Parcel <DHL>", price=Decimal("4.95"))
    cart = checkout_ready(cart, shipping_method=method, voucher_code=voucher_code, address=ADDRESS)
    return place(cart)


def record(order: Order, kind: str) -> OutboxEmail:
    return OutboxEmail.objects.get(order=order, kind=kind)


def sent_message(outbox: OutboxEmail):
    """Send the record and return the one message that went out, with its HTML part."""
    assert outbox_send(outbox_id=outbox.pk) is True
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert len(message.alternatives) == 1
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html"
    return message, html


def age(outbox_ids, *, minutes: int) -> None:
    OutboxEmail.objects.filter(pk__in=outbox_ids).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


# --- What each email says -----------------------------------------------------------------------


def test_order_received_email_shows_the_order_its_amounts_address_and_private_link():
    order = order_placed()

    message, html = sent_message(record(order, K.ORDER_RECEIVED))

    link = f"{BASE_URL}/orders/{order.number}/{order.access_token}/"
    assert link == BASE_URL + order.get_absolute_url()
    assert message.subject == f"Northwind & Co: we have received your order {order.number}"
    assert message.to == ["ada@example.com"]
    assert message.from_email == "Northwind <shop@example.com>"
    body = message.body
    assert f"Order {order.number}" in body
    assert f"2 × {HOSTILE} (M): €20.00 each, €40.00" in body
    assert "Subtotal: €40.00" in body
    assert "Discount" not in body
    assert "Shipping, Parcel <DHL>: €4.95" in body
    assert "Tax included: €7.18" in body
    assert "Total: €44.95" in body
    assert "Ada <b>Customer</b>\nHauptstraße 1\n10115 Berlin\nGermany\n" in body
    assert "We hold your items for 60 minutes" in body
    assert link in body
    assert "&lt;" not in body and "&amp;" not in body
    assert ESCAPED in html
    assert HOSTILE not in html
    assert "Ada &lt;b&gt;Customer&lt;/b&gt;" in html
    assert "Parcel &lt;DHL&gt;" in html
    assert "Northwind &amp; Co" in html
    for amount in ("€20.00", "€40.00", "€4.95", "€7.18", "€44.95"):
        assert amount in html
    assert f'href="{link}"' in html
    assert (order.subtotal, order.shipping_total, order.tax_total, order.total) == (
        Decimal("40.00"),
        Decimal("4.95"),
        Decimal("7.18"),
        Decimal("44.95"),
    )


def test_order_email_shows_the_voucher_discount():
    VoucherFactory(code="SAVE10", value=Decimal("10.00"))
    order = order_placed(voucher_code="SAVE10")

    message, html = sent_message(record(order, K.ORDER_RECEIVED))

    assert "Discount (SAVE10): −€4.00" in message.body
    assert "Tax included: €6.54" in message.body
    assert "Total: €40.95" in message.body
    assert "−€4.00" in html
    assert order.total == Decimal("40.95")


def test_order_paid_email_confirms_the_payment():
    order = order_placed()
    services.order_mark_paid(order_id=order.pk)

    message, html = sent_message(record(order, K.ORDER_PAID))

    assert message.subject == f"Northwind & Co: payment received for order {order.number}"
    assert f"We have received your payment of €44.95 for order {order.number}." in message.body
    assert "We hold your items" not in message.body
    assert f"2 × {HOSTILE} (M)" in message.body
    assert "<strong>€44.95</strong>" in html
    assert ESCAPED in html and HOSTILE not in html


def test_order_shipped_email_gives_the_carrier_and_tracking_number():
    order = order_placed()
    services.order_mark_paid(order_id=order.pk)
    services.order_mark_shipped(
        order_id=order.pk, carrier="DHL <Express>", tracking_number="JJD000390007"
    )

    message, html = sent_message(record(order, K.ORDER_SHIPPED))

    assert message.subject == f"Northwind & Co: your order {order.number} is on its way"
    assert "Carrier: DHL <Express>\nTracking number: JJD000390007\n" in message.body
    assert "Total: €44.95" in message.body
    assert "DHL &lt;Express&gt;" in html
    assert "JJD000390007" in html
    assert ESCAPED in html and HOSTILE not in html


def test_order_cancelled_email_says_nothing_was_charged():
    order = order_placed()
    services.order_cancel(order_id=order.pk, reason="by the customer")

    message, html = sent_message(record(order, K.ORDER_CANCELLED))

    assert message.subject == f"Northwind & Co: your order {order.number} has been cancelled"
    assert (
        f"Your order {order.number} has been cancelled and nothing has been charged."
        in message.body
    )
    assert "Total: €44.95" in message.body
    assert BASE_URL + order.get_absolute_url() in message.body
    assert "nothing has been charged" in html
    assert ESCAPED in html and HOSTILE not in html


def test_cart_reminder_lists_the_items_at_todays_prices_and_links_to_the_cart():
    cart = CartFactory(email="bo@example.com")
    CartLineFactory(cart=cart, variant=variant_for_sale(price="12.50"), quantity=3)
    CartLineFactory(
        cart=cart, variant=variant_for_sale(name="Wool Socks", price="4.00", size=""), quantity=1
    )
    outbox = services.outbox_record(kind=K.CART_REMINDER, cart=cart, to_email=cart.email)

    message, html = sent_message(outbox)

    assert message.subject == "Northwind & Co: your cart is still waiting for you"
    assert message.to == ["bo@example.com"]
    assert f"3 × {HOSTILE} (M): €12.50 each, €37.50\n1 × Wool Socks: €4.00 each, €4.00\n" in (
        message.body
    )
    assert "Subtotal: €41.50" in message.body
    assert reverse("orders:cart") == "/cart/"
    assert "\nhttps://shop.example.com/cart/\n" in message.body
    assert "&lt;" not in message.body
    assert ESCAPED in html and HOSTILE not in html
    assert "€41.50" in html
    assert 'href="https://shop.example.com/cart/"' in html


@pytest.mark.parametrize("shop_name", ["Northwind\nOutfitters", "Northwind\r\n  Outfitters"])
def test_subjects_stay_on_one_line(settings, shop_name):
    settings.SHOP_NAME = shop_name
    order = order_placed()

    message = email_message_build(record(order, K.ORDER_RECEIVED))

    assert message.subject == f"Northwind Outfitters: we have received your order {order.number}"
    message.message()  # a header with a line break would raise here


def test_each_email_has_a_message_id_fixed_by_its_record():
    order = order_placed()
    outbox = record(order, K.ORDER_RECEIVED)

    first = email_message_build(outbox)
    second = email_message_build(outbox)

    expected = f"<order_received.{outbox.pk}.{outbox.created_at:%Y%m%d%H%M%S}@shop.example.com>"
    assert first.extra_headers["Message-ID"] == expected
    assert second.extra_headers["Message-ID"] == expected


def test_building_an_order_email_costs_the_same_queries_for_any_number_of_lines(
    django_assert_num_queries,
):
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    cart = CartFactory()
    for _ in range(5):
        CartLineFactory(cart=cart, variant=variant_for_sale())
    order = place(checkout_ready(cart))
    outbox = OutboxEmail.objects.get(order=order, kind=K.ORDER_RECEIVED)

    with django_assert_num_queries(2):  # the order, its lines
        message = email_message_build(outbox)

    assert message.body.count(f"1 × {HOSTILE} (M): €20.00 each, €20.00") == 5


# --- Exactly once, after commit -----------------------------------------------------------------


def test_an_order_email_is_sent_once_after_commit_and_never_again(
    celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        order = order_placed()

    assert len(callbacks) == 1
    assert [m.subject for m in mail.outbox] == [
        f"Northwind & Co: we have received your order {order.number}"
    ]
    outbox = record(order, K.ORDER_RECEIVED)
    assert outbox.status == OutboxEmail.Status.SENT
    assert outbox.sent_at is not None
    assert outbox.attempts == 1

    assert outbox_send(outbox_id=outbox.pk) is False
    age([outbox.pk], minutes=60)
    result = outbox_sweep(older_than=timedelta(minutes=5), limit=100)

    assert (result.pending, result.sent) == (0, [])
    assert len(mail.outbox) == 1
    outbox.refresh_from_db()
    assert outbox.attempts == 1


def test_each_status_change_records_its_email_once(
    celery_eager, django_capture_on_commit_callbacks
):
    order = order_placed()
    with django_capture_on_commit_callbacks(execute=True):
        services.order_mark_paid(order_id=order.pk)
        services.order_mark_shipped(order_id=order.pk, carrier="DHL", tracking_number="JJD1")

    # Placement's own callback was not run: its email is still pending for the sweep.
    assert sorted(OutboxEmail.objects.filter(order=order).values_list("kind", "status")) == [
        (K.ORDER_PAID, OutboxEmail.Status.SENT),
        (K.ORDER_RECEIVED, OutboxEmail.Status.PENDING),
        (K.ORDER_SHIPPED, OutboxEmail.Status.SENT),
    ]
    assert len(mail.outbox) == 2


def test_a_second_record_of_the_same_kind_for_an_order_is_refused():
    order = order_placed()

    again = services.outbox_record(kind=K.ORDER_RECEIVED, order=order, to_email=order.email)

    assert again is None
    assert OutboxEmail.objects.filter(order=order, kind=K.ORDER_RECEIVED).count() == 1


def test_a_placement_that_rolls_back_sends_nothing(
    celery_eager, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        order_placed()
        raise RuntimeError("the request failed after placing")

    assert callbacks == []
    assert Order.objects.count() == 0
    assert OutboxEmail.objects.count() == 0
    assert ProductVariant.objects.count() == 0
    assert mail.outbox == []


def test_a_cancellation_that_rolls_back_sends_nothing(
    celery_eager, django_capture_on_commit_callbacks
):
    order = order_placed()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.order_cancel(order_id=order.pk, reason="by the customer")
        raise RuntimeError("the request failed after cancelling")

    assert callbacks == []
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert not OutboxEmail.objects.filter(kind=K.ORDER_CANCELLED).exists()
    assert mail.outbox == []


def test_with_the_broker_down_the_email_waits_and_the_sweep_sends_it(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("orders.tasks.outbox_email_send", BrokerDown())

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        order = order_placed()

    assert len(callbacks) == 1
    outbox = record(order, K.ORDER_RECEIVED)
    assert outbox.status == OutboxEmail.Status.PENDING
    assert mail.outbox == []
    assert f"Could not enqueue outbox email {outbox.pk}" in caplog.text

    too_fresh = outbox_sweep(older_than=timedelta(minutes=5), limit=100)
    assert (too_fresh.pending, too_fresh.sent, len(mail.outbox)) == (0, [], 0)

    age([outbox.pk], minutes=6)
    result = outbox_sweep(older_than=timedelta(minutes=5), limit=100)

    assert result.sent == [outbox.pk]
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    outbox.refresh_from_db()
    assert outbox.status == OutboxEmail.Status.SENT


def test_the_task_sends_the_record_and_is_safe_to_run_twice(celery_eager):
    from orders.tasks import outbox_email_send

    order = order_placed()
    outbox = record(order, K.ORDER_RECEIVED)

    assert outbox_email_send.delay(outbox.pk).get() is True
    assert outbox_email_send.delay(outbox.pk).get() is False
    assert len(mail.outbox) == 1


# --- Failures ---------------------------------------------------------------------------------


def test_a_failed_send_is_recorded_and_raised_for_the_task_to_retry(mail_server_down):
    order = order_placed()
    outbox = record(order, K.ORDER_RECEIVED)

    with pytest.raises(SMTPServerDisconnected):
        outbox_send(outbox_id=outbox.pk)

    outbox.refresh_from_db()
    assert outbox.status == OutboxEmail.Status.PENDING
    assert outbox.attempts == 1
    assert outbox.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"
    assert outbox.sent_at is None


def test_after_max_attempts_the_email_is_given_up_and_never_sent(settings, mail_server_down):
    order = order_placed()
    outbox = record(order, K.ORDER_RECEIVED)
    for _ in range(MAX_ATTEMPTS):
        with pytest.raises(SMTPServerDisconnected):
            outbox_send(outbox_id=outbox.pk)
    outbox.refresh_from_db()
    assert (outbox.status, outbox.attempts) == (OutboxEmail.Status.FAILED, MAX_ATTEMPTS)

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    assert outbox_send(outbox_id=outbox.pk) is False
    age([outbox.pk], minutes=60)
    result = outbox_sweep(older_than=timedelta(minutes=5), limit=100)

    assert (result.pending, result.sent) == (0, [])
    assert mail.outbox == []
    outbox.refresh_from_db()
    assert (outbox.status, outbox.attempts) == (OutboxEmail.Status.FAILED, MAX_ATTEMPTS)


def test_the_sweep_stops_when_the_mail_server_keeps_failing(mail_server_down):
    carts = [CartFactory() for _ in range(5)]
    for cart in carts:
        CartLineFactory(cart=cart)
    ids = [
        services.outbox_record(kind=K.CART_REMINDER, cart=cart, to_email=cart.email).pk
        for cart in carts
    ]
    for minutes, outbox_id in zip((50, 40, 30, 20, 10), ids, strict=True):
        age([outbox_id], minutes=minutes)

    result = outbox_sweep(older_than=timedelta(minutes=5), limit=100)

    assert result.pending == 5
    assert result.failed == ids[:3]
    assert result.stopped_early is True
    attempts = dict(OutboxEmail.objects.values_list("pk", "attempts"))
    assert [attempts[pk] for pk in ids] == [1, 1, 1, 0, 0]


def test_a_reminder_for_a_cart_ordered_since_is_not_sent():
    cart = CartFactory()
    CartLineFactory(cart=cart)
    outbox = services.outbox_record(kind=K.CART_REMINDER, cart=cart, to_email=cart.email)
    Cart.objects.filter(pk=cart.pk).update(status=Cart.Status.ORDERED)
    age([outbox.pk], minutes=10)

    result = outbox_sweep(older_than=timedelta(minutes=5), limit=100)

    assert (result.sent, result.not_needed, result.failed) == ([], [outbox.pk], [])
    assert mail.outbox == []
    outbox.refresh_from_db()
    assert outbox.status == OutboxEmail.Status.FAILED
    assert outbox.last_error == (
        "Not sent: the cart was checked out or merged before the reminder went out."
    )


# --- The sweep ----------------------------------------------------------------------------------


def test_the_sweep_sends_the_oldest_first_up_to_its_limit():
    carts = [CartFactory() for _ in range(3)]
    for cart in carts:
        CartLineFactory(cart=cart)
    ids = [
        services.outbox_record(kind=K.CART_REMINDER, cart=cart, to_email=cart.email).pk
        for cart in carts
    ]
    for minutes, outbox_id in zip((10, 30, 20), ids, strict=True):
        age([outbox_id], minutes=minutes)

    result = outbox_sweep(older_than=timedelta(minutes=5), limit=2)

    assert result.sent == [ids[1], ids[2]]
    assert [m.to for m in mail.outbox] == [[carts[1].email], [carts[2].email]]
    assert OutboxEmail.objects.get(pk=ids[0]).status == OutboxEmail.Status.PENDING


def test_a_dry_run_sweep_sends_nothing():
    order = order_placed()
    outbox = record(order, K.ORDER_RECEIVED)
    age([outbox.pk], minutes=10)

    result = outbox_sweep(older_than=timedelta(minutes=5), limit=100, dry_run=True)

    assert (result.pending, result.sent, result.dry_run) == (1, [], True)
    assert mail.outbox == []
    outbox.refresh_from_db()
    assert (outbox.status, outbox.attempts) == (OutboxEmail.Status.PENDING, 0)


class SlowMailServer(BaseEmailBackend):
    """Takes a moment per message (so concurrent senders overlap) and counts what it sends."""

    sent: list[str] = []
    lock = threading.Lock()

    def send_messages(self, messages):
        import time

        time.sleep(0.02)
        with self.lock:
            SlowMailServer.sent.extend(m.extra_headers["Message-ID"] for m in messages)
        return len(messages)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_send_every_email_exactly_once(settings, monkeypatch):
    monkeypatch.setattr("orders.tasks.outbox_email_send", BrokerDown())  # only the sweeps send
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.SlowMailServer"}}
    SlowMailServer.sent = []
    orders = [order_placed(email=f"buyer{n}@example.com") for n in range(4)]
    for order in orders:
        for kind in (K.ORDER_PAID, K.ORDER_SHIPPED, K.ORDER_CANCELLED):
            OutboxEmail.objects.create(kind=kind, order=order, to_email=order.email)
    age(list(OutboxEmail.objects.values_list("pk", flat=True)), minutes=10)
    barrier = threading.Barrier(3)
    results, errors = [], []

    def sweep():
        try:
            barrier.wait()
            results.append(outbox_sweep(older_than=timedelta(minutes=5), limit=100))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sent_ids = sorted(pk for result in results for pk in result.sent)
    assert sent_ids == sorted(OutboxEmail.objects.values_list("pk", flat=True))
    assert len(SlowMailServer.sent) == 16
    assert len(set(SlowMailServer.sent)) == 16
    assert set(OutboxEmail.objects.values_list("status", flat=True)) == {OutboxEmail.Status.SENT}
