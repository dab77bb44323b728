"""Cart writes: quantities, availability, ownership of lines, merge on sign-in, checkout details."""

from decimal import Decimal

import pytest

from accounts.tests.factories import UserFactory
from catalog.models import ProductVariant
from catalog.tests.factories import ProductVariantFactory
from orders import services
from orders.exceptions import (
    CartClosed,
    CartLineNotFound,
    InvalidQuantity,
    NotEnoughStock,
    VariantUnavailable,
)
from orders.models import MAX_LINE_QUANTITY, Cart, CartLine
from orders.tests.factories import CartFactory, CartLineFactory

pytestmark = pytest.mark.django_db

WHOLE_NUMBER = "Enter the quantity as a whole number."
AT_LEAST_ONE = "The quantity must be at least 1."
AT_MOST = f"You can buy at most {MAX_LINE_QUANTITY} of one item at a time."


def _lines(cart: Cart) -> list[tuple[int, int]]:
    """The cart's lines as (variant id, quantity), as stored."""
    return list(
        CartLine.objects.filter(cart=cart)
        .order_by("variant_id")
        .values_list("variant_id", "quantity")
    )


def _updated_at(cart: Cart):
    return Cart.objects.values_list("updated_at", flat=True).get(pk=cart.pk)


# --- quantity_parse ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        (1, 1),
        (" 3 ", 3),
        ("\t7\n", 7),
        ("99", 99),
        ("007", 7),
        (42, 42),
        ("١٢", 12),  # Arabic-Indic digits, as Django's IntegerField accepts them
        ("１２", 12),  # full-width digits
    ],
)
def test_quantity_parse_accepts_whole_numbers_in_range(value, expected):
    assert services.quantity_parse(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, WHOLE_NUMBER),
        ("", WHOLE_NUMBER),
        ("   ", WHOLE_NUMBER),
        ("abc", WHOLE_NUMBER),
        ("1.5", WHOLE_NUMBER),
        (1.5, WHOLE_NUMBER),
        ("1e3", WHOLE_NUMBER),
        ("1,000", WHOLE_NUMBER),
        ("1_0", WHOLE_NUMBER),
        ("0x10", WHOLE_NUMBER),
        ("--5", WHOLE_NUMBER),
        ("5-", WHOLE_NUMBER),
        ("²", WHOLE_NUMBER),  # a digit to str.isdigit, not to int()
        ("NaN", WHOLE_NUMBER),
        ("\x00", WHOLE_NUMBER),
        ("0", AT_LEAST_ONE),
        (0, AT_LEAST_ONE),
        ("-1", AT_LEAST_ONE),
        (-3, AT_LEAST_ONE),
        ("-99999999999", AT_LEAST_ONE),
        ("100", AT_MOST),
        (100, AT_MOST),
        ("1000000", AT_MOST),
        ("9" * 5000, AT_MOST),  # beyond int()'s digit limit: must not crash
    ],
)
def test_quantity_parse_refuses_anything_else_with_a_clear_message(value, message):
    with pytest.raises(InvalidQuantity) as error:
        services.quantity_parse(value)

    assert str(error.value) == message


# --- cart_create ---------------------------------------------------------------------------------


def test_cart_create_gives_a_customer_one_open_cart_with_their_email():
    user = UserFactory(email="ada@example.com")

    first = services.cart_create(user=user)
    second = services.cart_create(user=user)

    assert first.pk == second.pk
    assert first.user_id == user.pk
    assert first.email == "ada@example.com"
    assert Cart.objects.filter(user=user).count() == 1


def test_cart_create_gives_every_guest_a_new_cart():
    first = services.cart_create(user=None)
    second = services.cart_create(user=None)

    assert first.pk != second.pk
    assert first.user_id is None and second.user_id is None


# --- cart_add -------------------------------------------------------------------------------------


def test_add_creates_a_line_remembering_the_price_seen():
    cart = CartFactory()
    variant = ProductVariantFactory(price=Decimal("12.50"), stock=5)
    before = _updated_at(cart)

    line = services.cart_add(cart=cart, variant_id=str(variant.pk), quantity="2")

    assert (line.variant_id, line.quantity, line.unit_price_seen) == (
        variant.pk,
        2,
        Decimal("12.50"),
    )
    assert _lines(cart) == [(variant.pk, 2)]
    assert _updated_at(cart) > before


def test_add_again_adds_to_the_existing_line_and_keeps_the_first_price_seen():
    cart = CartFactory()
    variant = ProductVariantFactory(price=Decimal("12.50"), stock=5)
    services.cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    variant.price = Decimal("15.00")
    variant.save()

    line = services.cart_add(cart=cart, variant_id=variant.pk, quantity=3)

    assert line.quantity == 5
    assert line.unit_price_seen == Decimal("12.50")
    assert _lines(cart) == [(variant.pk, 5)]


