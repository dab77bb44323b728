"""Flash-sale concurrency claims, proved with real threads on PostgreSQL: each buyer in its own
thread with its own connection, all released together at a barrier; the database is then
asked what happened.
"""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import ProductVariant, SaleCustomer, SaleHold, SaleItem
from orders import selectors, services
from orders.exceptions import OutOfStock, SaleUnavailable
from orders.models import Cart, Order, OrderLine
from orders.tests.concurrency import run_together
from orders.tests.factories import CartFactory, ShippingMethodFactory, checkout_ready
from orders.tests.test_sales import SALE, make_sale

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUYERS = 60


def _reviewed_cart(variant: ProductVariant, quantity: int, *, method, email: str = ""):
    """A guest cart with the sale item added and reviewed; return (cart, fingerprint)."""
    cart = CartFactory(**({"email": email} if email else {}))
    services.cart_add(cart=cart, variant_id=variant.pk, quantity=quantity)
    cart = checkout_ready(cart, shipping_method=method)
    quote = selectors.checkout_quote(cart=cart, email=cart.email)
    assert quote.can_place, quote.problems
    assert quote.lines[0].unit_price == SALE
    return cart, quote.fingerprint


def _place(cart: Cart, fingerprint: str):
    return lambda: services.order_place(
        cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint
    )


def _counts(item: SaleItem, variant: ProductVariant) -> dict:
    item.refresh_from_db()
    variant.refresh_from_db()
    lines = OrderLine.objects.exclude(order__status=Order.Status.CANCELLED)
    return {
        "taken": item.taken,
        "stock": variant.stock,
        "held_or_sold": sum(
            SaleHold.objects.exclude(status=SaleHold.Status.RELEASED).values_list(
                "quantity", flat=True
            )
        ),
        "ordered": sum(lines.values_list("quantity", flat=True)),
        "sale_lines": lines.filter(sale_hold__isnull=False).count(),
    }


def test_sixty_buyers_for_ten_sale_units_buy_exactly_ten():
    # Given a sale of 10 units of a variant with plenty of stock beyond the sale
    method = ShippingMethodFactory()
    variant, item = make_sale(stock=500, allotment=10)
    buyers = [_reviewed_cart(variant, 1, method=method) for _ in range(BUYERS)]

    # When 60 buyers place their orders at the same moment
    outcomes = run_together([_place(cart, fingerprint) for cart, fingerprint in buyers])

    # Then exactly 10 got the sale units, the other 50 were told it sold out, and the sale,
    # the stock, the holds and the orders agree
    kinds = Counter(kind for kind, _ in outcomes)
    errors = Counter(type(value).__name__ for kind, value in outcomes if kind == "error")
    assert kinds == {"ok": 10, "error": 50}
    assert errors == {"SaleUnavailable": 50}
    assert _counts(item, variant) == {
        "taken": 10,
        "stock": 490,
        "held_or_sold": 10,
        "ordered": 10,
        "sale_lines": 10,
    }
    assert set(OrderLine.objects.values_list("unit_price", flat=True)) == {SALE}
    assert Cart.objects.filter(status=Cart.Status.OPEN).count() == 50


def test_buyers_of_several_units_never_take_more_than_the_allotment():
    method = ShippingMethodFactory()
    variant, item = make_sale(stock=10, allotment=10)
    buyers = [_reviewed_cart(variant, 1 + i % 3, method=method) for i in range(BUYERS)]

    outcomes = run_together([_place(cart, fingerprint) for cart, fingerprint in buyers])

    placed = [value for kind, value in outcomes if kind == "ok"]
    assert all(
        isinstance(value, (SaleUnavailable, OutOfStock))
        for kind, value in outcomes
        if kind == "error"
    )
    counts = _counts(item, variant)
    assert counts["taken"] == counts["held_or_sold"] == counts["ordered"]
    assert counts["taken"] == sum(order.lines.get().quantity for order in placed)
    assert 8 <= counts["taken"] <= 10  # sold out, give or take a last buyer wanting 2 or 3
    assert counts["stock"] == 10 - counts["taken"]


def test_the_per_customer_limit_holds_when_one_customer_buys_in_many_tabs_at_once():
    # Given one guest (by email) with 20 carts of one unit each, and a limit of 2
    method = ShippingMethodFactory()
    variant, item = make_sale(stock=100, allotment=50, limit=2)
    carts = [
        _reviewed_cart(variant, 1, method=method, email="greedy@example.com") for _ in range(20)
    ]
    others = [_reviewed_cart(variant, 2, method=method) for _ in range(5)]

    outcomes = run_together([_place(cart, fp) for cart, fp in carts + others])

    # Then the greedy guest got exactly 2 units, everyone else their 2
    greedy = Order.objects.filter(email="greedy@example.com")
    assert sum(OrderLine.objects.filter(order__in=greedy).values_list("quantity", flat=True)) == 2
    assert sum(1 for kind, _ in outcomes[20:] if kind == "ok") == 5
    assert {type(value) for kind, value in outcomes[:20] if kind == "error"} == {SaleUnavailable}
    assert (
        SaleCustomer.objects.get(sale=item.sale, customer_key="email:greedy@example.com").units == 2
    )
    assert _counts(item, variant)["taken"] == 12


def test_expired_holds_return_to_the_sale_exactly_once_whoever_releases_them():
    # Given 10 sale orders whose holds have run out
    method = ShippingMethodFactory()
    variant, item = make_sale(stock=10, allotment=10)
    placed = []
    for _ in range(10):
        cart, fingerprint = _reviewed_cart(variant, 1, method=method)
        placed.append(_place(cart, fingerprint)())
    past = timezone.now() - timedelta(seconds=1)
    Order.objects.update(expires_at=past)
    SaleHold.objects.update(expires_at=past)
    assert _counts(item, variant)["taken"] == 10

    # When cron's expiry, lazy releases by buyers and a customer's own cancellation all run at
    # once, several times over
    calls = []
    for _ in range(4):
        calls.append(lambda: services.orders_expire_unpaid(older_than=timedelta(hours=1)))
        calls.append(lambda: services.orders.expired_sale_holds_release(variant_ids=[variant.pk]))
    calls += [
        (lambda order=order: services.orders.order_cancel(order_id=order.pk, reason="customer"))
        for order in placed[:3]
    ]
    outcomes = run_together(calls)

    # Then every order was cancelled once, every unit went back once: the sale is whole again
    cancelled_numbers = []
    for kind, value in outcomes:
        if kind == "ok" and isinstance(value, list):
            cancelled_numbers += value
        elif kind == "ok":
            cancelled_numbers.append(value.number)
    assert sorted(cancelled_numbers) == sorted(order.number for order in placed)
    assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.CANCELLED}
    assert _counts(item, variant) == {
        "taken": 0,
        "stock": 10,
        "held_or_sold": 0,
        "ordered": 0,
        "sale_lines": 0,
    }
    assert set(SaleHold.objects.values_list("status", flat=True)) == {SaleHold.Status.RELEASED}
    assert set(SaleCustomer.objects.values_list("units", flat=True)) == {0}
