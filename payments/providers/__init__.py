"""The registry of payment providers: which are switched on, and the one a payment names.

A provider is offered when its settings switch it on: the built-in test provider while
PAYMENTS_TEST_PROVIDER is on, Stripe when STRIPE_SECRET_KEY is set. Provider modules are imported
only when asked for, so a missing or broken one makes that provider unavailable, not the shop.

The event types below are the vocabulary the services act on. They are Stripe's names; every
other provider (the test provider included) reports its events under the same names.
"""

import logging
from importlib import import_module

from django.conf import settings

from payments.exceptions import ProviderUnavailable
from payments.providers.base import PaymentState, Provider, ProviderEvent, StartResult

logger = logging.getLogger(__name__)

__all__ = [
    "EventType",
    "PaymentState",
    "Provider",
    "ProviderEvent",
    "StartResult",
    "provider_get",
    "providers_enabled",
]


class EventType:
    PAYMENT_SUCCEEDED = "payment_intent.succeeded"
    PAYMENT_FAILED = "payment_intent.payment_failed"
    PAYMENT_CANCELED = "payment_intent.canceled"
    # Carries the provider's total refunded so far on the payment (ProviderEvent.amount_refunded).
    CHARGE_REFUNDED = "charge.refunded"


# name -> (module, class); the order is the order customers are offered them in.
_PROVIDERS = {
    "stripe": ("payments.providers.stripe", "StripeProvider"),
    "test": ("payments.providers.test", "TestProvider"),
}


def _switched_on(name: str) -> bool:
    if name == "test":
        return bool(settings.PAYMENTS_TEST_PROVIDER)
    if name == "stripe":
        return bool(settings.STRIPE_SECRET_KEY)
    return False


def provider_get(name: str) -> Provider:
    """Return the provider called `name`; raise ProviderUnavailable if it is unknown, switched
    off or not configured."""
    if name not in _PROVIDERS or not _switched_on(name):
        raise ProviderUnavailable(f"The payment provider {name!r} is not available.")
    module_name, class_name = _PROVIDERS[name]
    try:
        provider_class = getattr(import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        logger.warning("Payment provider %s cannot be loaded: %s", name, exc)
        raise ProviderUnavailable(f"The payment provider {name!r} is not available.") from exc
    provider = provider_class()
    if not provider.is_configured():
        raise ProviderUnavailable(f"The payment provider {name!r} is not configured.")
    return provider


def providers_enabled() -> list[Provider]:
    """Return the providers a customer can pay with now, in the order they are offered."""
    enabled = []
    for name in _PROVIDERS:
        try:
            enabled.append(provider_get(name))
        except ProviderUnavailable:
            continue
    return enabled
