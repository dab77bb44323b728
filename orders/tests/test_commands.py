"""The cron commands: expire_unpaid_orders, send_cart_reminders, send_pending_emails. Each
reports what it did in one line, changes nothing with --dry-run and nothing more when run again."""

import threading
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from catalog.models import ProductVariant
from catalog.tests.factories import ProductVariantFactory
from orders import services
from orders.models import Cart, Order, OrderEvent, OutboxEmail
from orders.tests import test_emails
from orders.tests.factories import CartFactory, CartLineFactory, checkout_ready, place
from orders.tests.test_emails import BrokenMailServer, BrokerDown

# The email tests' fixtures: fixed shop settings and links (autouse), tasks run eagerly.
shop_settings = test_emails.shop_settings
celery_eager = test_emails.celery_eager

pytestmark = pytest.mark.django_db

K = OutboxEmail.Kind


def run(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def order_placed_ago(*, minutes: int, quantity: int = 2) -> Order:
    variant = ProductVariantFactory(price=Decimal("10.00"), stock=10)
    cart = CartFactory()
    CartLineFactory(cart=cart, variant=variant, quantity=quantity)
    order = place(checkout_ready(cart))
    Order.objects.filter(pk=order.pk).update(placed_at=timezone.now() - timedelta(minutes=minutes))
    return order


def stock_of(order: Order) -> int:
    return ProductVariant.objects.get(pk=order.lines.get().variant_id).stock


# --- expire_unpaid_orders -----------------------------------------------------------------------


def test_expire_cancels_only_orders_unpaid_past_the_time_and_returns_their_stock():
    old = order_placed_ago(minutes=61)
    fresh = order_placed_ago(minutes=30)
    old_but_paid = order_placed_ago(minutes=120)
    services.order_mark_paid(order_id=old_but_paid.pk)

    output = run("expire_unpaid_orders")

    assert output == (
        "Cancelled 1 unpaid order(s) older than 60 minute(s) "
        "or past their sale hold and returned their stock: "
        f"{old.number}.\n"
    )
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {
        old.pk: Order.Status.CANCELLED,
        fresh.pk: Order.Status.PENDING_PAYMENT,
        old_but_paid.pk: Order.Status.PAID,
    }
    assert (stock_of(old), stock_of(fresh), stock_of(old_but_paid)) == (10, 8, 8)
    assert OrderEvent.objects.get(order=old, to_status=Order.Status.CANCELLED).message == (
        "Cancelled: not paid in time (expired)"
    )
    assert OutboxEmail.objects.filter(order=old, kind=K.ORDER_CANCELLED).count() == 1


def test_expire_a_second_run_does_nothing_more():
    old = order_placed_ago(minutes=90)
    run("expire_unpaid_orders")

    output = run("expire_unpaid_orders")

    assert (
        output == "Cancelled 0 unpaid order(s) older than 60 minute(s) "
        "or past their sale hold and returned their stock.\n"
    )
    assert stock_of(old) == 10
    assert OrderEvent.objects.filter(order=old, to_status=Order.Status.CANCELLED).count() == 1
    assert OutboxEmail.objects.filter(order=old, kind=K.ORDER_CANCELLED).count() == 1


def test_expire_dry_run_reports_and_changes_nothing():
    old = order_placed_ago(minutes=90)

    output = run("expire_unpaid_orders", "--dry-run")

    assert output == (
        "Dry run, nothing changed. Would cancel 1 unpaid order(s) older than 60 minute(s) "
        "or past their sale hold: "
        f"{old.number}.\n"
    )
    old.refresh_from_db()
    assert old.status == Order.Status.PENDING_PAYMENT
    assert stock_of(old) == 8
    assert not OutboxEmail.objects.filter(kind=K.ORDER_CANCELLED).exists()


def test_expire_minutes_option_and_setting_set_the_time(settings):
    settings.SHOP_ORDER_PAYMENT_MINUTES = 20
    half_hour = order_placed_ago(minutes=30)
    ten_minutes = order_placed_ago(minutes=10)

    by_setting = run("expire_unpaid_orders", "--dry-run")
    by_option = run("expire_unpaid_orders", "--dry-run", "--minutes", "5")

    assert by_setting == (
        "Dry run, nothing changed. Would cancel 1 unpaid order(s) older than 20 minute(s) "
        "or past their sale hold: "
        f"{half_hour.number}.\n"
    )
    assert by_option == (
        "Dry run, nothing changed. Would cancel 2 unpaid order(s) older than 5 minute(s) "
        "or past their sale hold: "
        f"{half_hour.number}, {ten_minutes.number}.\n"
    )


@pytest.mark.parametrize("minutes", ["0", "-5"])
def test_expire_refuses_a_time_below_one_minute(minutes):
    order = order_placed_ago(minutes=90)

    with pytest.raises(CommandError, match=f"--minutes must be at least 1, not {minutes}."):
        run("expire_unpaid_orders", "--minutes", minutes)

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_expire_lists_at_most_twenty_numbers():
    orders = [order_placed_ago(minutes=90 + n, quantity=1) for n in range(22)]

    output = run("expire_unpaid_orders", "--dry-run")

    oldest_first = [order.number for order in reversed(orders)]
    assert output == (
        "Dry run, nothing changed. Would cancel 22 unpaid order(s) older than 60 minute(s) "
        "or past their sale hold: " + ", ".join(oldest_first[:20]) + " and 2 more.\n"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_expiry_runs_cancel_each_order_and_return_its_stock_once(monkeypatch):
    monkeypatch.setattr("orders.tasks.outbox_email_send", BrokerDown())  # no tasks to Redis
    orders = [order_placed_ago(minutes=90) for _ in range(6)]
    barrier = threading.Barrier(3)
    outputs, errors = [], []

    def expire():
        try:
            barrier.wait()
            outputs.append(run("expire_unpaid_orders"))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=expire) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    cancelled = sum(int(output.split()[1]) for output in outputs)
    assert cancelled == 6
    assert [stock_of(order) for order in orders] == [10] * 6
    assert OrderEvent.objects.filter(to_status=Order.Status.CANCELLED).count() == 6
    assert OutboxEmail.objects.filter(kind=K.ORDER_CANCELLED).count() == 6


# --- send_cart_reminders ------------------------------------------------------------------------


def idle_cart(*, hours: float, email: str = "idle@example.com", lines: int = 1) -> Cart:
    cart = CartFactory(email=email)
    for _ in range(lines):
        CartLineFactory(cart=cart)
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now() - timedelta(hours=hours))
    return cart


