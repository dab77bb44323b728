"""Cart, checkout and order pages: the whole path a shopper takes, and every way it can go wrong."""

import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import include, path, reverse

from accounts import services as account_services
from accounts.models import Address
from accounts.tests.factories import UserFactory
from catalog.models import ProductVariant
from catalog.tests.factories import ProductFactory, ProductImageFactory, ProductVariantFactory
from orders import views
from orders.models import Cart, CartLine, Order, OrderEvent, OutboxEmail
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

# With database sessions a request reads its session with one query; with cached sessions
# (Redis in CI) it usually reads none.
SESSION_QUERIES = 1 if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db" else 0
# Pinned query counts (besides the session); tests prove they do not grow with the cart. Every
# page also reads the category tree for the navigation.
CART_QUERIES = 5  # cart, lines with variants and products, live sales, images, categories
CHECKOUT_GUEST_QUERIES = 5  # cart, lines, their live sales, shipping methods, category tree
CHECKOUT_CUSTOMER_QUERIES = 7  # user, cart, lines, live sales, addresses, methods, categories
# cart, methods (details check), methods (quote), lines, live sales, tax rate, category tree
REVIEW_QUERIES = 7
ORDER_QUERIES = 3  # order with voucher, its lines, category tree
# user, count, one page of orders with item counts, header cart count, category tree
ACCOUNT_ORDERS_QUERIES = 5

XSS = "<script>alert(1)</script>"
INVALID_CHOICE = "Select a valid choice. {} is not one of the available choices."


# --- Helpers -----------------------------------------------------------------------------------


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _variant(*, name: str = "Storm shell", price: str = "19.99", stock: int = 10, **kwargs):
    product = ProductFactory(name=name, variants=[])
    return ProductVariantFactory(product=product, price=Decimal(price), stock=stock, **kwargs)


def _post(client, url: str, data: dict | None = None):
    response = client.post(url, data or {})
    # As if the browser had shown the messages: the next response carries only its own.
    client.cookies.pop("messages", None)
    return response


def _add(client, variant, quantity: object = 1, **extra):
    return _post(
        client, reverse("orders:cart-add"), {"variant": variant.pk, "quantity": quantity, **extra}
    )


def _checkout_form(method, **overrides) -> dict:
    form = {
        "email": "guest@example.com",
        "address_choice": "new",
        **ADDRESS,
        "shipping_method": method.pk,
        "voucher_code": "",
    }
    form.update(overrides)
    return form


def _place_form(html: str) -> str:
    match = re.search(r'<form method="post" action="/checkout/place/".*?</form>', html, re.S)
    assert match, "no place-order form on the page"
    return match.group(0)


def _place_fields(html: str) -> dict:
    form = _place_form(html)
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))


def _place(client, fields: dict):
    return _post(client, reverse("orders:checkout-place"), fields)


def _session_cart(client) -> Cart:
    return Cart.objects.get(pk=client.session["cart_id"])


def _ready_guest(client, *, quantity: int = 2, price: str = "19.99", stock: int = 10, **form):
    """Put a variant in a guest cart and fill in the checkout; return (variant, method)."""
    variant = _variant(price=price, stock=stock)
    method = ShippingMethodFactory(name="Parcel", price=Decimal("4.95"))
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    assert _add(client, variant, quantity).status_code == 302
    response = client.post(reverse("orders:checkout"), _checkout_form(method, **form))
    assert response.status_code == 302, response.context["form"].errors
    client.cookies.pop("messages", None)
    return variant, method


# --- The guest's whole path ---------------------------------------------------------------------


