"""Concurrency claims of the orders services, proved with real threads on PostgreSQL.

Each thread calls the service through its own database connection (Django gives every thread
one), the threads start together at a barrier, and the test then asserts on what the database
holds. Skipped on SQLite, which serialises every writer anyway.
"""

from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from catalog.models import ProductVariant
from catalog.tests.factories import ProductVariantFactory
from orders import selectors, services
from orders.exceptions import InvalidTransition, OutOfStock, VoucherInvalid
from orders.models import (
    Cart,
    CartLine,
    Order,
    OrderEvent,
    OrderLine,
    OutboxEmail,
    ShippingMethod,
    Voucher,
    VoucherRedemption,
)
from orders.tests.concurrency import run_together
from orders.tests.factories import (
    CartFactory,
    CartLineFactory,
    ShippingMethodFactory,
    VoucherFactory,
    checkout_ready,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _errors(outcomes) -> list[Exception]:
    return [value for kind, value in outcomes if kind == "error"]


def _results(outcomes) -> list:
    return [value for kind, value in outcomes if kind == "ok"]


def _ready_cart(
    lines: list[tuple[ProductVariant, int]],
    *,
    method: ShippingMethod,
    email: str = "",
    voucher_code: str = "",
) -> tuple[Cart, str]:
    """A guest cart with these lines (created in this order), checkout details saved and
    reviewed; return it with the fingerprint of the quote the customer saw."""
    cart = CartFactory(**({"email": email} if email else {}))
    for variant, quantity in lines:
        CartLineFactory(cart=cart, variant=variant, quantity=quantity)
    cart = checkout_ready(cart, shipping_method=method, voucher_code=voucher_code)
    quote = selectors.checkout_quote(cart=cart, email=cart.email)
    assert quote.can_place, quote.problems or quote.voucher_error
    return cart, quote.fingerprint


def _place_call(cart: Cart, fingerprint: str) -> Callable[[], Order]:
    return lambda: services.order_place(
        cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint
    )


def _stock(variant: ProductVariant) -> int:
    return ProductVariant.objects.values_list("stock", flat=True).get(pk=variant.pk)


# --- Stock ----------------------------------------------------------------------------------------


def test_last_unit_goes_to_exactly_one_buyer():
    method = ShippingMethodFactory()
    variant = ProductVariantFactory(stock=1, product__name="Last Lamp")
    buyers = [_ready_cart([(variant, 1)], method=method) for _ in range(2)]

    outcomes = run_together([_place_call(cart, fingerprint) for cart, fingerprint in buyers])

    orders, errors = _results(outcomes), _errors(outcomes)
    assert len(orders) == 1
    assert [type(error) for error in errors] == [OutOfStock]
    assert str(errors[0]) == (
        "Some items are no longer available. Last Lamp: This item has sold out."
    )
    assert _stock(variant) == 0
    assert Order.objects.count() == 1
    assert list(OrderLine.objects.values_list("variant", "quantity")) == [(variant.pk, 1)]
    assert OutboxEmail.objects.count() == 1
    loser = next(cart for cart, _ in buyers if cart.pk != orders[0].cart_id)
    assert Cart.objects.get(pk=loser.pk).status == Cart.Status.OPEN


def test_many_buyers_never_push_stock_below_zero():
    method = ShippingMethodFactory()
    variant = ProductVariantFactory(stock=7)
    buyers = [_ready_cart([(variant, 1)], method=method) for _ in range(20)]

    outcomes = run_together([_place_call(cart, fingerprint) for cart, fingerprint in buyers])

    assert len(_results(outcomes)) == 7
    assert [type(error) for error in _errors(outcomes)] == [OutOfStock] * 13
    assert _stock(variant) == 0
    assert Order.objects.count() == 7
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 7
    assert Cart.objects.filter(status=Cart.Status.ORDERED).count() == 7


def test_buyers_of_several_units_never_oversell():
    method = ShippingMethodFactory()
    variant = ProductVariantFactory(stock=7)
    # 2, 2, 2, 3 and 3 units wanted from 7: depending on who comes first, 6 (2+2+2 or 3+3) or
    # 7 (2+2+3) are sold, never more.
    buyers = [_ready_cart([(variant, n)], method=method) for n in (2, 2, 2, 3, 3)]

    outcomes = run_together([_place_call(cart, fingerprint) for cart, fingerprint in buyers])

    sold = sum(OrderLine.objects.values_list("quantity", flat=True))
    assert _stock(variant) == 7 - sold >= 0
    assert sold in {6, 7}
    assert sum(order.lines.get().quantity for order in _results(outcomes)) == sold
    assert all(isinstance(error, OutOfStock) for error in _errors(outcomes))


# --- Vouchers -------------------------------------------------------------------------------------


def test_a_voucher_with_one_use_left_is_used_once():
    method = ShippingMethodFactory()
    voucher = VoucherFactory(code="LAST", usage_limit=3, used_count=2)
    buyers = [
        _ready_cart([(ProductVariantFactory(stock=5), 1)], method=method, voucher_code="LAST")
        for _ in range(6)
    ]

    outcomes = run_together([_place_call(cart, fingerprint) for cart, fingerprint in buyers])

    orders, errors = _results(outcomes), _errors(outcomes)
    assert len(orders) == 1
    assert [(type(error), str(error)) for error in errors] == [
        (VoucherInvalid, "This voucher has been used up.")
    ] * 5
    voucher.refresh_from_db()
    assert voucher.used_count == 3
    assert list(VoucherRedemption.objects.values_list("order", flat=True)) == [orders[0].pk]
    # Only the winner's unit left the shelf.
    assert sorted(ProductVariant.objects.values_list("stock", flat=True)) == [4, 5, 5, 5, 5, 5]


def test_a_guest_cannot_use_a_once_per_customer_voucher_twice_at_once():
    method = ShippingMethodFactory()
    VoucherFactory(code="ONCE", per_customer_limit=1)
    buyers = [
        _ready_cart(
            [(ProductVariantFactory(stock=5), 1)],
            method=method,
            email=email,
            voucher_code="ONCE",
        )
        for email in ("ada@example.com", "ADA@example.com", "ada@EXAMPLE.COM", "Ada@Example.Com")
    ]

    outcomes = run_together([_place_call(cart, fingerprint) for cart, fingerprint in buyers])

    assert len(_results(outcomes)) == 1
    assert [str(error) for error in _errors(outcomes)] == [
        "You have already used this voucher."
    ] * 3
    assert Voucher.objects.get(code="ONCE").used_count == 1
    assert VoucherRedemption.objects.count() == 1


# --- One order per checkout ------------------------------------------------------------------


def test_concurrent_submissions_of_one_checkout_make_one_order():
    method = ShippingMethodFactory()
    variant = ProductVariantFactory(stock=10)
    cart, fingerprint = _ready_cart([(variant, 3)], method=method)

    outcomes = run_together([_place_call(cart, fingerprint) for _ in range(5)])

    assert _errors(outcomes) == []
    assert len({order.pk for order in _results(outcomes)}) == 1
    assert Order.objects.count() == 1
    assert _stock(variant) == 7
    assert OrderEvent.objects.count() == 1
    assert list(OutboxEmail.objects.values_list("kind", flat=True)) == ["order_received"]

    # And once more, afterwards: still the same order, nothing new written.
    again = services.order_place(
        cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint
    )
    assert again.pk == _results(outcomes)[0].pk
    assert (Order.objects.count(), _stock(variant), OutboxEmail.objects.count()) == (1, 7, 1)


# --- Stock and vouchers come back exactly once -------------------------------------------------


def _pending_order(*, stock: int = 10, quantity: int = 3, voucher_code: str = "", minutes=0):
    method = ShippingMethod.objects.first() or ShippingMethodFactory()
    variant = ProductVariantFactory(stock=stock)
    cart, fingerprint = _ready_cart([(variant, quantity)], method=method, voucher_code=voucher_code)
    order = services.order_place(
        cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint
    )
    if minutes:
        Order.objects.filter(pk=order.pk).update(
            placed_at=timezone.now() - timedelta(minutes=minutes)
        )
    return order, variant


def test_two_cancellations_return_the_stock_and_voucher_once():
    VoucherFactory(code="SPRING", usage_limit=10)
    order, variant = _pending_order(stock=10, quantity=3, voucher_code="SPRING")
    assert (_stock(variant), Voucher.objects.get().used_count) == (7, 1)

    outcomes = run_together(
        [lambda: services.order_cancel(order_id=order.pk, reason="asked twice")] * 2
    )

    assert len(_results(outcomes)) == 1
    assert [type(error) for error in _errors(outcomes)] == [InvalidTransition]
    assert _stock(variant) == 10
    assert Voucher.objects.get().used_count == 0
    assert VoucherRedemption.objects.count() == 0
    assert OrderEvent.objects.filter(order=order, to_status=Order.Status.CANCELLED).count() == 1
    assert list(OutboxEmail.objects.filter(kind="order_cancelled").values_list("order")) == [
        (order.pk,)
    ]


def test_two_expiry_runs_cancel_each_order_once():
    placed = [_pending_order(stock=10, quantity=2, minutes=120) for _ in range(3)]

    outcomes = run_together(
        [lambda: services.orders_expire_unpaid(older_than=timedelta(hours=1))] * 2
    )

    assert _errors(outcomes) == []
    expired = Counter(number for numbers in _results(outcomes) for number in numbers)
    assert expired == Counter({order.number: 1 for order, _ in placed})
    assert [_stock(variant) for _, variant in placed] == [10, 10, 10]
    assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.CANCELLED}
    assert OrderEvent.objects.filter(to_status=Order.Status.CANCELLED).count() == 3
    assert OutboxEmail.objects.filter(kind="order_cancelled").count() == 3


