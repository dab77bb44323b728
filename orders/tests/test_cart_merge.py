"""Signing in (or signing up) keeps what the guest put in the cart: the session's cart is merged
into the customer's through the real allauth views."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.tests.factories import PASSWORD, UserFactory
from catalog.tests.factories import ProductFactory, ProductVariantFactory
from orders.models import Cart
from orders.tests.factories import CartFactory, CartLineFactory

pytestmark = pytest.mark.django_db


def _variant(name: str, *, stock: int = 10):
    return ProductVariantFactory(
        product=ProductFactory(name=name, variants=[]), price=Decimal("10.00"), stock=stock
    )


def _add(client, variant, quantity: int) -> None:
    response = client.post(
        reverse("orders:cart-add"), {"variant": variant.pk, "quantity": quantity}
    )
    assert response.status_code == 302


def _login(client, email: str, password: str = PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def _lines(cart: Cart) -> dict[str, int]:
    return {line.variant.product.name: line.quantity for line in cart.lines.all()}


def test_guest_cart_merges_into_the_customers_open_cart_on_login(client):
    user = UserFactory(email="ada@example.com")
    tent, mug = _variant("Tent"), _variant("Mug")
    own = CartFactory(user=user)
    CartLineFactory(cart=own, variant=tent, quantity=1)
    _add(client, tent, 2)
    _add(client, mug, 1)
    guest = Cart.objects.get(pk=client.session["cart_id"])

    response = _login(client, "ada@example.com")

    assert response.status_code == 302
    assert _lines(Cart.objects.get(pk=own.pk)) == {"Tent": 3, "Mug": 1}
    guest.refresh_from_db()
    assert guest.status == "merged"
    assert "cart_id" not in client.session
    assert Cart.objects.filter(user=user, status="open").count() == 1
    html = client.get(reverse("orders:cart")).content.decode()
    assert '<span class="visually-hidden">(</span>4<span class="visually-hidden"> items)' in html


def test_customer_without_a_cart_takes_over_the_guest_cart(client):
    user = UserFactory(email="ada@example.com")
    _add(client, _variant("Tent"), 2)
    guest_id = client.session["cart_id"]

    _login(client, "ADA@example.com")

    cart = Cart.objects.get(pk=guest_id)
    assert (cart.user, cart.status, cart.email) == (user, "open", "ada@example.com")
    assert _lines(cart) == {"Tent": 2}
    assert "cart_id" not in client.session


def test_merged_quantities_are_capped_by_the_stock(client):
    user = UserFactory(email="ada@example.com")
    tent = _variant("Tent", stock=3)
    own = CartFactory(user=user)
    CartLineFactory(cart=own, variant=tent, quantity=2)
    _add(client, tent, 2)

    _login(client, "ada@example.com")

    assert _lines(own) == {"Tent": 3}


def test_login_without_a_guest_cart_creates_no_cart(client):
    UserFactory(email="ada@example.com")

    assert _login(client, "ada@example.com").status_code == 302

    assert Cart.objects.count() == 0


def test_a_stale_cart_id_in_the_session_is_dropped_on_login(client):
    user = UserFactory(email="ada@example.com")
    _add(client, _variant("Tent"), 1)
    guest = Cart.objects.get(pk=client.session["cart_id"])
    Cart.objects.filter(pk=guest.pk).update(status="ordered")

    assert _login(client, "ada@example.com").status_code == 302

    assert "cart_id" not in client.session
    guest.refresh_from_db()
    assert (guest.user, guest.status) == (None, "ordered")
    assert not Cart.objects.filter(user=user).exists()


def test_another_customers_cart_id_in_the_session_is_never_merged(client):
    UserFactory(email="ada@example.com")
    theirs = CartFactory(user=UserFactory())
    CartLineFactory(cart=theirs, quantity=1)
    session = client.session
    session["cart_id"] = theirs.pk
    session.save()

    _login(client, "ada@example.com")

    theirs.refresh_from_db()
    assert theirs.status == "open" and theirs.lines.count() == 1
    assert Cart.objects.filter(user__email="ada@example.com").count() == 0


def test_a_failed_login_keeps_the_guest_cart(client):
    UserFactory(email="ada@example.com")
    _add(client, _variant("Tent"), 1)
    guest_id = client.session["cart_id"]

    response = _login(client, "ada@example.com", "wrong-password")

    assert response.status_code == 200
    assert client.session["cart_id"] == guest_id
    assert Cart.objects.get(pk=guest_id).status == "open"


def test_signing_up_keeps_the_guest_cart(client):
    _add(client, _variant("Tent"), 2)
    guest_id = client.session["cart_id"]

    response = client.post(
        reverse("account_signup"),
        {
            "email": "new@example.com",
            "password1": "a-fresh-pass-99",
            "password2": "a-fresh-pass-99",
        },
    )

    assert response.status_code == 302
    cart = Cart.objects.get(pk=guest_id)
    assert cart.user.email == "new@example.com"
    assert _lines(cart) == {"Tent": 2}