def test_guest_flow_from_product_page_to_order_page(client):
    variant = _variant(name="Storm shell", price="19.99", stock=5, options={"size": "L"})
    method = ShippingMethodFactory(name="Parcel", price=Decimal("4.95"))
    TaxRateFactory(country="DE", rate=Decimal("19.00"))

    # The product page's form posts to the cart.
    product_html = client.get(variant.product.get_absolute_url()).content.decode()
    assert f'action="{reverse("orders:cart-add")}"' in product_html
    assert 'name="quantity" value="1" min="1" max="99"' in product_html
    assert "csrfmiddlewaretoken" in product_html

    added = _add(client, variant, 2)
    assert added.status_code == 302 and added["Location"] == reverse("orders:cart")
    assert _messages(added) == ["Added 2 × Storm shell (L) to your cart."]

    cart_page = client.get(reverse("orders:cart"))
    cart_html = cart_page.content.decode()
    assert "Storm shell" in cart_html and "€19.99 each" in cart_html and "€39.98" in cart_html

    form_page = client.get(reverse("orders:checkout"))
    assert form_page.status_code == 200
    assert 'name="save_address"' not in form_page.content.decode()  # guests have no account

    saved = client.post(
        reverse("orders:checkout"),
        _checkout_form(method, postal_code=" 10115 ", email="Guest@X.io"),
    )
    assert saved.status_code == 302 and saved["Location"] == reverse("orders:checkout-review")

    review = client.get(reverse("orders:checkout-review"))
    html = review.content.decode()
    assert review.status_code == 200
    for text in ["Storm shell", "€19.99", "€39.98", "Parcel", "€4.95", "€7.17", "€44.93"]:
        assert text in html, text
    assert "Tax 19%, included" in html
    assert "Hauptstraße 1" in html and "10115 Berlin" in html and "Germany" in html
    # The place-order form carries the checkout token and the fingerprint, never an amount.
    assert re.findall(r'name="([^"]+)"', _place_form(html)) == [
        "csrfmiddlewaretoken",
        "checkout_token",
        "fingerprint",
    ]

    placed = _place(client, _place_fields(html))

    order = Order.objects.get()
    assert placed.status_code == 302
    assert placed["Location"] == order.get_absolute_url()
    assert (order.email, order.status, order.user) == ("guest@x.io", "pending_payment", None)
    assert (order.subtotal, order.shipping_total, order.tax_total, order.total) == (
        Decimal("39.98"),
        Decimal("4.95"),
        Decimal("7.17"),
        Decimal("44.93"),
    )
    assert order.shipping_address == ADDRESS
    assert [(line.sku, line.quantity, line.line_total) for line in order.lines.all()] == [
        (variant.sku, 2, Decimal("39.98"))
    ]
    variant.refresh_from_db()
    assert variant.stock == 3
    assert "cart_id" not in client.session
    emails = OutboxEmail.objects.filter(order=order)
    assert [(e.kind, e.to_email) for e in emails] == [("order_received", "guest@x.io")]

    # The guest's link (as in the email) shows the order, in a fresh browser too.
    page = client.__class__().get(order.get_absolute_url())
    page_html = page.content.decode()
    assert page.status_code == 200
    assert f"Order {order.number}" in page_html and "Awaiting payment" in page_html
    assert "Storm shell" in page_html and "€44.93" in page_html and "Hauptstraße 1" in page_html
    assert "Cancel order" in page_html
    assert "Pay now · €44.93" in page_html
    # The header's cart is empty again.
    assert 'class="cart-count"' not in client.get(reverse("orders:cart")).content.decode()


def test_tax_added_on_top_is_spelled_out(client, settings):
    settings.SHOP_PRICES_INCLUDE_TAX = False
    _ready_guest(client, quantity=1, price="10.00")

    html = client.get(reverse("orders:checkout-review")).content.decode()

    # 10.00 + 4.95 shipping = 14.95 taxable; 19% on top = 2.84; total 17.79.
    assert "Tax 19%, added" in html and "€2.84" in html and "€17.79" in html


def test_free_shipping_above_the_threshold_is_shown(client):
    variant = _variant(price="50.00")
    method = ShippingMethodFactory(name="Parcel", price=Decimal("4.95"), free_above=Decimal("40"))
    _add(client, variant, 1)

    form_html = client.get(reverse("orders:checkout")).content.decode()
    client.post(reverse("orders:checkout"), _checkout_form(method))
    review_html = client.get(reverse("orders:checkout-review")).content.decode()

    assert "Free above €40.00" in form_html
    assert "Free shipping: your order is above €40.00." in review_html
    assert "€50.00" in review_html


def test_voucher_discount_is_shown_and_kept_on_the_order(client):
    VoucherFactory(code="TENOFF", value=Decimal("10.00"))
    _ready_guest(client, quantity=1, price="20.00", voucher_code=" tenoff ")

    html = client.get(reverse("orders:checkout-review")).content.decode()
    _place(client, _place_fields(html))

    assert 'Discount <span class="amount-note">Voucher TENOFF</span>' in html
    assert "−€2.00" in html
    order = Order.objects.get()
    assert (order.voucher_code, order.discount_total, order.total) == (
        "TENOFF",
        Decimal("2.00"),
        Decimal("22.95"),
    )


# --- Signed-in customers ----------------------------------------------------------------------


