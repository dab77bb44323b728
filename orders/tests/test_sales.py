"""Flash sales in the cart, at checkout and in the order's life: the sale price inside the
window only, sale units taken at placement (never beyond the allotment or a customer's limit),
held until payment, and back on sale exactly once when the order is cancelled or runs out of
time (by cron, or lazily by the next buyer).
"""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.tests.factories import UserFactory
from catalog.models import ProductVariant, Sale, SaleCustomer, SaleHold, SaleItem
from catalog.selectors import sale_offers
from catalog.tests.factories import ProductVariantFactory
from orders import selectors, services
from orders.exceptions import (
    InvalidQuantity,
    InvalidTransition,
    NotEnoughStock,
    PricesChanged,
    SaleUnavailable,
)
from orders.models import Cart, Order, OrderLine
from orders.tests.factories import CartFactory, CartLineFactory, checkout_ready, place

pytestmark = pytest.mark.django_db

REGULAR = Decimal("49.00")
SALE = Decimal("19.00")


def make_sale(
    *,
    stock: int = 100,
    allotment: int = 10,
    limit: int | None = None,
    starts_in: timedelta = timedelta(minutes=-1),
    lasts: timedelta = timedelta(hours=1),
    hold_minutes: int = 10,
) -> tuple[ProductVariant, SaleItem]:
    """A variant at the regular price, in a sale (live by default) at the sale price."""
    variant = ProductVariantFactory(stock=stock, price=REGULAR, product__name="Flash Kettle")
    starts_at = timezone.now() + starts_in
    sale = Sale.objects.create(
        name="Midnight Madness",
        starts_at=starts_at,
        ends_at=starts_at + lasts,
        per_customer_limit=limit,
        hold_minutes=hold_minutes,
    )
    item = SaleItem.objects.create(sale=sale, variant=variant, sale_price=SALE, allotment=allotment)
    return variant, item


def cart_with(variant: ProductVariant, quantity: int = 1, *, email: str = "", user=None) -> Cart:
    cart = CartFactory(user=user, **({"email": email} if email else {}))
    services.cart_add(cart=cart, variant_id=variant.pk, quantity=quantity)
    return checkout_ready(cart)


def taken(item: SaleItem) -> int:
    return SaleItem.objects.values_list("taken", flat=True).get(pk=item.pk)


def stock(variant: ProductVariant) -> int:
    return ProductVariant.objects.values_list("stock", flat=True).get(pk=variant.pk)