def test_a_cancellation_and_an_expiry_return_the_stock_once():
    order, variant = _pending_order(stock=10, quantity=4, minutes=120)

    (cancel_kind, cancelled), (expire_kind, expired) = run_together(
        [
            lambda: services.order_cancel(order_id=order.pk, reason="customer asked"),
            lambda: services.orders_expire_unpaid(older_than=timedelta(hours=1)),
        ]
    )

    assert expire_kind == "ok"  # the expiry skips an order it finds cancelled
    events = list(
        OrderEvent.objects.filter(to_status=Order.Status.CANCELLED).values_list(
            "message", flat=True
        )
    )
    if cancel_kind == "ok":  # the customer was first: the expiry found nothing to do
        assert cancelled.status == Order.Status.CANCELLED
        assert (expired, events) == ([], ["Cancelled: customer asked"])
    else:  # the expiry was first: the customer's cancel is refused
        assert isinstance(cancelled, InvalidTransition)
        assert (expired, events) == ([order.number], ["Cancelled: not paid in time (expired)"])
    assert _stock(variant) == 10
    assert OutboxEmail.objects.filter(kind="order_cancelled").count() == 1


def test_an_expiry_never_cancels_an_order_being_paid():
    placed = [_pending_order(stock=10, quantity=2, minutes=120) for _ in range(5)]

    outcomes = run_together(
        [lambda: services.orders_expire_unpaid(older_than=timedelta(hours=1))]
        + [
            (lambda pk=order.pk: services.order_mark_paid(order_id=pk, note="webhook"))
            for order, _ in placed
        ]
    )

    expiry, payments = outcomes[0], outcomes[1:]
    assert expiry[0] == "ok"
    expired = set(expiry[1])
    for (order, variant), (kind, value) in zip(placed, payments, strict=True):
        stored = Order.objects.get(pk=order.pk)
        if order.number in expired:
            assert kind == "error" and isinstance(value, InvalidTransition)
            assert (stored.status, stored.paid_at) == (Order.Status.CANCELLED, None)
            assert _stock(variant) == 10
        else:
            assert kind == "ok", value
            assert (stored.status, stored.cancelled_at) == (Order.Status.PAID, None)
            assert _stock(variant) == 8
            assert not stored.events.filter(to_status=Order.Status.CANCELLED).exists()
            assert not stored.emails.filter(kind="order_cancelled").exists()