def test_signed_in_checkout_with_a_saved_address(client):
    user = UserFactory(email="ada@example.com")
    home = account_services.address_create(
        user=user, full_name="Ada Home", line1="Rue 1", city="Paris", postal_code="75001",
        country="FR",
    )  # fmt: skip
    account_services.address_create(
        user=user, full_name="Ada Work", line1="Weg 2", city="Berlin", postal_code="10115",
        country="DE",
    )  # fmt: skip
    method = ShippingMethodFactory(name="Europe", countries=["FR", "DE"])
    variant = _variant()
    client.force_login(user)
    _add(client, variant, 1)

    form_page = client.get(reverse("orders:checkout"))
    form = form_page.context["form"]
    assert form["email"].value() == "ada@example.com"
    assert form["address_choice"].value() == str(home.pk)  # the default address first
    assert form["shipping_method"].value() == str(method.pk)  # the only method

    response = client.post(
        reverse("orders:checkout"),
        {"email": "ada@example.com", "address_choice": home.pk, "shipping_method": method.pk},
    )
    assert response.status_code == 302
    html = client.get(reverse("orders:checkout-review")).content.decode()
    _place(client, _place_fields(html))

    order = Order.objects.get()
    assert order.user == user
    assert order.shipping_address == home.as_snapshot()
    assert Address.objects.filter(user=user).count() == 2  # nothing saved twice
    history = client.get(reverse("orders:account-orders")).content.decode()
    assert order.number in history and "€24.94" in history
    detail = client.get(reverse("orders:account-order-detail", args=[order.number]))
    assert detail.status_code == 200 and "Ada Home" in detail.content.decode()


def test_signed_in_checkout_saves_a_new_address_when_asked(client):
    user = UserFactory()
    method = ShippingMethodFactory()
    client.force_login(user)
    _add(client, _variant(), 1)

    response = client.post(
        reverse("orders:checkout"),
        _checkout_form(method, email=user.email, save_address="on", postal_code="10115"),
    )

    assert response.status_code == 302
    saved = Address.objects.get(user=user)
    assert saved.as_snapshot() == ADDRESS
    assert saved.is_default is True
    # The next checkout offers it, already chosen.
    form = client.get(reverse("orders:checkout")).context["form"]
    assert form["address_choice"].value() == str(saved.pk)


def test_checkout_refuses_another_customers_address(client):
    user, other = UserFactory(), UserFactory()
    theirs = account_services.address_create(
        user=other, full_name="Not Me", line1="X 1", city="Oslo", postal_code="0150", country="NO"
    )
    method = ShippingMethodFactory()
    client.force_login(user)
    _add(client, _variant(), 1)

    response = client.post(
        reverse("orders:checkout"),
        {"email": user.email, "address_choice": theirs.pk, "shipping_method": method.pk},
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"address_choice": [INVALID_CHOICE.format(theirs.pk)]}
    assert Cart.objects.get(user=user).checkout_data == {}


# --- Placing twice, and what placement refuses -------------------------------------------------


def test_placing_twice_makes_one_order(client):
    variant, _ = _ready_guest(client, quantity=2)
    fields = _place_fields(client.get(reverse("orders:checkout-review")).content.decode())

    first = _place(client, fields)
    second = _place(client, fields)

    order = Order.objects.get()
    assert first["Location"] == second["Location"] == order.get_absolute_url()
    assert _messages(second) == ["This order has been placed already."]
    variant.refresh_from_db()
    assert variant.stock == 8
    assert OutboxEmail.objects.count() == 1
    assert OrderEvent.objects.count() == 1


def test_placing_twice_as_a_customer_makes_one_order(client):
    user = UserFactory()
    method = ShippingMethodFactory()
    client.force_login(user)
    _add(client, _variant(), 1)
    client.post(reverse("orders:checkout"), _checkout_form(method, email=user.email))
    fields = _place_fields(client.get(reverse("orders:checkout-review")).content.decode())

    first = _place(client, fields)
    _add(client, _variant(name="Mug"), 1)  # a new cart before the second click lands
    second = _place(client, fields)

    assert first["Location"] == second["Location"] == Order.objects.get().get_absolute_url()
    assert Cart.objects.get(user=user, status="open").lines.count() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fingerprint": "0" * 32}, "Prices or amounts changed since you reviewed your order"),
        ({"fingerprint": "é" * 32}, "Prices or amounts changed since you reviewed your order"),
        ({"fingerprint": ""}, "Prices or amounts changed since you reviewed your order"),
        ({"checkout_token": "forged"}, "Your checkout changed in the meantime"),
        ({"checkout_token": ""}, "Your checkout changed in the meantime"),
        ({"checkout_token": "ß" * 10_000}, "Your checkout changed in the meantime"),
    ],
)
def test_tampered_place_form_is_refused_and_writes_nothing(client, change, message):
    variant, _ = _ready_guest(client, quantity=2)
    fields = _place_fields(client.get(reverse("orders:checkout-review")).content.decode())

    response = _place(client, {**fields, **change})

    assert response.status_code == 409
    assert message in response.content.decode()
    assert Order.objects.count() == 0 and OutboxEmail.objects.count() == 0
    variant.refresh_from_db()
    assert variant.stock == 10
    assert _session_cart(client).status == "open"


