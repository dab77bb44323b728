"""Placing an order: what a placement writes, and that every refusal writes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.tests.factories import UserFactory
from catalog.models import ProductVariant
from orders import selectors, services
from orders.exceptions import (
    CartEmpty,
    CheckoutIncomplete,
    OutOfStock,
    PricesChanged,
    ShippingUnavailable,
    VoucherInvalid,
)
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

PRICES_CHANGED = "Prices or amounts changed since you reviewed your order: please check them again."


def _world() -> dict:
    """Everything a placement may write, to prove a refusal wrote none of it."""
    return {
        "orders": Order.objects.count(),
        "order_lines": OrderLine.objects.count(),
        "events": OrderEvent.objects.count(),
        "outbox": OutboxEmail.objects.count(),
        "redemptions": VoucherRedemption.objects.count(),
        "stock": dict(ProductVariant.objects.values_list("pk", "stock")),
        "voucher_uses": dict(Voucher.objects.values_list("pk", "used_count")),
        "carts": dict(Cart.objects.values_list("pk", "status")),
        "cart_lines": CartLine.objects.count(),
    }


def _cart(*, price="20.00", stock=10, quantity=1, email="ada@example.com", **ready) -> Cart:
    """A guest cart with one line and complete checkout details."""
    cart = CartFactory(email=email)
    CartLineFactory(
        cart=cart, variant__price=Decimal(price), variant__stock=stock, quantity=quantity
    )
    return checkout_ready(cart, **ready)


def _fingerprint(cart: Cart, user=None) -> str:
    cart.refresh_from_db()
    return selectors.checkout_quote(cart=cart, email=cart.email, user=user).fingerprint


# --- A placement ---------------------------------------------------------------------------------


def test_placing_snapshots_lines_and_amounts_and_takes_the_stock(
    django_capture_on_commit_callbacks,
):
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    method = ShippingMethodFactory(name="Parcel", price=Decimal("4.95"))
    cart = CartFactory(email="ada@example.com")
    jacket = CartLineFactory(
        cart=cart,
        quantity=2,
        variant__price=Decimal("19.99"),
        variant__stock=5,
        variant__sku="JACKET-M",
        variant__options={"size": "M", "colour": "Blue"},
        variant__product__name="Rain Jacket",
    ).variant
    socks = CartLineFactory(
        cart=cart, quantity=3, variant__price=Decimal("4.00"), variant__stock=3
    ).variant
    cart = checkout_ready(cart, shipping_method=method)

    with django_capture_on_commit_callbacks() as callbacks:
        order = place(cart)

    order.refresh_from_db()
    assert order.number.startswith("NW-")
    assert order.status == Order.Status.PENDING_PAYMENT
    assert (order.email, order.user_id, order.cart_id) == ("ada@example.com", None, cart.pk)
    assert order.checkout_token == cart.checkout_token
    assert (order.currency, order.prices_include_tax) == ("EUR", True)
    assert order.subtotal == Decimal("51.98")
    assert order.discount_total == Decimal("0.00")
    assert order.shipping_total == Decimal("4.95")
    assert order.tax_total == Decimal("9.09")  # 56.93 - 56.93 / 1.19
    assert order.total == Decimal("56.93")
    assert order.shipping_address == ADDRESS
    assert order.shipping_method_name == "Parcel"
    assert list(
        order.lines.order_by("variant_id").values_list(
            "variant_id",
            "product_name",
            "variant_label",
            "sku",
            "unit_price",
            "quantity",
            "line_total",
            "tax_rate",
        )
    ) == [
        (
            jacket.pk,
            "Rain Jacket",
            "M / Blue",
            "JACKET-M",
            Decimal("19.99"),
            2,
            Decimal("39.98"),
            Decimal("19.00"),
        ),
        (
            socks.pk,
            socks.product.name,
            "M",
            socks.sku,
            Decimal("4.00"),
            3,
            Decimal("12.00"),
            Decimal("19.00"),
        ),
    ]
    assert dict(ProductVariant.objects.values_list("pk", "stock")) == {jacket.pk: 3, socks.pk: 0}
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.ORDERED
    assert list(order.events.values_list("from_status", "to_status", "message", "actor")) == [
        ("", "pending_payment", "Order placed: 2 line(s), total 56.93 EUR.", None)
    ]
    assert list(OutboxEmail.objects.values_list("order", "kind", "to_email", "status")) == [
        (order.pk, "order_received", "ada@example.com", "pending")
    ]
    assert len(callbacks) == 1


def test_a_signed_in_customer_owns_the_order_and_is_the_events_actor():
    user = UserFactory(email="ada@example.com")
    cart = services.cart_create(user=user)
    CartLineFactory(cart=cart, quantity=1)
    cart = checkout_ready(cart)

    order = place(cart, user=user)

    assert order.user_id == user.pk
    assert list(order.events.values_list("actor", flat=True)) == [user.pk]


def test_a_voucher_is_applied_counted_and_redeemed():
    VoucherFactory(code="TENOFF", kind=Voucher.Kind.PERCENTAGE, value=Decimal("10"), usage_limit=5)
    cart = _cart(price="50.00", voucher_code="tenoff")

    order = place(cart)

    voucher = Voucher.objects.get(code="TENOFF")
    assert (order.voucher_id, order.voucher_code) == (voucher.pk, "TENOFF")
    assert order.discount_total == Decimal("5.00")
    assert order.total == Decimal("49.95")  # 50.00 - 5.00 + 4.95
    assert voucher.used_count == 1
    assert list(VoucherRedemption.objects.values_list("voucher", "order", "email")) == [
        (voucher.pk, order.pk, "ada@example.com")
    ]


def test_a_repeated_submission_returns_the_first_order_and_writes_nothing_more(
    django_capture_on_commit_callbacks,
):
    cart = _cart(stock=5, quantity=2)
    fingerprint = _fingerprint(cart)
    first = services.order_place(
        cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint
    )
    before = _world()

    with django_capture_on_commit_callbacks() as callbacks:
        again = services.order_place(
            cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint
        )
        stale_fingerprint = services.order_place(
            cart=cart, checkout_token=cart.checkout_token, fingerprint="whatever"
        )

    assert again.pk == first.pk == stale_fingerprint.pk
    assert _world() == before
    assert before["orders"] == 1 and before["outbox"] == 1
    assert callbacks == []


def test_another_carts_checkout_token_never_returns_its_order():
    theirs = _cart()
    their_order = place(theirs)
    mine = _cart()
    before = _world()

    with pytest.raises(PricesChanged) as error:
        services.order_place(
            cart=mine, checkout_token=their_order.checkout_token, fingerprint=_fingerprint(mine)
        )

    assert str(error.value) == "Your checkout changed in the meantime: please review it again."
    assert _world() == before


def test_the_price_the_customer_reviewed_is_charged_after_a_price_change():
    cart = _cart(price="20.00")
    ProductVariant.objects.update(price=Decimal("25.00"))

    quote = selectors.checkout_quote(cart=cart, email=cart.email)
    order = services.order_place(
        cart=cart, checkout_token=cart.checkout_token, fingerprint=quote.fingerprint
    )

    assert [q.price_changed for q in quote.lines] == [True]
    assert [q.unit_price for q in quote.lines] == [Decimal("25.00")]
    assert order.subtotal == Decimal("25.00")
    assert list(order.lines.values_list("unit_price", flat=True)) == [Decimal("25.00")]


def test_an_order_number_collision_is_retried_with_a_new_number(monkeypatch):
    taken = place(_cart()).number
    numbers = iter([taken, "NW-2345-6789"])
    monkeypatch.setattr("orders.services.checkout.order_number_generate", lambda: next(numbers))
    cart = _cart()

    order = place(cart)

    assert order.number == "NW-2345-6789"
    assert Order.objects.count() == 2


def test_nothing_is_recorded_or_sent_when_the_surrounding_transaction_rolls_back(
    django_capture_on_commit_callbacks,
):
    cart = _cart(stock=4, quantity=1)
    before = _world()

    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        place(cart)
        raise RuntimeError("the request failed after placing")

    assert callbacks == []
    assert _world() == before


# --- Refusals that write nothing --------------------------------------------------------------


@pytest.mark.parametrize(
    "fingerprint", ["", "0" * 32, None, 12345, ["x"], "é" * 32, " ", "\x00" * 32, "\ud800"]
)
def test_a_tampered_fingerprint_is_refused(fingerprint, django_capture_on_commit_callbacks):
    cart = _cart()
    before = _world()

    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(PricesChanged) as error,
    ):
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint)

    assert str(error.value) == PRICES_CHANGED
    assert _world() == before
    assert callbacks == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda cart: ProductVariant.objects.update(price=Decimal("20.01")), id="price"
        ),
        pytest.param(lambda cart: CartLine.objects.update(quantity=2), id="quantity"),
        pytest.param(
            lambda cart: TaxRateFactory(country="DE", rate=Decimal("7.00")), id="tax-rate"
        ),
        pytest.param(
            lambda cart: ShippingMethod.objects.update(price=Decimal("5.95")), id="shipping-price"
        ),
        pytest.param(
            lambda cart: Voucher.objects.filter(code="SPRING").update(value=Decimal("15")),
            id="voucher-value",
        ),
    ],
)
def test_a_stale_fingerprint_is_refused(change):
    VoucherFactory(code="SPRING", value=Decimal("10"))
    cart = _cart(price="20.00", stock=10, voucher_code="SPRING")
    reviewed = _fingerprint(cart)
    change(cart)
    before = _world()

    with pytest.raises(PricesChanged) as error:
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint=reviewed)

    assert str(error.value) == PRICES_CHANGED
    assert _world() == before


@pytest.mark.parametrize("token", ["", None, 12345, "\x00", "é", "x" * 1000])
def test_a_tampered_checkout_token_is_refused(token):
    cart = _cart()
    before = _world()

    with pytest.raises(PricesChanged) as error:
        services.order_place(cart=cart, checkout_token=token, fingerprint=_fingerprint(cart))

    assert str(error.value) == "Your checkout changed in the meantime: please review it again."
    assert _world() == before


def test_a_changed_checkout_is_refused_until_reviewed_again():
    cart = _cart()
    old_token = cart.checkout_token
    fingerprint = _fingerprint(cart)
    services.cart_checkout_save(cart=cart, email="other@example.com", data=dict(cart.checkout_data))
    before = _world()

    with pytest.raises(PricesChanged) as error:
        services.order_place(cart=cart, checkout_token=old_token, fingerprint=fingerprint)

    assert str(error.value) == "Your checkout changed in the meantime: please review it again."
    assert _world() == before


def test_an_empty_cart_is_refused():
    cart = checkout_ready(CartFactory())
    before = _world()

    with pytest.raises(CartEmpty) as error:
        services.order_place(
            cart=cart, checkout_token=cart.checkout_token, fingerprint=_fingerprint(cart)
        )

    assert str(error.value) == "Your cart is empty."
    assert _world() == before


def test_a_cart_already_checked_out_is_refused_for_a_new_token():
    cart = _cart()
    place(cart)
    before = _world()

    with pytest.raises(CartEmpty) as error:
        services.order_place(cart=cart, checkout_token="another-token", fingerprint="x")

    assert str(error.value) == "This cart has already been checked out."
    assert _world() == before


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"shipping_method_id": 1},
        {"address": "Berlin", "shipping_method_id": 1},
        {"address": {**ADDRESS, "country": ""}, "shipping_method_id": 1},
        {"address": ADDRESS},
    ],
)
def test_missing_checkout_details_are_refused(data):
    cart = CartFactory(email="ada@example.com")
    CartLineFactory(cart=cart)
    cart = services.cart_checkout_save(cart=cart, email=cart.email, data=data)
    before = _world()

    with pytest.raises(CheckoutIncomplete) as error:
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint="x")

    assert str(error.value) == "Fill in your address and choose a shipping method first."
    assert _world() == before


def test_a_cart_without_an_email_is_refused():
    cart = _cart(email="")
    services.cart_checkout_save(cart=cart, email="", data=dict(cart.checkout_data))
    cart.refresh_from_db()
    before = _world()

    with pytest.raises(CheckoutIncomplete) as error:
        services.order_place(
            cart=cart, checkout_token=cart.checkout_token, fingerprint=_fingerprint(cart)
        )

    assert str(error.value) == "Give the email address we should send your order to."
    assert _world() == before


@pytest.mark.parametrize(
    "method_kwargs",
    [{"countries": ["FR", "AT"]}, {"is_active": False}],
    ids=["not-to-this-country", "inactive"],
)
def test_a_shipping_method_that_cannot_ship_is_refused(method_kwargs):
    cart = _cart(shipping_method=ShippingMethodFactory(**method_kwargs))
    before = _world()

    with pytest.raises(ShippingUnavailable) as error:
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint="x")

    assert str(error.value) == "That shipping method does not ship to your country."
    assert _world() == before


def test_a_line_above_the_stock_is_refused_naming_it():
    cart = _cart(stock=5, quantity=3)
    fingerprint = _fingerprint(cart)
    line = cart.lines.get()
    ProductVariant.objects.update(stock=2)
    before = _world()

    with pytest.raises(OutOfStock) as error:
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint)

    name = line.variant.product.name
    assert str(error.value) == (
        f"Some items are no longer available. {name}: Only 2 left: lower the quantity."
    )
    assert error.value.lines == [
        {"line_id": line.pk, "sku": line.variant.sku, "name": name, "wanted": 3, "available": 2}
    ]
    assert _world() == before


def test_only_the_unavailable_lines_are_named_and_nothing_is_taken_from_the_others():
    cart = _cart(stock=5, quantity=1)
    sold_out = CartLineFactory(cart=cart, quantity=1, variant__stock=1)
    fingerprint = _fingerprint(cart)
    ProductVariant.objects.filter(pk=sold_out.variant_id).update(stock=0)
    before = _world()

    with pytest.raises(OutOfStock) as error:
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint)

    assert str(error.value) == (
        f"Some items are no longer available. {sold_out.variant.product.name}: "
        "This item has sold out."
    )
    assert [line["line_id"] for line in error.value.lines] == [sold_out.pk]
    assert error.value.lines[0]["available"] == 0
    assert _world() == before


@pytest.mark.parametrize("hidden", ["variant", "product"])
def test_an_item_no_longer_for_sale_is_refused(hidden):
    cart = _cart(stock=5)
    line = cart.lines.select_related("variant__product").get()
    fingerprint = _fingerprint(cart)
    if hidden == "variant":
        ProductVariant.objects.update(is_active=False)
    else:
        type(line.variant.product).objects.update(is_active=False)
    before = _world()

    with pytest.raises(OutOfStock) as error:
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint)

    assert str(error.value) == (
        f"Some items are no longer available. {line.variant.product.name}: "
        "This item is no longer for sale."
    )
    assert error.value.lines[0]["available"] == 0
    assert _world() == before


# --- Voucher refusals ---------------------------------------------------------------------------


def _voucher_refused(cart: Cart, *, user=None) -> str:
    """Place the cart's order, expect a voucher refusal that wrote nothing; return its text."""
    before = _world()
    with pytest.raises(VoucherInvalid) as error:
        services.order_place(
            cart=cart,
            checkout_token=cart.checkout_token,
            fingerprint=_fingerprint(cart, user),
            user=user,
        )
    assert _world() == before
    return str(error.value)


