from decimal import Decimal

import factory

from orders.models import Cart, CartLine, ShippingMethod, TaxRate, Voucher

ADDRESS = {
    "full_name": "Ada Customer",
    "line1": "Hauptstraße 1",
    "line2": "",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "phone": "",
}


class ShippingMethodFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ShippingMethod

    name = factory.Sequence(lambda n: f"Standard {n}")
    price = Decimal("4.95")
    free_above = None


class TaxRateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaxRate
        django_get_or_create = ("country",)

    country = "DE"
    rate = Decimal("19.00")


class VoucherFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Voucher

    code = factory.Sequence(lambda n: f"SAVE{n}")
    kind = Voucher.Kind.PERCENTAGE
    value = Decimal("10.00")


class CartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cart

    email = factory.Sequence(lambda n: f"shopper{n}@example.com")


class CartLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CartLine

    cart = factory.SubFactory(CartFactory)
    variant = factory.SubFactory("catalog.tests.factories.ProductVariantFactory")
    quantity = 1
    unit_price_seen = factory.LazyAttribute(lambda line: line.variant.price)


def checkout_ready(cart: Cart, *, shipping_method=None, voucher_code: str = "", address=None):
    """Save complete checkout details on the cart (as the checkout form would) and return it."""
    from orders.services import cart_checkout_save

    method = shipping_method or ShippingMethodFactory()
    return cart_checkout_save(
        cart=cart,
        email=cart.email or "shopper@example.com",
        data={
            "address": dict(address or ADDRESS),
            "shipping_method_id": method.pk,
            "voucher_code": voucher_code,
        },
    )


def place(cart: Cart, *, user=None):
    """Review and place the cart's order, as the review page's form would."""
    from orders import selectors, services

    quote = selectors.checkout_quote(cart=cart, email=cart.email, user=user)
    return services.order_place(
        cart=cart, checkout_token=cart.checkout_token, fingerprint=quote.fingerprint, user=user
    )