def test_reminders_go_to_idle_carts_with_an_email_and_items_only():
    due = idle_cart(hours=25)
    idle_cart(hours=25, email="")
    idle_cart(hours=25, email="empty@example.com", lines=0)
    idle_cart(hours=2, email="recent@example.com")
    ordered = idle_cart(hours=25, email="ordered@example.com")
    Cart.objects.filter(pk=ordered.pk).update(status=Cart.Status.ORDERED)

    output = run("send_cart_reminders")

    assert output == "Queued a reminder for 1 cart(s) idle for more than 24 hour(s).\n"
    assert list(OutboxEmail.objects.values_list("kind", "cart", "to_email")) == [
        (K.CART_REMINDER, due.pk, "idle@example.com")
    ]
    reminded = Cart.objects.exclude(reminder_sent_at=None).values_list("pk", flat=True)
    assert list(reminded) == [due.pk]


def test_a_reminder_is_emailed_after_the_commit(celery_eager, django_capture_on_commit_callbacks):
    idle_cart(hours=25)

    with django_capture_on_commit_callbacks(execute=True):
        run("send_cart_reminders")

    assert [(m.subject, m.to) for m in mail.outbox] == [
        ("Northwind & Co: your cart is still waiting for you", ["idle@example.com"])
    ]
    assert OutboxEmail.objects.get().status == OutboxEmail.Status.SENT


def test_a_cart_is_never_reminded_twice_even_after_it_changes_and_idles_again():
    cart = idle_cart(hours=25)
    run("send_cart_reminders")

    second = run("send_cart_reminders")
    variant = ProductVariantFactory(stock=5)
    services.cart_add(cart=cart, variant_id=variant.pk, quantity=1)  # touched: not reminded
    Cart.objects.filter(pk=cart.pk).update(updated_at=timezone.now() - timedelta(hours=30))
    third = run("send_cart_reminders")

    assert second == "Queued a reminder for 0 cart(s) idle for more than 24 hour(s).\n"
    assert third == "Queued a reminder for 0 cart(s) idle for more than 24 hour(s).\n"
    assert OutboxEmail.objects.filter(cart=cart).count() == 1
    cart.refresh_from_db()
    assert cart.reminder_sent_at is not None  # so it is no longer a candidate


def test_reminders_dry_run_reports_and_records_nothing():
    cart = idle_cart(hours=25)

    output = run("send_cart_reminders", "--dry-run")

    assert (
        output == "Dry run, nothing sent. Would remind 1 cart(s) idle for more than 24 hour(s).\n"
    )
    assert not OutboxEmail.objects.exists()
    cart.refresh_from_db()
    assert cart.reminder_sent_at is None