@pytest.mark.parametrize(
    ("voucher_kwargs", "message"),
    [
        ({"code": "OTHER"}, "We don't know this voucher code."),
        ({"is_active": False}, "This voucher is no longer valid."),
        ({"starts_at": timedelta(hours=1)}, "This voucher is not valid yet."),
        ({"ends_at": timedelta(seconds=-1)}, "This voucher has expired."),
        ({"usage_limit": 3, "used_count": 3}, "This voucher has been used up."),
        ({"min_spend": Decimal("20.01")}, "This voucher needs a spend of at least €20.01."),
    ],
    ids=["unknown", "inactive", "not-yet-valid", "expired", "exhausted", "below-min-spend"],
)
def test_a_voucher_that_cannot_be_used_is_refused(voucher_kwargs, message):
    now = timezone.now()
    kwargs = {"code": "SPRING", **voucher_kwargs}
    for stamp in ("starts_at", "ends_at"):
        if stamp in kwargs:
            kwargs[stamp] = now + kwargs[stamp]
    VoucherFactory(**kwargs)
    cart = _cart(price="20.00", voucher_code="spring")

    assert _voucher_refused(cart) == message


def test_a_voucher_valid_within_its_dates_is_accepted():
    now = timezone.now()
    VoucherFactory(
        code="SPRING", starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1)
    )

    order = place(_cart(voucher_code="SPRING"))

    assert order.voucher_code == "SPRING"