def test_out_of_stock_at_placement_names_the_line_and_writes_nothing(client):
    variant, _ = _ready_guest(client, quantity=3, stock=5)
    other = _variant(name="Camp mug", price="5.00")
    _add(client, other, 1)
    fields = _place_fields(client.get(reverse("orders:checkout-review")).content.decode())
    ProductVariant.objects.filter(pk=variant.pk).update(stock=1)  # someone else bought two

    response = _place(client, fields)

    html = response.content.decode()
    assert response.status_code == 409
    assert "Some items are no longer available." in html
    assert "Storm shell: Only 1 left: lower the quantity." in html
    assert '<a href="/cart/">Change them in your cart</a>' in html
    assert "Camp mug: " not in html
    assert 'class="place-form"' not in html  # no button until the cart is fixed
    assert Order.objects.count() == 0 and OutboxEmail.objects.count() == 0
    assert ProductVariant.objects.get(pk=variant.pk).stock == 1
    assert ProductVariant.objects.get(pk=other.pk).stock == 10
    assert _session_cart(client).status == "open"


def test_price_change_is_shown_on_cart_and_review_and_charged_at_the_new_price(client):
    variant, _ = _ready_guest(client, quantity=1, price="19.99")
    ProductVariant.objects.filter(pk=variant.pk).update(price=Decimal("24.99"))

    cart_html = client.get(reverse("orders:cart")).content.decode()
    review_html = client.get(reverse("orders:checkout-review")).content.decode()
    _place(client, _place_fields(review_html))

    notice = "was €19.99, now €24.99"
    assert notice in cart_html
    assert "Prices changed since you added this item:" in review_html and notice in review_html
    assert Order.objects.get().subtotal == Decimal("24.99")


def test_price_change_after_review_is_refused_and_shows_the_new_amounts(client):
    variant, _ = _ready_guest(client, quantity=1, price="19.99")
    fields = _place_fields(client.get(reverse("orders:checkout-review")).content.decode())
    ProductVariant.objects.filter(pk=variant.pk).update(price=Decimal("29.99"))

    response = _place(client, fields)

    html = response.content.decode()
    assert response.status_code == 409
    assert "Prices or amounts changed since you reviewed your order" in html
    assert "€34.94" in html  # 29.99 + 4.95, ready to place again
    assert _place_fields(html)["fingerprint"] != fields["fingerprint"]
    assert Order.objects.count() == 0


def test_voucher_used_up_after_review_is_refused(client):
    voucher = VoucherFactory(code="ONCE", usage_limit=1)
    _ready_guest(client, quantity=1, voucher_code="ONCE")
    fields = _place_fields(client.get(reverse("orders:checkout-review")).content.decode())
    type(voucher).objects.filter(pk=voucher.pk).update(used_count=1)

    response = _place(client, fields)

    assert response.status_code == 409
    assert "This voucher has been used up." in response.content.decode()
    assert Order.objects.count() == 0


# --- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "The quantity must be at least 1."),
        ("-1", "The quantity must be at least 1."),
        ("100", "You can buy at most 99 of one item at a time."),
        ("9" * 40, "You can buy at most 99 of one item at a time."),
        ("abc", "Enter the quantity as a whole number."),
        ("1.5", "Enter the quantity as a whole number."),
        ("", "Enter the quantity as a whole number."),
        ("²", "Enter the quantity as a whole number."),
        ("--5", "Enter the quantity as a whole number."),
        ("\x00", "Enter the quantity as a whole number."),
    ],
)
def test_cart_add_refuses_bad_quantities_and_writes_nothing(client, quantity, message):
    variant = _variant()

    response = _add(client, variant, quantity)

    assert response.status_code == 302
    assert _messages(response) == [message]
    assert Cart.objects.count() == 0 and CartLine.objects.count() == 0
    assert "cart_id" not in client.session