# --- No deadlocks -------------------------------------------------------------------------------


def test_checkouts_of_the_same_items_in_opposite_order_never_deadlock():
    method = ShippingMethodFactory()
    first, second, third = (ProductVariantFactory(stock=100) for _ in range(3))
    rounds = 4
    for _ in range(rounds):
        buyers = [
            _ready_cart([(first, 1), (second, 1), (third, 1)], method=method),
            _ready_cart([(third, 1), (second, 1), (first, 1)], method=method),
            _ready_cart([(second, 1), (third, 1), (first, 1)], method=method),
        ]

        outcomes = run_together([_place_call(cart, fingerprint) for cart, fingerprint in buyers])

        assert _errors(outcomes) == []
    assert [_stock(first), _stock(second), _stock(third)] == [100 - 3 * rounds] * 3
    assert Order.objects.count() == 3 * rounds


def test_a_checkout_and_a_cancellation_over_the_same_items_never_deadlock():
    method = ShippingMethodFactory()
    first, second = ProductVariantFactory(stock=100), ProductVariantFactory(stock=100)
    for _ in range(4):
        old_cart, old_fingerprint = _ready_cart([(second, 2), (first, 2)], method=method)
        old = services.order_place(
            cart=old_cart, checkout_token=old_cart.checkout_token, fingerprint=old_fingerprint
        )
        cart, fingerprint = _ready_cart([(first, 1), (second, 1)], method=method)

        outcomes = run_together(
            [
                _place_call(cart, fingerprint),
                lambda pk=old.pk: services.order_cancel(order_id=pk, reason="changed mind"),
            ]
        )

        assert _errors(outcomes) == []
    assert [_stock(first), _stock(second)] == [96, 96]