def test_a_voucher_used_up_by_this_account_is_refused():
    user = UserFactory(email="ada@example.com")
    VoucherFactory(code="ONCE", per_customer_limit=1)
    first = services.cart_create(user=user)
    CartLineFactory(cart=first)
    place(checkout_ready(first, voucher_code="ONCE"), user=user)
    second = services.cart_create(user=user)
    CartLineFactory(cart=second)
    second = checkout_ready(second, voucher_code="ONCE")
    # Another email on the account's cart: the account still counts.
    second = services.cart_checkout_save(
        cart=second, email="ada.work@example.com", data=second.checkout_data
    )

    assert _voucher_refused(second, user=user) == "You have already used this voucher."


def test_a_voucher_used_up_by_this_guest_email_is_refused_whatever_its_case():
    VoucherFactory(code="ONCE", per_customer_limit=1)
    place(_cart(email="Ada@Example.com", voucher_code="ONCE"))

    cart = _cart(email="ada@EXAMPLE.com", voucher_code="ONCE")

    assert _voucher_refused(cart) == "You have already used this voucher."


def test_a_per_customer_limit_counts_each_customer_separately():
    VoucherFactory(code="TWICE", per_customer_limit=2)
    place(_cart(email="ada@example.com", voucher_code="TWICE"))
    place(_cart(email="ada@example.com", voucher_code="TWICE"))

    other = place(_cart(email="bob@example.com", voucher_code="TWICE"))

    assert other.voucher_code == "TWICE"
    assert _voucher_refused(_cart(email="ada@example.com", voucher_code="TWICE")) == (
        "You have already used this voucher."
    )
    assert Voucher.objects.get(code="TWICE").used_count == 3


def test_a_voucher_used_up_after_the_review_is_refused():
    VoucherFactory(code="LAST", usage_limit=1)
    cart = _cart(voucher_code="LAST")
    fingerprint = _fingerprint(cart)
    Voucher.objects.update(used_count=1)
    before = _world()

    with pytest.raises(VoucherInvalid) as error:
        services.order_place(cart=cart, checkout_token=cart.checkout_token, fingerprint=fingerprint)

    assert str(error.value) == "This voucher has been used up."
    assert _world() == before