def test_add_clears_the_reminder_so_a_changed_cart_can_be_reminded_again():
    cart = CartFactory()
    Cart.objects.filter(pk=cart.pk).update(reminder_sent_at="2020-01-01T00:00:00Z")
    variant = ProductVariantFactory(stock=5)

    services.cart_add(cart=cart, variant_id=variant.pk, quantity=1)

    assert Cart.objects.get(pk=cart.pk).reminder_sent_at is None


@pytest.mark.parametrize(
    ("variant_id", "message"),
    [
        ("abc", "That item does not exist."),
        (None, "That item does not exist."),
        ("1.5", "That item does not exist."),
        ("999999", "That item is not for sale."),
        ("99999999999999999999999", "That item is not for sale."),
        ("-1", "That item is not for sale."),
    ],
)
def test_add_of_an_unknown_variant_is_refused_and_writes_nothing(variant_id, message):
    cart = CartFactory()
    before = _updated_at(cart)

    with pytest.raises(VariantUnavailable) as error:
        services.cart_add(cart=cart, variant_id=variant_id, quantity=1)

    assert str(error.value) == message
    assert CartLine.objects.count() == 0
    assert _updated_at(cart) == before


@pytest.mark.parametrize("hidden", ["variant", "product"])
def test_add_of_an_item_no_longer_for_sale_is_refused_and_writes_nothing(hidden):
    cart = CartFactory()
    variant = ProductVariantFactory(stock=5)
    if hidden == "variant":
        variant.is_active = False
        variant.save()
    else:
        variant.product.is_active = False
        variant.product.save()

    with pytest.raises(VariantUnavailable) as error:
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=1)

    assert str(error.value) == "That item is not for sale."
    assert CartLine.objects.count() == 0


def test_add_of_a_sold_out_item_is_refused():
    cart = CartFactory()
    variant = ProductVariantFactory(product__name="Rain Jacket", stock=0)

    with pytest.raises(NotEnoughStock) as error:
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=1)

    assert str(error.value) == "Rain Jacket is sold out."
    assert error.value.available == 0
    assert CartLine.objects.count() == 0


def test_add_of_more_than_the_stock_is_refused():
    cart = CartFactory()
    variant = ProductVariantFactory(product__name="Rain Jacket", stock=3)

    with pytest.raises(NotEnoughStock) as error:
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=4)

    assert str(error.value) == "Only 3 of Rain Jacket left."
    assert error.value.available == 3
    assert CartLine.objects.count() == 0


def test_add_counts_what_is_already_in_the_cart_against_the_stock():
    cart = CartFactory()
    variant = ProductVariantFactory(product__name="Rain Jacket", stock=3)
    services.cart_add(cart=cart, variant_id=variant.pk, quantity=2)

    with pytest.raises(NotEnoughStock) as error:
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=2)

    assert str(error.value) == "Only 3 of Rain Jacket left; you already have 2 in your cart."
    assert _lines(cart) == [(variant.pk, 2)]


def test_add_never_lets_a_line_pass_the_maximum_quantity():
    cart = CartFactory()
    variant = ProductVariantFactory(stock=500)
    services.cart_add(cart=cart, variant_id=variant.pk, quantity=MAX_LINE_QUANTITY - 1)

    with pytest.raises(InvalidQuantity) as error:
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=2)

    assert str(error.value) == AT_MOST
    assert _lines(cart) == [(variant.pk, MAX_LINE_QUANTITY - 1)]


@pytest.mark.parametrize("quantity", ["0", "-2", "1.5", "1e3", " ", None, "100"])
def test_add_with_a_bad_quantity_writes_nothing(quantity):
    cart = CartFactory()
    variant = ProductVariantFactory(stock=500)

    with pytest.raises(InvalidQuantity):
        services.cart_add(cart=cart, variant_id=variant.pk, quantity=quantity)

    assert CartLine.objects.count() == 0


@pytest.mark.parametrize("status", [Cart.Status.ORDERED, Cart.Status.MERGED])
def test_a_closed_cart_cannot_be_changed(status):
    cart = CartFactory()
    line = CartLineFactory(cart=cart, quantity=1, variant__stock=5)
    other = ProductVariantFactory(stock=5)
    Cart.objects.filter(pk=cart.pk).update(status=status)
    message = "This cart has already been checked out or merged; refresh the page."

    for change in (
        lambda: services.cart_add(cart=cart, variant_id=other.pk, quantity=1),
        lambda: services.cart_line_update(cart=cart, line_id=line.pk, quantity=2),
        lambda: services.cart_line_remove(cart=cart, line_id=line.pk),
        lambda: services.cart_checkout_save(cart=cart, email="x@example.com", data={"a": 1}),
    ):
        with pytest.raises(CartClosed) as error:
            change()
        assert str(error.value) == message

    assert _lines(cart) == [(line.variant_id, 1)]
    assert Cart.objects.get(pk=cart.pk).checkout_data == {}