@pytest.mark.parametrize(
    ("variant_id", "message"),
    [
        ("", "That item does not exist."),
        ("abc", "That item does not exist."),
        ("1e3", "That item does not exist."),
        ("-1", "That item is not for sale."),
        ("999999", "That item is not for sale."),
        ("9" * 30, "That item is not for sale."),
    ],
)
def test_cart_add_refuses_unknown_variants(client, variant_id, message):
    response = client.post(reverse("orders:cart-add"), {"variant": variant_id, "quantity": 1})

    assert response.status_code == 302
    assert _messages(response) == [message]
    assert Cart.objects.count() == 0


@pytest.mark.parametrize("hidden", ["variant", "product"])
def test_cart_add_refuses_inactive_items(client, hidden):
    variant = _variant()
    target = variant if hidden == "variant" else variant.product
    type(target).objects.filter(pk=target.pk).update(is_active=False)

    response = _add(client, variant, 1)

    assert _messages(response) == ["That item is not for sale."]
    assert Cart.objects.count() == 0


def test_cart_add_refuses_more_than_the_stock_and_goes_back_to_the_product(client):
    variant = _variant(stock=2)
    back = variant.product.get_absolute_url()

    first = _add(client, variant, 2)
    second = _add(client, variant, 1, next=back)
    foreign = _add(client, variant, 5, next="https://evil.example.net/")

    assert first["Location"] == reverse("orders:cart")
    assert second["Location"] == back
    assert _messages(second) == ["Only 2 of Storm shell left; you already have 2 in your cart."]
    assert foreign["Location"] == reverse("orders:cart")
    assert CartLine.objects.get().quantity == 2


def test_sold_out_variant_cannot_be_added(client):
    variant = _variant(stock=0)

    product_html = client.get(variant.product.get_absolute_url()).content.decode()
    response = _add(client, variant, 1)

    assert "This option is sold out." in product_html
    assert _messages(response) == ["Storm shell is sold out."]
    assert Cart.objects.count() == 0


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "The quantity must be at least 1."),
        ("-3", "The quantity must be at least 1."),
        ("abc", "Enter the quantity as a whole number."),
        ("99999999999999999999", "You can buy at most 99 of one item at a time."),
        ("11", "Only 10 of Storm shell left."),
    ],
)
def test_cart_line_update_refuses_bad_quantities(client, quantity, message):
    _add(client, _variant(stock=10), 2)
    line = CartLine.objects.get()

    response = client.post(
        reverse("orders:cart-line-update", args=[line.pk]), {"quantity": quantity}
    )

    assert response["Location"] == reverse("orders:cart")
    assert _messages(response) == [message]
    line.refresh_from_db()
    assert line.quantity == 2


def test_cart_line_update_and_remove(client):
    _add(client, _variant(), 2)
    line = CartLine.objects.get()

    updated = _post(client, reverse("orders:cart-line-update", args=[line.pk]), {"quantity": "5"})
    quantity = CartLine.objects.get().quantity
    removed = _post(client, reverse("orders:cart-line-remove", args=[line.pk]))

    assert _messages(updated) == ["Quantity updated."] and quantity == 5
    assert _messages(removed) == ["Removed from your cart."]
    assert CartLine.objects.count() == 0
    assert "Your cart is empty." in client.get(reverse("orders:cart")).content.decode()


@pytest.mark.parametrize("action", ["cart-line-update", "cart-line-remove"])
def test_another_carts_line_is_not_found_and_not_changed(client, action):
    _add(client, _variant(name="Mine"), 1)
    theirs = CartLineFactory(quantity=3)

    response = client.post(reverse(f"orders:{action}", args=[theirs.pk]), {"quantity": "1"})

    assert response["Location"] == reverse("orders:cart")
    assert _messages(response) == ["That item is not in your cart."]
    theirs.refresh_from_db()
    assert theirs.quantity == 3


@pytest.mark.parametrize("action", ["cart-line-update", "cart-line-remove"])
def test_line_actions_without_a_cart_say_so(client, action):
    theirs = CartLineFactory(quantity=3)

    response = client.post(reverse(f"orders:{action}", args=[theirs.pk]), {"quantity": "1"})

    assert _messages(response) == ["That item is not in your cart."]
    assert CartLine.objects.get().quantity == 3


def test_huge_line_ids_are_not_found(client):
    _add(client, _variant(), 1)

    response = client.post(f"/cart/lines/{'9' * 30}/", {"quantity": "1"})

    assert _messages(response) == ["That item is not in your cart."]


def test_a_session_cart_id_of_another_kind_is_ignored(client):
    session = client.session
    session["cart_id"] = "not-a-number"
    session.save()

    response = client.get(reverse("orders:cart"))

    assert response.status_code == 200
    assert "Your cart is empty." in response.content.decode()


