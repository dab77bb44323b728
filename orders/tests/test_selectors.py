"""Reads: carts scoped to their visitor, the checkout quote, vouchers, orders scoped to their
customer or link, and the query counts of lists."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from accounts.tests.factories import UserFactory
from catalog.models import Product, ProductVariant
from orders import selectors, services
from orders.exceptions import CheckoutIncomplete, ShippingUnavailable, VoucherInvalid
from orders.models import Cart, Order
from orders.tests.factories import (
    ADDRESS,
    CartFactory,
    CartLineFactory,
    ShippingMethodFactory,
    TaxRateFactory,
    VoucherFactory,
    checkout_ready,
    place,
)

pytestmark = pytest.mark.django_db


# --- Carts ---------------------------------------------------------------------------------------


def test_a_signed_in_visitor_gets_their_open_cart_whatever_the_session_says():
    user = UserFactory()
    mine = services.cart_create(user=user)
    guest = CartFactory()

    assert selectors.cart_for_request(cart_id=guest.pk, user=user) == mine
    assert selectors.cart_for_request(cart_id=None, user=UserFactory()) is None


def test_a_guest_gets_only_an_open_guest_cart_by_its_id():
    guest = CartFactory()
    owned = services.cart_create(user=UserFactory())
    ordered = CartFactory(status=Cart.Status.ORDERED)

    assert selectors.cart_for_request(cart_id=str(guest.pk), user=AnonymousUser()) == guest
    assert selectors.cart_for_request(cart_id=guest.pk, user=None) == guest
    assert selectors.cart_for_request(cart_id=owned.pk, user=AnonymousUser()) is None
    assert selectors.cart_for_request(cart_id=ordered.pk, user=AnonymousUser()) is None


@pytest.mark.parametrize(
    "cart_id", [None, "", "abc", "1.5", "1e3", "-1", "99999999999999999999999", [1], {"a": 1}]
)
def test_a_bad_cart_id_gives_no_cart(cart_id):
    CartFactory()

    assert selectors.cart_for_request(cart_id=cart_id, user=AnonymousUser()) is None
    assert selectors.cart_item_count(cart_id=cart_id, user=AnonymousUser()) == 0


def test_item_count_adds_up_quantities_in_one_query(django_assert_num_queries):
    cart = CartFactory()
    CartLineFactory(cart=cart, quantity=2)
    CartLineFactory(cart=cart, quantity=3)
    CartLineFactory(quantity=7)  # another cart
    user = UserFactory()
    user_cart = services.cart_create(user=user)
    CartLineFactory(cart=user_cart, quantity=4)

    with django_assert_num_queries(1):
        guest_count = selectors.cart_item_count(cart_id=cart.pk, user=AnonymousUser())
    with django_assert_num_queries(1):
        user_count = selectors.cart_item_count(cart_id=cart.pk, user=user)

    assert (guest_count, user_count) == (5, 4)
    assert selectors.cart_item_count(cart_id=None, user=UserFactory()) == 0


def test_cart_lines_come_with_variants_and_products_in_one_query(django_assert_num_queries):
    cart = CartFactory()
    lines = [CartLineFactory(cart=cart) for _ in range(4)]

    with django_assert_num_queries(1):
        read = selectors.cart_lines(cart)
        names = [line.variant.product.name for line in read]

    assert [line.pk for line in read] == [line.pk for line in lines]
    assert names == [line.variant.product.name for line in lines]
    assert selectors.cart_lines(Cart()) == []


# --- The checkout quote -----------------------------------------------------------------------


def _quote(cart: Cart, **kwargs) -> selectors.Quote:
    cart.refresh_from_db()
    return selectors.checkout_quote(cart=cart, email=cart.email, **kwargs)


def test_the_quote_prices_the_cart_with_tax_and_shipping():
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    cart = CartFactory()
    CartLineFactory(cart=cart, quantity=2, variant__price=Decimal("19.99"))
    checkout_ready(cart, shipping_method=ShippingMethodFactory(price=Decimal("4.95")))

    quote = _quote(cart)

    totals = quote.totals
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("39.98"),
        Decimal("4.95"),
        Decimal("7.17"),
        Decimal("44.93"),
    )
    assert [(q.unit_price, q.total, q.price_changed, q.available) for q in quote.lines] == [
        (Decimal("19.99"), Decimal("39.98"), False, 10)
    ]
    assert quote.can_place is True
    assert quote.problems == []
    assert len(quote.fingerprint) == 32


def test_the_quote_reports_a_price_changed_since_it_was_added():
    cart = checkout_ready(CartFactory())
    line = CartLineFactory(cart=cart, variant__price=Decimal("10.00"))
    ProductVariant.objects.filter(pk=line.variant_id).update(price=Decimal("12.00"))

    quote = _quote(cart)

    assert [(q.price_changed, q.unit_price) for q in quote.lines] == [(True, Decimal("12.00"))]
    assert quote.totals.subtotal == Decimal("12.00")
    assert quote.can_place is True  # shown, and charged only once reviewed (the fingerprint)


def test_the_quote_reports_sold_out_short_and_withdrawn_lines():
    cart = checkout_ready(CartFactory())
    short = CartLineFactory(cart=cart, quantity=3, variant__stock=5)
    sold_out = CartLineFactory(cart=cart, quantity=1, variant__stock=5)
    withdrawn = CartLineFactory(cart=cart, quantity=1, variant__stock=5)
    ProductVariant.objects.filter(pk=short.variant_id).update(stock=2)
    ProductVariant.objects.filter(pk=sold_out.variant_id).update(stock=0)
    Product.objects.filter(pk=withdrawn.variant.product_id).update(is_active=False)

    quote = _quote(cart)

    assert [(q.problem, q.available) for q in quote.lines] == [
        ("Only 2 left: lower the quantity.", 2),
        ("This item has sold out.", 0),
        ("This item is no longer for sale.", 0),
    ]
    assert quote.problems == [
        f"{short.variant.product.name}: Only 2 left: lower the quantity.",
        f"{sold_out.variant.product.name}: This item has sold out.",
        f"{withdrawn.variant.product.name}: This item is no longer for sale.",
    ]
    assert quote.can_place is False


def test_the_quote_reports_a_voucher_it_cannot_apply_and_prices_without_it():
    VoucherFactory(code="BIG", min_spend=Decimal("100.00"))
    cart = CartFactory()
    CartLineFactory(cart=cart, variant__price=Decimal("20.00"))
    checkout_ready(cart, voucher_code="  big ")

    quote = _quote(cart)

    assert quote.voucher is None
    assert quote.voucher_error == "This voucher needs a spend of at least €100.00."
    assert quote.totals.discount == Decimal("0.00")
    assert quote.can_place is False


def test_the_quote_applies_a_valid_voucher():
    voucher = VoucherFactory(code="FIVE", kind="fixed", value=Decimal("5.00"))
    cart = CartFactory()
    CartLineFactory(cart=cart, variant__price=Decimal("20.00"))
    checkout_ready(cart, voucher_code="five")

    quote = _quote(cart)

    assert quote.voucher == voucher
    assert quote.voucher_error == ""
    assert quote.totals.discount == Decimal("5.00")
    assert quote.totals.total == Decimal("19.95")


def test_the_quote_without_checkout_details_has_no_shipping_or_tax():
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    cart = CartFactory()
    CartLineFactory(cart=cart, variant__price=Decimal("20.00"))

    quote = _quote(cart)

    assert quote.shipping_method is None
    assert (quote.totals.shipping, quote.totals.tax, quote.totals.total) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("20.00"),
    )


@pytest.mark.parametrize(
    "data",
    [
        {"address": "Berlin", "shipping_method_id": "x", "voucher_code": 12},
        {"address": ["DE"], "voucher_code": ["A"]},
        {"address": None, "shipping_method_id": None, "voucher_code": None},
    ],
)
def test_the_quote_survives_malformed_saved_details(data):
    cart = CartFactory()
    CartLineFactory(cart=cart, variant__price=Decimal("20.00"))

    quote = selectors.checkout_quote(cart=cart, data=data)

    assert quote.totals.total == Decimal("20.00")
    assert quote.shipping_method is None


def test_the_fingerprint_changes_with_anything_the_customer_pays_and_only_then():
    cart = CartFactory()
    line = CartLineFactory(cart=cart, quantity=1, variant__price=Decimal("20.00"))
    checkout_ready(cart)
    first = _quote(cart).fingerprint

    assert _quote(cart).fingerprint == first
    ProductVariant.objects.update(stock=3)  # stock is not a price
    assert _quote(cart).fingerprint == first
    ProductVariant.objects.update(price=Decimal("20.01"))
    repriced = _quote(cart).fingerprint
    type(line).objects.update(quantity=2)
    requantified = _quote(cart).fingerprint

    assert len({first, repriced, requantified}) == 3


def test_fingerprints_match_only_the_same_string():
    expected = "a" * 32

    assert selectors.fingerprints_match("a" * 32, expected) is True
    for given in ["a" * 31, "b" * 32, "", None, 123, ["a" * 32], "é" * 32, "\ud800", b"a" * 32]:
        assert selectors.fingerprints_match(given, expected) is False, given


# --- Vouchers ---------------------------------------------------------------------------------


def _check(code="SPRING", *, goods="50.00", email="ada@example.com", user=None):
    return selectors.voucher_check(
        code=code, goods=Decimal(goods), email=email, user=user, currency="EUR"
    )


def test_voucher_check_finds_the_code_whatever_its_case_and_spacing():
    voucher = VoucherFactory(code="SPRING")

    assert _check("  spring\n") == voucher


@pytest.mark.parametrize(
    ("code", "voucher_kwargs", "message"),
    [
        ("", {}, "We don't know this voucher code."),
        ("   ", {}, "We don't know this voucher code."),
        ("WINTER", {}, "We don't know this voucher code."),
        ("SPR\x00ING", {}, "We don't know this voucher code."),
        ("SPRING", {"is_active": False}, "This voucher is no longer valid."),
        ("SPRING", {"starts_at": timedelta(minutes=5)}, "This voucher is not valid yet."),
        ("SPRING", {"ends_at": timedelta(0)}, "This voucher has expired."),
        ("SPRING", {"usage_limit": 2, "used_count": 2}, "This voucher has been used up."),
        (
            "SPRING",
            {"min_spend": Decimal("50.01")},
            "This voucher needs a spend of at least €50.01.",
        ),
    ],
)
def test_voucher_check_says_why_a_voucher_cannot_be_used(code, voucher_kwargs, message):
    now = timezone.now()
    kwargs = dict(voucher_kwargs)
    for stamp in ("starts_at", "ends_at"):
        if stamp in kwargs:
            kwargs[stamp] = now + kwargs[stamp]
    VoucherFactory(code="SPRING", **kwargs)

    with pytest.raises(VoucherInvalid) as error:
        _check(code)

    assert str(error.value) == message


def test_voucher_check_accepts_exactly_the_minimum_spend_and_the_last_use():
    voucher = VoucherFactory(code="SPRING", min_spend=Decimal("50.00"), usage_limit=2, used_count=1)

    assert _check("SPRING", goods="50.00") == voucher


def test_voucher_check_counts_a_customers_uses_by_account_or_by_email():
    user = UserFactory(email="ada@example.com")
    VoucherFactory(code="ONCE", per_customer_limit=1)
    cart = services.cart_create(user=user)
    CartLineFactory(cart=cart)
    place(checkout_ready(cart, voucher_code="ONCE"), user=user)

    for email, who in [
        ("someone.else@example.com", user),  # the account
        ("ADA@example.com", None),  # the email, as a guest, in another case
        ("ada@example.com", AnonymousUser()),
    ]:
        with pytest.raises(VoucherInvalid) as error:
            _check("ONCE", email=email, user=who)
        assert str(error.value) == "You have already used this voucher."

    assert _check("ONCE", email="bob@example.com", user=UserFactory()).code == "ONCE"
    assert _check("ONCE", email="", user=None).code == "ONCE"


# --- Checkout details ----------------------------------------------------------------------------


def test_checkout_details_require_returns_the_address_and_method():
    method = ShippingMethodFactory(countries=["DE"])

    address, method_id = selectors.checkout_details_require(
        {"address": ADDRESS, "shipping_method_id": str(method.pk)}
    )

    assert (address, method_id) == (ADDRESS, method.pk)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({}, CheckoutIncomplete, "Fill in your address and choose a shipping method first."),
        (
            {"address": {"country": ""}, "shipping_method_id": 1},
            CheckoutIncomplete,
            "Fill in your address and choose a shipping method first.",
        ),
        (
            {"address": ADDRESS, "shipping_method_id": "abc"},
            ShippingUnavailable,
            "That shipping method does not ship to your country.",
        ),
        (
            {"address": {**ADDRESS, "country": "FR"}, "shipping_method_id": "METHOD"},
            ShippingUnavailable,
            "That shipping method does not ship to your country.",
        ),
    ],
)
def test_checkout_details_require_refuses_incomplete_details(data, error, message):
    method = ShippingMethodFactory(countries=["DE"])
    if data.get("shipping_method_id") == "METHOD":
        data = {**data, "shipping_method_id": method.pk}

    with pytest.raises(error) as raised:
        selectors.checkout_details_require(data)

    assert str(raised.value) == message


def test_shipping_methods_for_a_country_are_the_active_ones_that_ship_there():
    everywhere = ShippingMethodFactory(position=2)
    germany = ShippingMethodFactory(countries=["DE"], position=1)
    ShippingMethodFactory(countries=["FR"])
    ShippingMethodFactory(is_active=False)

    assert selectors.shipping_methods_for("DE") == [germany, everywhere]
    assert selectors.tax_rate_for("DE") == Decimal("0")
    assert selectors.tax_rate_for(None) == Decimal("0")


# --- Orders ---------------------------------------------------------------------------------------


def _order_for(user=None, *, quantity=1) -> Order:
    cart = services.cart_create(user=user) if user else CartFactory()
    CartLineFactory(cart=cart, quantity=quantity)
    return place(checkout_ready(cart), user=user)


def test_a_customer_gets_only_their_own_order(django_assert_num_queries):
    user, other = UserFactory(), UserFactory()
    mine = _order_for(user, quantity=2)
    theirs = _order_for(other)

    with django_assert_num_queries(2):  # the order with its voucher, then its lines
        order = selectors.order_get_for_customer(user=user, number=mine.number)
        assert [line.quantity for line in order.lines.all()] == [2]
        assert order.voucher is None

    with pytest.raises(Order.DoesNotExist):
        selectors.order_get_for_customer(user=user, number=theirs.number)
    with pytest.raises(Order.DoesNotExist):
        selectors.order_get_for_customer(user=AnonymousUser(), number=mine.number)
    with pytest.raises(Order.DoesNotExist):
        selectors.order_get_for_customer(user=user, number="NW-\x00")


def test_an_order_is_found_through_its_link_with_the_right_token_only():
    order = _order_for()

    assert selectors.order_get_by_token(number=order.number, token=order.access_token) == order
    for number, token in [
        (order.number, "wrong"),
        (order.number, ""),
        (order.number, None),
        (order.number, "é" * 10),
        (order.number, "\ud800"),
        (order.number, order.access_token[:-1]),
        ("NW-0000-0000", order.access_token),
        ("NW-\x00", order.access_token),
        (order.number, "\x00"),
    ]:
        with pytest.raises(Order.DoesNotExist):
            selectors.order_get_by_token(number=number, token=token)


def test_the_order_list_has_the_customers_orders_with_item_counts(django_assert_num_queries):
    user = UserFactory()
    first = _order_for(user, quantity=2)
    second = _order_for(user, quantity=3)
    _order_for(UserFactory())

    with django_assert_num_queries(1):
        listed = [(o.number, o.item_count) for o in selectors.order_list_for_customer(user=user)]

    assert sorted(listed) == sorted([(first.number, 2), (second.number, 3)])
    assert list(selectors.order_list_for_customer(user=AnonymousUser())) == []


def test_pending_orders_older_than_a_cutoff():
    old, recent, paid = _order_for(), _order_for(), _order_for()
    hour_ago = timezone.now() - timedelta(hours=1)
    Order.objects.filter(pk__in=[old.pk, paid.pk]).update(placed_at=hour_ago - timedelta(1))
    services.order_mark_paid(order_id=paid.pk)

    pending = selectors.orders_pending_older_than(cutoff=hour_ago)

    assert list(pending) == [old]
    assert recent.status == Order.Status.PENDING_PAYMENT


def test_idle_carts_with_an_email_and_lines_not_yet_reminded():
    cutoff = timezone.now() - timedelta(hours=24)
    long_ago = cutoff - timedelta(hours=1)
    idle = CartLineFactory(cart__email="ada@example.com").cart
    no_email = CartLineFactory(cart__email="").cart
    empty = CartFactory(email="bob@example.com")
    reminded = CartLineFactory(cart__email="cy@example.com").cart
    ordered = CartLineFactory(cart__email="dee@example.com").cart
    recent = CartLineFactory(cart__email="eve@example.com").cart
    Cart.objects.exclude(pk=recent.pk).update(updated_at=long_ago)
    Cart.objects.filter(pk=reminded.pk).update(reminder_sent_at=timezone.now())
    Cart.objects.filter(pk=ordered.pk).update(status=Cart.Status.ORDERED)

    found = list(selectors.carts_idle_with_email(cutoff=cutoff))

    assert found == [idle]
    assert {no_email.pk, empty.pk} & {cart.pk for cart in found} == set()
