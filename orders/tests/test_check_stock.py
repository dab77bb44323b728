"""`check_stock`: stock, sale allotments, holds and ordered units reconcile, or the drifted rows
are named and the command exits non-zero (for cron to alert)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import ProductVariant, SaleCustomer, SaleHold, SaleItem
from catalog.services import variant_stock_rebase
from catalog.tests.factories import ProductVariantFactory
from orders import services
from orders.tests.factories import CartFactory, CartLineFactory, checkout_ready, place
from orders.tests.test_sales import cart_with, make_sale

pytestmark = pytest.mark.django_db


def check() -> str:
    out = StringIO()
    call_command("check_stock", stdout=out)
    return out.getvalue()


def check_drift() -> str:
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("check_stock", stdout=out)
    return out.getvalue() + str(caught.value)


@pytest.fixture
def busy_shop():
    """A sale with orders in every state, a regular order, and a merchant's stock edit."""
    variant, item = make_sale(stock=20, allotment=5, limit=3)
    paid = place(cart_with(variant, 2, email="paid@example.com"))
    services.order_mark_paid(order_id=paid.pk)
    place(cart_with(variant, 1, email="pending@example.com"))
    cancelled = place(cart_with(variant, 1, email="cancelled@example.com"))
    services.order_cancel(order_id=cancelled.pk, reason="test")
    shipped = place(cart_with(variant, 1, email="paid@example.com"))
    services.order_mark_paid(order_id=shipped.pk)
    services.order_mark_shipped(order_id=shipped.pk, carrier="DHL", tracking_number="1")
    regular = ProductVariantFactory(stock=7)
    cart = CartFactory()
    CartLineFactory(cart=cart, variant=regular, quantity=3)
    place(checkout_ready(cart))
    regular.refresh_from_db()
    regular.stock += 10  # the merchant receives 10 more (as the admin's form would save it)
    variant_stock_rebase(variant=regular, stock_shown=regular.stock - 10)
    regular.save(update_fields=["stock"])
    return variant, item, regular


def test_a_shop_in_every_state_reconciles(busy_shop):
    variant, item, regular = busy_shop

    out = check()

    assert out == (
        "Stock reconciles: 2 variant(s), 1 sale item(s); 1 open hold(s) with 1 unit(s) "
        "(0 due for release), 3 sale unit(s) sold.\n"
    )
    assert ProductVariant.objects.get(pk=regular.pk).stock == 14
    assert ProductVariant.objects.get(pk=regular.pk).stock_received == 17


def test_stock_changed_behind_the_shops_back_is_drift(busy_shop):
    variant, _, _ = busy_shop
    ProductVariant.objects.filter(pk=variant.pk).update(stock=99)

    out = check_drift()

    assert (
        f"DRIFT variant {variant.pk} ({variant.sku}): stock 99, but received 20 - ordered 4 = 16"
        in out
    )
    assert "Stock drift in 1 row(s)" in out


def test_a_sale_count_that_disagrees_with_its_holds_is_drift(busy_shop):
    _, item, _ = busy_shop
    SaleItem.objects.filter(pk=item.pk).update(taken=5)

    out = check_drift()

    assert (
        f"DRIFT sale item {item.pk} (sale {item.sale_id}, {item.variant.sku}): "
        "taken 5 of 5, but holds have 4 and orders 4" in out
    )


def test_a_hold_left_held_for_a_cancelled_order_is_drift(busy_shop):
    hold = SaleHold.objects.get(status=SaleHold.Status.RELEASED)
    SaleHold.objects.filter(pk=hold.pk).update(status=SaleHold.Status.HELD)

    out = check_drift()

    assert (
        f"DRIFT hold {hold.pk} (held, 1 unit(s)) of order {hold.reference} "
        "(cancelled, 1 unit(s)) does not match it" in out
    )


def test_a_per_customer_count_that_disagrees_with_the_holds_is_drift(busy_shop):
    SaleCustomer.objects.filter(customer_key="email:paid@example.com").update(units=1)

    out = check_drift()

    assert "customer email:paid@example.com: counted 1 unit(s), holds have 3" in out


def test_holds_past_their_time_are_due_for_release_not_drift(busy_shop):
    SaleHold.objects.filter(status=SaleHold.Status.HELD).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert "1 open hold(s) with 1 unit(s) (1 due for release)" in check()