def test_an_ordered_cart_in_the_session_is_not_reused(client):
    _ready_guest(client, quantity=1)
    cart = _session_cart(client)
    Cart.objects.filter(pk=cart.pk).update(status="ordered")

    _add(client, _variant(name="Mug"), 1)

    assert client.session["cart_id"] != cart.pk
    assert cart.lines.count() == 1


@pytest.mark.parametrize(
    "name",
    [
        "orders:cart-add",
        "orders:checkout-place",
        "orders:cart-line-update",
        "orders:cart-line-remove",
        "orders:order-cancel",
    ],
)
def test_post_only_endpoints_refuse_get_with_405(client, name):
    args = {
        "orders:cart-line-update": [1],
        "orders:cart-line-remove": [1],
        "orders:order-cancel": ["NW-AAAA-AAAA", "token"],
    }.get(name, [])

    assert client.get(reverse(name, args=args)).status_code == 405


@pytest.mark.parametrize("name", ["orders:cart", "orders:checkout-review"])
def test_pages_refuse_writes_with_405(client, name):
    assert client.post(reverse(name)).status_code == 405


@pytest.mark.parametrize(
    "name", ["orders:checkout", "orders:checkout-review", "orders:checkout-place"]
)
def test_checkout_without_a_cart_goes_back_to_the_cart(client, name):
    response = client.post(reverse(name)) if name.endswith("place") else client.get(reverse(name))

    assert response["Location"] == reverse("orders:cart")
    assert _messages(response) in (["Your cart is empty: add something before checking out."],)


def test_checkout_of_an_emptied_cart_goes_back_to_the_cart(client):
    _ready_guest(client, quantity=1)
    CartLine.objects.all().delete()

    form = client.get(reverse("orders:checkout"))
    client.cookies.pop("messages", None)
    review = client.get(reverse("orders:checkout-review"))

    assert form["Location"] == review["Location"] == reverse("orders:cart")
    assert _messages(review) == ["Your cart is empty: add something before checking out."]


def test_review_before_the_details_asks_for_them(client):
    _add(client, _variant(), 1)

    response = client.get(reverse("orders:checkout-review"))

    assert response["Location"] == reverse("orders:checkout")
    assert _messages(response) == ["Fill in your address and choose a shipping method first."]


def test_review_after_the_method_stopped_shipping_there_asks_again(client):
    _, method = _ready_guest(client, quantity=1)
    type(method).objects.filter(pk=method.pk).update(countries=["FR"])

    response = client.get(reverse("orders:checkout-review"))

    assert response["Location"] == reverse("orders:checkout")
    assert _messages(response) == ["That shipping method does not ship to your country."]


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"postal_code": "1234"}, "postal_code", "This is not a valid postal code for Germany."),
        ({"country": "XX"}, "country", INVALID_CHOICE.format("XX")),
        ({"full_name": ""}, "full_name", "This field is required."),
        ({"line1": "   "}, "line1", "This field is required."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"shipping_method": ""}, "shipping_method", "Choose how we ship your order."),
        ({"shipping_method": "999"}, "shipping_method", INVALID_CHOICE.format("999")),
        ({"voucher_code": "NOPE"}, "voucher_code", "We don't know this voucher code."),
        ({"city": "x" * 101}, "city", "Ensure this value has at most 100 characters (it has 101)."),
    ],
)  # fmt: skip
def test_checkout_form_reports_bad_details_and_saves_nothing(client, overrides, field, error):
    variant = _variant()
    method = ShippingMethodFactory()
    _add(client, variant, 1)

    response = client.post(reverse("orders:checkout"), _checkout_form(method, **overrides))

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [error]
    assert "Please check the highlighted fields." in response.content.decode()
    cart = _session_cart(client)
    assert (cart.email, cart.checkout_data) == ("", {})


def test_checkout_refuses_a_method_that_does_not_ship_to_the_country(client):
    method = ShippingMethodFactory(name="France only", countries=["FR"])
    _add(client, _variant(), 1)

    response = client.post(reverse("orders:checkout"), _checkout_form(method))

    assert response.context["form"].errors["shipping_method"] == [
        "France only does not ship to Germany: choose another way."
    ]
    assert 'data-countries="FR"' in response.content.decode()


# --- Orders -------------------------------------------------------------------------------------


def _placed_order(*, user=None, email: str = "shopper@example.com") -> Order:
    cart = CartFactory(user=user, email=email)
    CartLineFactory(cart=cart, variant=_variant(price="10.00"), quantity=1)
    cart = checkout_ready(cart)
    return place(cart, user=user)