def test_reminders_hours_option_and_setting_set_the_idle_time(settings):
    settings.SHOP_CART_REMINDER_HOURS = 48
    idle_cart(hours=30)

    by_setting = run("send_cart_reminders", "--dry-run")
    by_option = run("send_cart_reminders", "--dry-run", "--hours", "12")

    assert by_setting == (
        "Dry run, nothing sent. Would remind 0 cart(s) idle for more than 48 hour(s).\n"
    )
    assert by_option == (
        "Dry run, nothing sent. Would remind 1 cart(s) idle for more than 12 hour(s).\n"
    )


@pytest.mark.parametrize("hours", ["0", "-1"])
def test_reminders_refuse_an_idle_time_below_one_hour(hours):
    idle_cart(hours=25)

    with pytest.raises(CommandError, match=f"--hours must be at least 1, not {hours}."):
        run("send_cart_reminders", "--hours", hours)

    assert not OutboxEmail.objects.exists()


# --- send_pending_emails ------------------------------------------------------------------------


def reminder_recorded(*, minutes_ago: int, email: str) -> OutboxEmail:
    cart = idle_cart(hours=25, email=email)
    outbox = services.outbox_record(kind=K.CART_REMINDER, cart=cart, to_email=email)
    OutboxEmail.objects.filter(pk=outbox.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return outbox


def test_pending_emails_older_than_the_cutoff_are_sent_once():
    old = reminder_recorded(minutes_ago=10, email="old@example.com")
    fresh = reminder_recorded(minutes_ago=1, email="fresh@example.com")

    first = run("send_pending_emails")
    second = run("send_pending_emails")

    assert first == (
        "Sent 1 of 1 pending email(s) older than 5 minute(s); 0 failed and will be retried, "
        "0 given up, 0 no longer needed, 0 already sent or being sent.\n"
    )
    assert second == (
        "Sent 0 of 0 pending email(s) older than 5 minute(s); 0 failed and will be retried, "
        "0 given up, 0 no longer needed, 0 already sent or being sent.\n"
    )
    assert [m.to for m in mail.outbox] == [["old@example.com"]]
    statuses = dict(OutboxEmail.objects.values_list("pk", "status"))
    assert statuses == {old.pk: OutboxEmail.Status.SENT, fresh.pk: OutboxEmail.Status.PENDING}


def test_pending_emails_options_choose_the_age_and_the_batch_size():
    reminder_recorded(minutes_ago=3, email="first@example.com")
    reminder_recorded(minutes_ago=2, email="second@example.com")

    output = run("send_pending_emails", "--older-than-minutes", "0", "--limit", "1")

    assert output.startswith("Sent 1 of 1 pending email(s) older than 0 minute(s);")
    assert [m.to for m in mail.outbox] == [["first@example.com"]]


def test_pending_emails_dry_run_sends_nothing():
    outbox = reminder_recorded(minutes_ago=10, email="old@example.com")

    output = run("send_pending_emails", "--dry-run")

    assert output == (
        "Dry run, nothing sent. Would send 1 pending email(s) older than 5 minute(s).\n"
    )
    assert mail.outbox == []
    outbox.refresh_from_db()
    assert (outbox.status, outbox.attempts) == (OutboxEmail.Status.PENDING, 0)


def test_pending_emails_fail_loudly_when_the_mail_server_fails(settings):
    settings.MAILERS = {"default": {"BACKEND": f"{BrokenMailServer.__module__}.BrokenMailServer"}}
    outbox = reminder_recorded(minutes_ago=10, email="old@example.com")
    out = StringIO()

    with pytest.raises(CommandError, match=r"^1 email\(s\) could not be sent"):
        call_command("send_pending_emails", stdout=out)

    assert out.getvalue() == (
        "Sent 0 of 1 pending email(s) older than 5 minute(s); 1 failed and will be retried, "
        "0 given up, 0 no longer needed, 0 already sent or being sent.\n"
    )
    outbox.refresh_from_db()
    assert (outbox.status, outbox.attempts) == (OutboxEmail.Status.PENDING, 1)
    assert outbox.last_error == "SMTPServerDisconnected: Connection unexpectedly closed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than-minutes", "-1"], "--older-than-minutes cannot be negative, not -1."),
        (["--limit", "0"], "--limit must be at least 1, not 0."),
    ],
)
def test_pending_emails_refuse_bad_options(args, message):
    outbox = reminder_recorded(minutes_ago=10, email="old@example.com")

    with pytest.raises(CommandError, match=message):
        run("send_pending_emails", *args)

    assert mail.outbox == []
    outbox.refresh_from_db()
    assert outbox.status == OutboxEmail.Status.PENDING