# --- cart_line_update / cart_line_remove --------------------------------------------------------


def test_update_sets_the_quantity():
    line = CartLineFactory(quantity=1, variant__stock=5)

    updated = services.cart_line_update(cart=line.cart, line_id=str(line.pk), quantity="4")

    assert updated.quantity == 4
    assert _lines(line.cart) == [(line.variant_id, 4)]


def test_update_above_the_stock_is_refused():
    line = CartLineFactory(quantity=1, variant__stock=3, variant__product__name="Boots")

    with pytest.raises(NotEnoughStock) as error:
        services.cart_line_update(cart=line.cart, line_id=line.pk, quantity=4)

    assert str(error.value) == "Only 3 of Boots left."
    assert error.value.available == 3
    assert _lines(line.cart) == [(line.variant_id, 1)]


def test_update_may_lower_a_quantity_that_is_now_above_the_stock():
    line = CartLineFactory(quantity=5, variant__stock=5)
    line.variant.stock = 1
    line.variant.save()

    services.cart_line_update(cart=line.cart, line_id=line.pk, quantity=3)

    assert _lines(line.cart) == [(line.variant_id, 3)]


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", "", None, "1.5", "100"])
def test_update_with_a_bad_quantity_writes_nothing(quantity):
    line = CartLineFactory(quantity=2, variant__stock=500)

    with pytest.raises(InvalidQuantity):
        services.cart_line_update(cart=line.cart, line_id=line.pk, quantity=quantity)

    assert _lines(line.cart) == [(line.variant_id, 2)]


@pytest.mark.parametrize("line_id", ["foreign", "abc", None, "999999", "99999999999999999999999"])
def test_update_of_a_line_not_in_this_cart_is_not_found(line_id):
    mine = CartLineFactory(quantity=1)
    theirs = CartLineFactory(quantity=1)
    target = theirs.pk if line_id == "foreign" else line_id

    with pytest.raises(CartLineNotFound) as error:
        services.cart_line_update(cart=mine.cart, line_id=target, quantity=5)

    assert str(error.value) == "That item is not in your cart."
    assert _lines(theirs.cart) == [(theirs.variant_id, 1)]
    assert _lines(mine.cart) == [(mine.variant_id, 1)]


def test_remove_deletes_the_line():
    line = CartLineFactory()
    kept = CartLineFactory(cart=line.cart)

    services.cart_line_remove(cart=line.cart, line_id=str(line.pk))

    assert _lines(line.cart) == [(kept.variant_id, 1)]


def test_remove_of_another_carts_line_is_not_found_and_deletes_nothing():
    mine = CartLineFactory()
    theirs = CartLineFactory()

    with pytest.raises(CartLineNotFound) as error:
        services.cart_line_remove(cart=mine.cart, line_id=theirs.pk)

    assert str(error.value) == "That item is not in your cart."
    assert CartLine.objects.count() == 2


# --- cart_merge ---------------------------------------------------------------------------------


def test_merge_adds_quantities_and_closes_the_guest_cart():
    user = UserFactory()
    mine = services.cart_create(user=user)
    shared = ProductVariantFactory(stock=50)
    only_guest = ProductVariantFactory(stock=50, price=Decimal("7.00"))
    CartLineFactory(cart=mine, variant=shared, quantity=2)
    guest = CartFactory()
    CartLineFactory(cart=guest, variant=shared, quantity=3)
    CartLineFactory(cart=guest, variant=only_guest, quantity=4, unit_price_seen=Decimal("6.00"))

    result = services.cart_merge(source=guest, user=user)

    assert result.pk == mine.pk
    assert _lines(mine) == sorted([(shared.pk, 5), (only_guest.pk, 4)])
    assert CartLine.objects.get(cart=mine, variant=only_guest).unit_price_seen == Decimal("6.00")
    guest.refresh_from_db()
    assert guest.status == Cart.Status.MERGED
    assert guest.user_id is None
    assert Cart.objects.filter(user=user, status=Cart.Status.OPEN).count() == 1


def test_merge_caps_quantities_by_the_stock_and_skips_sold_out_items():
    user = UserFactory()
    mine = services.cart_create(user=user)
    shared = ProductVariantFactory(stock=6)
    guest_only = ProductVariantFactory(stock=2)
    sold_out = ProductVariantFactory(stock=5)
    CartLineFactory(cart=mine, variant=shared, quantity=4)
    guest = CartFactory()
    CartLineFactory(cart=guest, variant=shared, quantity=4)
    CartLineFactory(cart=guest, variant=guest_only, quantity=2)
    CartLineFactory(cart=guest, variant=sold_out, quantity=1)
    ProductVariant.objects.filter(pk=guest_only.pk).update(stock=1)
    ProductVariant.objects.filter(pk=sold_out.pk).update(stock=0)

    services.cart_merge(source=guest, user=user)

    assert _lines(mine) == sorted([(shared.pk, 6), (guest_only.pk, 1)])