@pytest.mark.parametrize(
    "url",
    [
        "/orders/{number}/wrong-token/",
        "/orders/{number}/{token}x/",
        "/orders/NW-0000-0000/{token}/",
        "/orders/{number}/%C3%A9/",
        "/orders/{number}/",
    ],
)
def test_guest_link_with_a_wrong_token_is_not_found(client, url):
    order = _placed_order()

    response = client.get(url.format(number=order.number, token=order.access_token))

    assert response.status_code == 404


def test_another_customers_order_is_not_found(client):
    mine, theirs = UserFactory(), UserFactory()
    order = _placed_order(user=theirs)
    client.force_login(mine)

    detail = client.get(reverse("orders:account-order-detail", args=[order.number]))
    history = client.get(reverse("orders:account-orders"))

    assert detail.status_code == 404
    assert order.number not in history.content.decode()


def test_account_order_pages_need_signing_in(client):
    order = _placed_order(user=UserFactory())

    for url in [
        reverse("orders:account-orders"),
        reverse("orders:account-order-detail", args=[order.number]),
    ]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('account_login')}?next={url}"


def test_order_history_is_paginated_newest_first(client, monkeypatch):
    monkeypatch.setattr(views, "ORDERS_PER_PAGE", 2)
    user = UserFactory()
    orders = [_placed_order(user=user) for _ in range(3)]
    client.force_login(user)

    first = client.get(reverse("orders:account-orders"))
    second = client.get(reverse("orders:account-orders"), {"page": "2"})
    bad = client.get(reverse("orders:account-orders"), {"page": "x"})

    numbers = [o.number for o in sorted(orders, key=lambda o: (o.placed_at, o.pk), reverse=True)]
    assert [o.number for o in first.context["page_obj"]] == numbers[:2]
    assert [o.number for o in second.context["page_obj"]] == numbers[2:]
    assert bad.context["page_obj"].number == 1
    assert 'href="?page=2"' in first.content.decode()


def test_customer_cancels_a_pending_order_and_gets_the_stock_back(client):
    order = _placed_order()
    line = order.lines.get()
    url = reverse("orders:order-cancel", args=[order.number, order.access_token])

    response = _post(client, url)
    again = _post(client, url)

    assert response["Location"] == order.get_absolute_url()
    assert _messages(response) == [f"Order {order.number} is cancelled."]
    assert _messages(again) == ["This order can no longer be cancelled here; contact us instead."]
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert ProductVariant.objects.get(pk=line.variant_id).stock == 10
    html = client.get(order.get_absolute_url()).content.decode()
    assert "Cancelled" in html and "Cancel order" not in html


def test_cancel_with_a_wrong_token_is_not_found_and_changes_nothing(client):
    order = _placed_order()

    response = client.post(reverse("orders:order-cancel", args=[order.number, "wrong"]))

    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == "pending_payment"


def _pay_view(request, number, token):  # pragma: no cover - only reversed, never called
    raise AssertionError


# The URLs with a payments app that offers "payments:start" (used by the test below).
urlpatterns = [
    path(
        "pay/",
        include(([path("<str:number>/<str:token>/", _pay_view, name="start")], "payments")),
    ),
    path("", include("shop.urls")),
]


@pytest.mark.urls(__name__)
def test_pay_now_appears_once_the_payments_app_offers_it(client):
    order = _placed_order()

    html = client.get(order.get_absolute_url()).content.decode()

    assert f'action="/pay/{order.number}/{order.access_token}/"' in html
    assert "Pay now · €14.95" in html


# --- Header -------------------------------------------------------------------------------------


def test_header_shows_the_number_of_items_in_the_cart(client):
    _add(client, _variant(name="A"), 2)
    _add(client, _variant(name="B"), 3)

    html = client.get("/").content.decode()

    assert '<span class="cart-count"><span class="visually-hidden">(</span>5' in html
    assert '5<span class="visually-hidden"> items)</span>' in html


def test_header_of_a_visitor_without_a_cart_costs_no_query(client, django_assert_num_queries):
    with django_assert_num_queries(1):  # the category tree of the navigation, nothing else
        html = client.get(reverse("orders:cart")).content.decode()
    assert 'class="cart-count"' not in html and "Your cart is empty." in html


def test_header_count_for_a_customer(client):
    user = UserFactory()
    cart = CartFactory(user=user)
    CartLineFactory(cart=cart, quantity=4)
    client.force_login(user)

    html = client.get("/search/").content.decode()

    assert '<span class="visually-hidden">(</span>4<span class="visually-hidden"> items)' in html


# --- Escaping -----------------------------------------------------------------------------------


