"""Stripe: one PaymentIntent per payment, confirmed in the browser by the Payment Element.

Every call builds its own `stripe.StripeClient` from settings (STRIPE_API_BASE points it at
localstripe in the tests), so nothing is kept in the `stripe` module's global configuration and
no state leaks between requests or tests. Calls time out quickly and are retried twice by the
library on network errors; Stripe honours the idempotency keys we send on the retries.

Amounts cross this edge as integer minor units (`shop.money`); everything the provider returns
is a `Decimal` in the payment's currency, upper-case as the shop stores it.
"""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal

import requests
import stripe
from django.conf import settings

from payments.exceptions import ProviderError, SignatureInvalid
from payments.providers.base import PaymentState, Provider, ProviderEvent, StartResult
from shop.money import from_minor_units, to_minor_units

# (connect, read) seconds: a customer waits on `start`, a person on `refund`; fail fast instead.
TIMEOUT = (5, 20)
MAX_NETWORK_RETRIES = 2

PAYMENT_INTENT_EVENTS = {
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
}
CHARGE_REFUNDED = "charge.refunded"


@contextmanager
def stripe_client() -> Iterator[stripe.StripeClient]:
    """Yield a client configured from settings, closing its connections afterwards."""
    with requests.Session() as session:
        yield stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=TIMEOUT, session=session),
        )


def _error_message(exc: stripe.StripeError) -> str:
    return exc.user_message or str(exc) or exc.__class__.__name__


def _header(headers: Mapping, name: str) -> str:
    """Read a header from Django's case-insensitive `request.headers` or a plain dict."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value or ""


def _amount_received(intent: dict) -> int:
    """Return the minor units a PaymentIntent received.

    Stripe always sends `amount_received`; localstripe leaves it out, and there a succeeded
    intent has received its whole amount (it has no partial capture to report).
    """
    if intent.get("amount_received") is not None:
        return intent["amount_received"]
    return intent["amount"] if intent.get("status") == "succeeded" else 0


def _amount_refunded(intent: dict) -> int:
    """Return the minor units refunded on the intent's latest charge (0 if it has none)."""
    charge = intent.get("latest_charge")
    return charge.get("amount_refunded", 0) if isinstance(charge, dict) else 0


def intent_status(intent: dict) -> str:
    """Map a PaymentIntent's status to a `Payment.Status` value.

    succeeded -> succeeded; canceled -> canceled; `requires_payment_method` with a
    `last_payment_error` means an attempt was declined -> failed (the customer may still try
    another card on the same intent, and its success event would then move the payment on);
    anything else (`requires_*`, `processing`) -> pending.
    """
    status = intent.get("status")
    if status == "succeeded":
        return "succeeded"
    if status == "canceled":
        return "canceled"
    if status == "requires_payment_method" and intent.get("last_payment_error"):
        return "failed"
    return "pending"


