"""The interface every payment provider implements, and the registry that picks them.

A provider turns a Payment into something the customer can pay (`start`), turns a webhook
request into a verified `ProviderEvent` (`parse_webhook`), refunds (`refund`) and reports a
payment's state (`fetch`). Providers talk to the outside world only; they never touch the
database: services call them outside transactions and apply the results in short ones.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from payments.exceptions import ProviderError  # noqa: F401 - re-exported for providers


@dataclass(frozen=True)
class StartResult:
    """Where the customer goes next: a URL to redirect to, or a client secret for the page's
    own payment form (Stripe's Payment Element)."""

    provider_reference: str
    redirect_url: str = ""
    client_secret: str = ""


@dataclass(frozen=True)
class ProviderEvent:
    """A verified provider event, reduced to what the shop acts on."""

    event_id: str
    event_type: str
    payload: dict
    # The provider's payment reference the event is about ("" when it is about none).
    payment_reference: str = ""
    # For payment events: the amount the provider says was received (in the currency below).
    amount: Decimal | None = None
    currency: str = ""
    # For refund events: the total refunded so far on the payment.
    amount_refunded: Decimal | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentState:
    """What the provider says a payment is, when asked (reconciliation)."""

    status: str  # one of Payment.Status values
    amount_received: Decimal
    amount_refunded: Decimal


class Provider:
    """Base class; see payments/providers/test.py and stripe.py."""

    name: str = ""
    label: str = ""

    def is_configured(self) -> bool:
        return True

    def start(self, *, payment, return_url: str) -> StartResult:
        raise NotImplementedError

    def parse_webhook(self, *, body: bytes, headers: dict) -> ProviderEvent:
        """Verify the request's signature and parse it; raise SignatureInvalid if it is forged,
        tampered or stale."""
        raise NotImplementedError

    def refund(self, *, payment, amount: Decimal, reason: str, idempotency_key: str) -> str:
        """Refund `amount` of the payment; return the provider's refund reference."""
        raise NotImplementedError

    def fetch(self, *, payment) -> PaymentState:
        raise NotImplementedError