# --- Carts ---------------------------------------------------------------------------------------


def test_concurrent_adds_to_one_cart_all_count():
    cart = CartFactory()
    variant = ProductVariantFactory(stock=50)

    outcomes = run_together(
        [lambda: services.cart_add(cart=cart, variant_id=variant.pk, quantity=2)] * 6
    )

    assert _errors(outcomes) == []
    assert list(CartLine.objects.values_list("cart", "variant", "quantity")) == [
        (cart.pk, variant.pk, 12)
    ]


def test_two_sign_ins_at_once_leave_the_customer_one_open_cart_with_both_guest_carts():
    user = UserFactory()
    first, second = ProductVariantFactory(stock=10), ProductVariantFactory(stock=10)
    guests = [CartFactory(), CartFactory()]
    CartLineFactory(cart=guests[0], variant=first, quantity=2)
    CartLineFactory(cart=guests[1], variant=second, quantity=3)

    outcomes = run_together(
        [lambda source=guest: services.cart_merge(source=source, user=user) for guest in guests]
    )

    assert _errors(outcomes) == []
    open_carts = list(Cart.objects.filter(user=user, status=Cart.Status.OPEN))
    assert len(open_carts) == 1
    assert {cart.pk for cart in _results(outcomes)} == {open_carts[0].pk}
    assert sorted(
        CartLine.objects.filter(cart=open_carts[0]).values_list("variant", "quantity")
    ) == sorted([(first.pk, 2), (second.pk, 3)])
    assert Cart.objects.filter(status=Cart.Status.MERGED).count() == 1