def test_hostile_text_renders_as_text_on_every_order_page(client):
    variant = _variant(name=XSS, options={"size": XSS})
    method = ShippingMethodFactory(name=XSS, description=XSS)
    _add(client, variant, 1)
    client.post(
        reverse("orders:checkout"), _checkout_form(method, full_name=XSS, line1=XSS, city=XSS)
    )
    pages = [reverse("orders:cart"), reverse("orders:checkout"), reverse("orders:checkout-review")]
    htmls = [client.get(url).content.decode() for url in pages]
    _place(client, _place_fields(htmls[-1]))
    htmls.append(client.get(Order.objects.get().get_absolute_url()).content.decode())

    for url, html in zip([*pages, "order"], htmls, strict=True):
        assert XSS not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


# --- Query counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("lines", [2, 8])
def test_cart_page_query_count_does_not_grow(client, django_assert_num_queries, lines):
    for n in range(lines):
        variant = _variant(name=f"Item {n}")
        ProductImageFactory(product=variant.product)
        _add(client, variant, 1)

    with django_assert_num_queries(SESSION_QUERIES + CART_QUERIES):
        response = client.get(reverse("orders:cart"))

    assert len(response.context["rows"]) == lines


@pytest.mark.parametrize("lines", [1, 6])
def test_checkout_page_query_count_does_not_grow(client, django_assert_num_queries, lines):
    ShippingMethodFactory.create_batch(3)
    for n in range(lines):
        _add(client, _variant(name=f"Item {n}"), 1)

    with django_assert_num_queries(SESSION_QUERIES + CHECKOUT_GUEST_QUERIES):
        assert client.get(reverse("orders:checkout")).status_code == 200


def test_checkout_page_query_count_for_a_customer(client, django_assert_num_queries):
    user = UserFactory()
    for country, postal_code in [("DE", "10115"), ("FR", "75001"), ("AT", "1010")]:
        account_services.address_create(
            user=user, full_name="Ada", line1="X 1", city="C", postal_code=postal_code,
            country=country,
        )  # fmt: skip
    client.force_login(user)
    _add(client, _variant(), 1)

    with django_assert_num_queries(SESSION_QUERIES + CHECKOUT_CUSTOMER_QUERIES):
        assert client.get(reverse("orders:checkout")).status_code == 200


@pytest.mark.parametrize("lines", [1, 6])
def test_review_page_query_count_does_not_grow(client, django_assert_num_queries, lines):
    _ready_guest(client, quantity=1)
    for n in range(lines - 1):
        _add(client, _variant(name=f"Item {n}"), 1)

    with django_assert_num_queries(SESSION_QUERIES + REVIEW_QUERIES):
        response = client.get(reverse("orders:checkout-review"))

    assert len(response.context["quote"].lines) == lines


@pytest.mark.parametrize("lines", [1, 5])
def test_order_page_query_count_does_not_grow(client, django_assert_num_queries, lines):
    cart = CartFactory()
    for n in range(lines):
        CartLineFactory(cart=cart, variant=_variant(name=f"Item {n}"))
    cart = checkout_ready(cart)
    order = place(cart)

    with django_assert_num_queries(ORDER_QUERIES):
        assert client.get(order.get_absolute_url()).status_code == 200


def test_account_orders_query_count(client, django_assert_num_queries):
    user = UserFactory()
    for _ in range(3):
        _placed_order(user=user)
    client.force_login(user)

    with django_assert_num_queries(SESSION_QUERIES + ACCOUNT_ORDERS_QUERIES):
        response = client.get(reverse("orders:account-orders"))

    assert len(response.context["page_obj"]) == 3


def test_order_page_keeps_its_private_link_on_this_site_yet_its_forms_work_in_browsers(client):
    # A "no-referrer" policy would make browsers send `Origin: null` with the page's own forms
    # (pay, cancel), which Django's CSRF check refuses; "same-origin" keeps the private link from
    # other sites and lets the forms through.
    order = _placed_order()

    html = client.get(order.get_absolute_url()).content.decode()

    assert '<meta name="referrer" content="same-origin">' in html
    assert "no-referrer" not in html


def test_cancel_form_passes_the_csrf_origin_check_of_a_browser(client):
    from django.test import Client

    order = _placed_order()
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(order.get_absolute_url()).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]

    response = browser.post(
        reverse(
            "orders:order-cancel", kwargs={"number": order.number, "token": order.access_token}
        ),
        {"csrfmiddlewaretoken": token},
        HTTP_ORIGIN="http://testserver",
    )

    order.refresh_from_db()
    assert response.status_code == 302
    assert order.status == Order.Status.CANCELLED
