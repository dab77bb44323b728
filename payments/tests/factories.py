from decimal import Decimal

import factory

from orders.models import Order
from orders.tests.factories import CartFactory, CartLineFactory, checkout_ready, place
from payments.models import Payment


def order_placed(*, price: str = "10.00", quantity: int = 1, email: str = "") -> Order:
    """Place a guest order for one line (shipping 4.95 on top): it awaits payment."""
    cart = CartFactory(**({"email": email} if email else {}))
    CartLineFactory(cart=cart, variant__price=Decimal(price), quantity=quantity)
    return place(checkout_ready(cart))


class PaymentFactory(factory.django.DjangoModelFactory):
    """A test-provider payment of an order's total, started (it has its reference)."""

    class Meta:
        model = Payment

    order = factory.LazyFunction(order_placed)
    provider = "test"
    amount = factory.LazyAttribute(lambda payment: payment.order.total)
    currency = factory.LazyAttribute(lambda payment: payment.order.currency)
    provider_reference = factory.Sequence(lambda n: f"test_reference_{n:05d}")


def signed_event(payment: Payment, event_type: str, **kwargs) -> tuple[bytes, dict]:
    """Return the body and headers of a test-provider event about `payment`, signed as the test
    provider signs them (see TestProvider.event_build for the keyword arguments)."""
    from payments.providers.test import TestProvider

    return TestProvider().event_build(payment=payment, event_type=event_type, **kwargs)