class StripeProvider(Provider):
    name = "stripe"
    label = "Card (Stripe)"

    def is_configured(self) -> bool:
        # All three: without the publishable key no card form, without the webhook secret every
        # event would be refused.
        return bool(
            settings.STRIPE_SECRET_KEY
            and settings.STRIPE_PUBLISHABLE_KEY
            and settings.STRIPE_WEBHOOK_SECRET
        )

    def start(self, *, payment, return_url: str) -> StartResult:
        """Create the payment's PaymentIntent, or reuse the one it already has.

        The idempotency key is the payment's id, so a retried request (ours or the library's)
        gets the same intent back instead of a second one. `return_url` is used by the page's
        `confirmPayment`, not here.
        """
        try:
            with stripe_client() as client:
                if payment.provider_reference:
                    intent = client.v1.payment_intents.retrieve(payment.provider_reference)
                else:
                    intent = client.v1.payment_intents.create(
                        params={
                            "amount": to_minor_units(payment.amount, payment.currency),
                            "currency": payment.currency.lower(),
                            # localstripe rejects automatic_payment_methods; cards are what
                            # the Payment Element shows either way.
                            "payment_method_types": ["card"],
                            "metadata": {
                                "order_number": payment.order.number,
                                "payment_id": str(payment.pk),
                            },
                        },
                        options={"idempotency_key": f"payment-{payment.pk}-{payment.order.number}"},
                    )
        except stripe.StripeError as exc:
            raise ProviderError(
                f"Stripe could not start the payment: {_error_message(exc)}"
            ) from exc
        if intent.status == "canceled":
            raise ProviderError("This payment was cancelled at Stripe; start a new one.")
        return StartResult(provider_reference=intent.id, client_secret=intent.client_secret)

    def parse_webhook(self, *, body: bytes, headers: Mapping) -> ProviderEvent:
        signature = _header(headers, "Stripe-Signature")
        if not signature:
            raise SignatureInvalid("The request has no Stripe-Signature header.")
        try:
            # Verifies the HMAC and the timestamp's age, and that the body is a Stripe event.
            stripe.Webhook.construct_event(
                body,
                signature,
                settings.STRIPE_WEBHOOK_SECRET,
                tolerance=settings.STRIPE_WEBHOOK_TOLERANCE,
                api_key=settings.STRIPE_SECRET_KEY,
            )
        except stripe.SignatureVerificationError as exc:
            raise SignatureInvalid(f"Stripe signature rejected: {exc.user_message}") from exc
        except (ValueError, AttributeError) as exc:  # not UTF-8, not JSON, not a JSON object
            raise SignatureInvalid(f"Not a Stripe event: {exc}") from exc
        # The verified body as plain JSON (what the shop stores), rather than Stripe objects.
        payload = json.loads(body)
        if not payload.get("id") or not payload.get("type"):
            raise SignatureInvalid("Not a Stripe event: it has no id or type.")
        return event_from_payload(payload)

    def refund(self, *, payment, amount: Decimal, reason: str, idempotency_key: str) -> str:
        if not payment.provider_reference:
            raise ProviderError("This payment has no Stripe PaymentIntent to refund.")
        try:
            with stripe_client() as client:
                refund = client.v1.refunds.create(
                    params={
                        "payment_intent": payment.provider_reference,
                        "amount": to_minor_units(amount, payment.currency),
                        # Stripe's own `reason` is an enum; ours is free text for people.
                        "metadata": {"payment_id": str(payment.pk), "reason": reason[:500]},
                    },
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe refused the refund: {_error_message(exc)}") from exc
        if refund.status in {"failed", "canceled"}:
            raise ProviderError(f"Stripe could not refund the payment (refund {refund.status}).")
        return refund.id

    def fetch(self, *, payment) -> PaymentState:
        if not payment.provider_reference:
            raise ProviderError("This payment has no Stripe PaymentIntent yet.")
        try:
            with stripe_client() as client:
                intent = client.v1.payment_intents.retrieve(
                    payment.provider_reference, params={"expand": ["latest_charge"]}
                ).to_dict()
        except stripe.StripeError as exc:
            raise ProviderError(f"Stripe could not be asked: {_error_message(exc)}") from exc
        currency = intent["currency"]
        return PaymentState(
            status=intent_status(intent),
            amount_received=from_minor_units(_amount_received(intent), currency),
            amount_refunded=from_minor_units(_amount_refunded(intent), currency),
        )


def event_from_payload(payload: dict) -> ProviderEvent:
    """Reduce a verified Stripe event to what the shop acts on.

    PaymentIntent events carry the intent's id and, when it succeeded, the amount received;
    `charge.refunded` carries the charge's intent and the total refunded so far. Any other
    event comes back without a payment reference, for the service to ignore.
    """
    event_type = payload["type"]
    event = {"event_id": payload["id"], "event_type": event_type, "payload": payload}
    obj = (payload.get("data") or {}).get("object") or {}
    if event_type in PAYMENT_INTENT_EVENTS:
        currency = obj["currency"]
        error = obj.get("last_payment_error") or {}
        return ProviderEvent(
            **event,
            payment_reference=obj["id"],
            amount=(
                from_minor_units(_amount_received(obj), currency)
                if event_type == "payment_intent.succeeded"
                else None
            ),
            currency=currency.upper(),
            extra={
                "status": obj.get("status", ""),
                "metadata": obj.get("metadata") or {},
                "error": error.get("message", ""),
            },
        )
    if event_type == CHARGE_REFUNDED and obj.get("payment_intent"):
        currency = obj["currency"]
        return ProviderEvent(
            **event,
            payment_reference=obj["payment_intent"],
            currency=currency.upper(),
            amount_refunded=from_minor_units(obj["amount_refunded"], currency),
            extra={"charge": obj.get("id", ""), "metadata": obj.get("metadata") or {}},
        )
    return ProviderEvent(**event)