def test_merge_caps_quantities_by_the_line_maximum():
    user = UserFactory()
    mine = services.cart_create(user=user)
    variant = ProductVariantFactory(stock=1000)
    CartLineFactory(cart=mine, variant=variant, quantity=60)
    guest = CartFactory()
    CartLineFactory(cart=guest, variant=variant, quantity=60)

    services.cart_merge(source=guest, user=user)

    assert _lines(mine) == [(variant.pk, MAX_LINE_QUANTITY)]


def test_merge_never_lowers_what_the_customer_already_had():
    user = UserFactory()
    mine = services.cart_create(user=user)
    variant = ProductVariantFactory(stock=10)
    CartLineFactory(cart=mine, variant=variant, quantity=8)
    guest = CartFactory()
    CartLineFactory(cart=guest, variant=variant, quantity=1)
    ProductVariant.objects.filter(pk=variant.pk).update(stock=3)

    services.cart_merge(source=guest, user=user)

    assert _lines(mine) == [(variant.pk, 8)]


def test_a_user_without_a_cart_takes_over_the_guest_cart():
    user = UserFactory(email="ada@example.com")
    guest = CartFactory(email="")
    line = CartLineFactory(cart=guest, quantity=2)

    result = services.cart_merge(source=guest, user=user)

    assert result.pk == guest.pk
    guest.refresh_from_db()
    assert (guest.user_id, guest.status, guest.email) == (
        user.pk,
        Cart.Status.OPEN,
        "ada@example.com",
    )
    assert _lines(guest) == [(line.variant_id, 2)]


def test_takeover_keeps_the_email_the_guest_gave():
    user = UserFactory(email="ada@example.com")
    guest = CartFactory(email="ada.other@example.com")

    services.cart_merge(source=guest, user=user)

    guest.refresh_from_db()
    assert guest.email == "ada.other@example.com"


def test_merging_a_cart_that_is_no_longer_open_changes_nothing():
    user = UserFactory()
    mine = services.cart_create(user=user)
    guest = CartFactory(status=Cart.Status.MERGED)
    CartLineFactory(cart=guest, quantity=3)

    result = services.cart_merge(source=guest, user=user)

    assert result.pk == mine.pk
    assert _lines(mine) == []
    guest.refresh_from_db()
    assert guest.status == Cart.Status.MERGED


def test_merging_the_users_own_cart_returns_it_unchanged():
    user = UserFactory()
    mine = services.cart_create(user=user)
    line = CartLineFactory(cart=mine, quantity=3)

    result = services.cart_merge(source=mine, user=user)

    assert result.pk == mine.pk
    assert _lines(mine) == [(line.variant_id, 3)]


def test_another_customers_cart_is_never_merged_or_taken_over():
    user, other = UserFactory(), UserFactory()
    theirs = services.cart_create(user=other)
    CartLineFactory(cart=theirs, quantity=3)

    result = services.cart_merge(source=theirs, user=user)

    assert result.user_id == user.pk
    assert result.pk != theirs.pk
    assert _lines(result) == []
    theirs.refresh_from_db()
    assert (theirs.user_id, theirs.status) == (other.pk, Cart.Status.OPEN)
    assert CartLine.objects.filter(cart=theirs).count() == 1


# --- cart_checkout_save --------------------------------------------------------------------------


def test_checkout_save_issues_a_new_token_only_when_the_details_change():
    cart = CartFactory(email="ada@example.com")
    data = {"address": {"country": "DE"}, "shipping_method_id": 1, "voucher_code": ""}

    first = services.cart_checkout_save(cart=cart, email="ada@example.com", data=data)
    token = first.checkout_token
    same = services.cart_checkout_save(cart=cart, email="ada@example.com", data=dict(data))
    changed_email = services.cart_checkout_save(cart=cart, email="bob@example.com", data=data)
    changed_data = services.cart_checkout_save(
        cart=cart, email="bob@example.com", data={**data, "voucher_code": "SAVE"}
    )

    assert same.checkout_token == token
    assert changed_email.checkout_token != token
    assert changed_data.checkout_token not in {token, changed_email.checkout_token}
    stored = Cart.objects.get(pk=cart.pk)
    assert stored.email == "bob@example.com"
    assert stored.checkout_data == {**data, "voucher_code": "SAVE"}
    assert stored.checkout_token == changed_data.checkout_token