def at(moment):
    """Freeze the clock the services read (the only thing these tests fake)."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


# --- The price belongs to the window ---------------------------------------------------------


def test_the_sale_price_applies_only_inside_the_window_to_the_second():
    # Given a sale from 12:00:00 to 12:10:00 and a cart holding its variant
    variant, item = make_sale(starts_in=timedelta(hours=1), lasts=timedelta(minutes=10))
    cart = CartFactory()
    CartLineFactory(cart=cart, variant=variant, quantity=1)
    starts_at, ends_at = item.sale.starts_at, item.sale.ends_at
    one_second = timedelta(seconds=1)

    def unit_price(moment) -> Decimal:
        return selectors.checkout_quote(cart=cart, now=moment).lines[0].unit_price

    # Then the price is regular until the start, the sale price from the start, and regular
    # again from the end, with nothing run in between
    assert unit_price(starts_at - one_second) == REGULAR
    assert unit_price(starts_at) == SALE
    assert unit_price(ends_at - one_second) == SALE
    assert unit_price(ends_at) == REGULAR


def test_a_switched_off_sale_charges_the_regular_price():
    variant, item = make_sale()
    Sale.objects.filter(pk=item.sale_id).update(is_active=False)
    cart = cart_with(variant)

    assert selectors.checkout_quote(cart=cart).lines[0].unit_price == REGULAR


def test_adding_a_sale_item_remembers_the_sale_price():
    variant, _ = make_sale()
    cart = CartFactory()

    line = services.cart_add(cart=cart, variant_id=variant.pk, quantity=2)

    assert line.unit_price_seen == SALE
    quote = selectors.checkout_quote(cart=cart)
    assert (quote.lines[0].unit_price, quote.lines[0].price_changed) == (SALE, False)
    assert quote.totals.subtotal == Decimal("38.00")


def test_a_sale_that_ends_while_in_the_cart_is_charged_at_the_regular_price_after_review():
    # Given a sale order reviewed at the sale price
    variant, item = make_sale()
    cart = cart_with(variant)
    reviewed = selectors.checkout_quote(cart=cart, email=cart.email)
    assert reviewed.totals.subtotal == SALE

    # When the sale ends before the order is placed
    Sale.objects.filter(pk=item.sale_id).update(ends_at=timezone.now() - timedelta(seconds=1))

    # Then placing it at the reviewed (sale) price is refused, nothing is written, and the
    # new review shows the regular price
    with pytest.raises(PricesChanged):
        services.order_place(
            cart=cart, checkout_token=cart.checkout_token, fingerprint=reviewed.fingerprint
        )
    assert (Order.objects.count(), stock(variant), taken(item)) == (0, 100, 0)
    assert selectors.checkout_quote(cart=cart).lines[0].unit_price == REGULAR


# --- Taking, holding, selling and releasing units ------------------------------------------------


def test_placing_a_sale_order_holds_its_units_for_the_sales_hold_time():
    variant, item = make_sale(hold_minutes=10)
    cart = cart_with(variant, 2)

    order = place(cart)

    line = OrderLine.objects.select_related("sale_hold").get(order=order)
    hold = line.sale_hold
    assert (line.unit_price, line.quantity, order.subtotal) == (SALE, 2, Decimal("38.00"))
    assert (hold.sale_item_id, hold.quantity, hold.status, hold.reference) == (
        item.pk, 2, SaleHold.Status.HELD, order.number,
    )  # fmt: skip
    assert hold.expires_at == order.placed_at + timedelta(minutes=10)
    assert order.expires_at == hold.expires_at
    assert (taken(item), stock(variant)) == (2, 98)
    customer = SaleCustomer.objects.get(sale=item.sale)
    assert (customer.customer_key, customer.units) == (f"email:{cart.email}", 2)


def test_an_order_without_sale_items_expires_after_the_payment_time(settings):
    settings.SHOP_ORDER_PAYMENT_MINUTES = 45
    cart = cart_with(ProductVariantFactory(stock=5))

    order = place(cart)

    assert order.expires_at == order.placed_at + timedelta(minutes=45)
    assert not OrderLine.objects.filter(order=order, sale_hold__isnull=False).exists()


def test_paying_sells_the_held_units():
    variant, item = make_sale()
    order = place(cart_with(variant, 1))

    services.order_mark_paid(order_id=order.pk)

    hold = SaleHold.objects.get(reference=order.number)
    assert (hold.status, taken(item), stock(variant)) == (SaleHold.Status.SOLD, 1, 99)
    assert hold.settled_at is not None


def test_cancelling_puts_the_units_back_on_sale_exactly_once():
    variant, item = make_sale(limit=2)
    order = place(cart_with(variant, 2, email="ann@example.com"))

    services.order_cancel(order_id=order.pk, reason="changed my mind")
    with pytest.raises(InvalidTransition):
        services.order_cancel(order_id=order.pk, reason="again")

    hold = SaleHold.objects.get(reference=order.number)
    assert (hold.status, taken(item), stock(variant)) == (SaleHold.Status.RELEASED, 0, 100)
    assert SaleCustomer.objects.get(sale=item.sale).units == 0
    # and the customer may buy their limit again
    place(cart_with(variant, 2, email="ann@example.com"))
    assert taken(item) == 2


def test_the_last_sale_units_gone_at_placement_refuse_the_order_and_write_nothing():
    # Given two carts reviewed while 1 unit was left in the sale
    variant, item = make_sale(allotment=1)
    first, second = cart_with(variant), cart_with(variant)
    fingerprint = selectors.checkout_quote(cart=second, email=second.email).fingerprint
    place(first)

    # When the second is placed
    with pytest.raises(SaleUnavailable) as caught:
        services.order_place(
            cart=second, checkout_token=second.checkout_token, fingerprint=fingerprint
        )

    # Then it is refused with a clear message, and nothing of it was written
    assert "The sale has sold out of" in str(caught.value)
    assert (Order.objects.count(), taken(item), stock(variant)) == (1, 1, 99)
    assert SaleHold.objects.count() == 1
    assert Cart.objects.get(pk=second.pk).status == Cart.Status.OPEN
    # and the cart now shows the regular price for the stock outside the sale
    line = selectors.checkout_quote(cart=second).lines[0]
    assert (line.unit_price, line.note) == (REGULAR, "The sale has sold out of this item.")


def test_a_sale_never_sells_beyond_its_allotment_even_with_stock_left():
    variant, item = make_sale(stock=50, allotment=3)
    for _ in range(3):
        place(cart_with(variant))

    quote = selectors.checkout_quote(cart=cart_with(variant))

    assert quote.lines[0].unit_price == REGULAR
    assert (taken(item), stock(variant)) == (3, 47)


def test_adding_more_than_the_sale_has_left_is_refused():
    variant, _ = make_sale(stock=5, allotment=2)
    cart = CartFactory()

    with pytest.raises(NotEnoughStock) as caught:
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=3)

    assert str(caught.value) == f"Only 2 of {variant.product.name} left in the sale."
    assert not cart.lines.exists()


def test_adding_more_than_the_per_customer_limit_is_refused():
    variant, _ = make_sale(limit=2)
    cart = CartFactory()

    with pytest.raises(InvalidQuantity) as caught:
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=3)

    assert str(caught.value) == "You can buy at most 2 in the sale “Midnight Madness”."


# --- The per-customer limit --------------------------------------------------------------------


def test_a_guest_cannot_pass_the_limit_with_a_second_order_under_the_same_email():
    variant, item = make_sale(limit=2)
    place(cart_with(variant, 2, email="bob@example.com"))
    cart = cart_with(variant, 1, email="BOB@example.com")

    quote = selectors.checkout_quote(cart=cart, email=cart.email)
    assert quote.problems == [
        "You can buy at most 2 in the sale “Midnight Madness” and your orders already have 2."
    ]
    with pytest.raises(SaleUnavailable, match="at most 2"):
        services.order_place(
            cart=cart, checkout_token=cart.checkout_token, fingerprint=quote.fingerprint
        )
    assert (Order.objects.count(), taken(item)) == (1, 2)
    # another guest is not affected
    place(cart_with(variant, 2, email="carol@example.com"))
    assert taken(item) == 4


def test_a_signed_in_customer_is_limited_by_account_whatever_email_they_give():
    variant, item = make_sale(limit=1)
    user = UserFactory()
    place(cart_with(variant, 1, email="one@example.com", user=user), user=user)
    Cart.objects.filter(user=user, status=Cart.Status.OPEN).delete()
    cart = cart_with(variant, 1, email="two@example.com", user=user)
    fingerprint = selectors.checkout_quote(cart=cart, email=cart.email).fingerprint

    with pytest.raises(SaleUnavailable, match="at most 1"):
        # the quote already names it; placement refuses it even with a forged review
        services.checkout._order_place(
            cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint, user=user
        )
    assert taken(item) == 1
    assert SaleCustomer.objects.get(sale=item.sale).customer_key == f"user:{user.pk}"


# --- Holds run out ---------------------------------------------------------------------------


def test_units_of_an_expired_hold_show_as_back_on_sale_at_once():
    variant, item = make_sale(allotment=1, hold_minutes=10)
    order = place(cart_with(variant))
    assert sale_offers(variant_ids=[variant.pk])[variant.pk].units_left == 0

    later = order.placed_at + timedelta(minutes=10, seconds=1)

    assert sale_offers(variant_ids=[variant.pk], now=later)[variant.pk].units_left == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_the_next_buyer_releases_an_expired_hold_and_gets_its_unit():
    # Given the only sale unit held by an order whose time has run out
    variant, item = make_sale(allotment=1, stock=1, hold_minutes=10)
    abandoned = place(cart_with(variant))
    Order.objects.filter(pk=abandoned.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    SaleHold.objects.filter(reference=abandoned.number).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    # When another buyer adds it and checks out (no cron has run)
    cart = CartFactory()
    services.cart_add(cart=cart, variant_id=variant.pk, quantity=1)
    order = place(checkout_ready(cart))

    # Then the abandoned order was cancelled, and its unit sold to the new buyer, once
    assert Order.objects.get(pk=abandoned.pk).status == Order.Status.CANCELLED
    assert (order.status, order.subtotal) == (Order.Status.PENDING_PAYMENT, SALE)
    assert list(SaleHold.objects.order_by("pk").values_list("status", flat=True)) == [
        SaleHold.Status.RELEASED,
        SaleHold.Status.HELD,
    ]
    assert (taken(item), stock(variant)) == (1, 0)


def test_the_expiry_command_cancels_sale_orders_past_their_hold(settings):
    settings.SHOP_ORDER_PAYMENT_MINUTES = 60
    variant, item = make_sale(hold_minutes=10)
    order = place(cart_with(variant, 2))
    regular = place(cart_with(ProductVariantFactory(stock=3)))

    with at(timezone.now() + timedelta(minutes=11)):
        call_command("expire_unpaid_orders", stdout=mock.MagicMock())

    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert Order.objects.get(pk=regular.pk).status == Order.Status.PENDING_PAYMENT
    assert (taken(item), stock(variant)) == (0, 100)
    assert SaleHold.objects.get().status == SaleHold.Status.RELEASED


def test_a_payment_after_the_hold_ran_out_but_before_release_still_sells_the_units():
    variant, item = make_sale(allotment=1)
    order = place(cart_with(variant))
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    services.order_mark_paid(order_id=order.pk)
    released = services.orders.expired_sale_holds_release(variant_ids=[variant.pk])

    assert released == []
    assert SaleHold.objects.get().status == SaleHold.Status.SOLD
    assert (taken(item), stock(variant)) == (1, 99)


def test_an_item_taken_out_of_its_sale_while_being_placed_is_refused_cleanly():
    # Given a cart reviewed at the sale price, whose quote read the sale item just before a
    # merchant removed it (the removal lands between the quote and taking the units)
    variant, item = make_sale()
    cart = cart_with(variant)
    fingerprint = selectors.checkout_quote(cart=cart, email=cart.email).fingerprint
    quote = selectors.checkout_quote

    def quote_then_remove(**kwargs):
        result = quote(**kwargs)
        SaleItem.objects.filter(pk=item.pk).delete()
        return result

    # When it is placed
    with (
        mock.patch.object(selectors, "checkout_quote", quote_then_remove),
        pytest.raises(SaleUnavailable, match="no longer in the sale"),
    ):
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint)

    # Then it is refused with a message, and nothing of it was written
    assert (Order.objects.count(), stock(variant), SaleHold.objects.count()) == (0, 100, 0)
