"""The built-in test provider: a "test payment" page on this site, no network, no money.

The page (`payments:test-page`) lets a tester pay, decline or leave a payment for later. It builds
the event a real provider would send, signs it as one would (HMAC-SHA256 over
"<timestamp>.<body>", header `X-Test-Signature: t=<timestamp>,v1=<hex digest>`) and hands it to
the same pipeline as a real webhook: verification, storage, the task. It never marks an order paid
itself. Switched on by PAYMENTS_TEST_PROVIDER (never in production: it lets anyone pay with
nothing).

Events are JSON: {"id": ..., "type": <an EventType>, "created": <unix time>, "data": {"reference":
..., "amount": "12.50", "currency": "EUR", "amount_refunded": "5.00" (refund events)}}.
"""

import hashlib
import hmac
import json
import secrets
import time
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

from payments.exceptions import SignatureInvalid
from payments.providers.base import PaymentState, Provider, ProviderEvent, StartResult
from shop.money import MoneyError, money_round

SIGNATURE_HEADER = "X-Test-Signature"
_SECRET_SALT = "payments.providers.test.webhook-secret"
_REFERENCE_SALT = "payments.providers.test.reference"


def webhook_secret() -> str:
    """Return the secret the test provider signs its events with (derived from SECRET_KEY unless
    PAYMENTS_TEST_WEBHOOK_SECRET is set)."""
    if settings.PAYMENTS_TEST_WEBHOOK_SECRET:
        return settings.PAYMENTS_TEST_WEBHOOK_SECRET
    return salted_hmac(_SECRET_SALT, "webhook", algorithm="sha256").hexdigest()


def signature_header(body: bytes, *, timestamp: int | None = None, secret: str = "") -> str:
    """Return the X-Test-Signature value for `body` (now, with the test secret, by default)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = _digest(body, timestamp=timestamp, secret=secret or webhook_secret())
    return f"t={timestamp},v1={digest}"


def _digest(body: bytes, *, timestamp: int, secret: str) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _header(headers, name: str) -> str:
    """Find a header whatever its case (Django's request.headers, or a plain dict)."""
    wanted = name.lower()
    return next((str(value) for key, value in headers.items() if key.lower() == wanted), "")


def _amount(value, currency: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return money_round(Decimal(str(value)), currency or "EUR")
    except (InvalidOperation, MoneyError, ValueError) as exc:
        raise SignatureInvalid(f"The event's amount {value!r} is not an amount.") from exc


class TestProvider(Provider):
    __test__ = False  # not a pytest test class, whatever its name says

    name = "test"
    label = "Test payment (no real money)"

    def start(self, *, payment, return_url: str) -> StartResult:
        # The same payment always gets the same unguessable reference: two starts at once agree.
        reference = payment.provider_reference or self.reference_for(payment)
        return StartResult(
            provider_reference=reference,
            redirect_url=reverse("payments:test-page", kwargs={"reference": reference}),
        )

    def reference_for(self, payment) -> str:
        digest = salted_hmac(
            _REFERENCE_SALT, str(payment.pk), secret=webhook_secret(), algorithm="sha256"
        ).hexdigest()
        return f"test_{digest[:24]}"

    def event_build(
        self,
        *,
        payment,
        event_type: str,
        amount: Decimal | None = None,
        currency: str = "",
        amount_refunded: Decimal | None = None,
        event_id: str = "",
        timestamp: int | None = None,
        secret: str = "",
    ) -> tuple[bytes, dict]:
        """Return the body and headers of a signed event about `payment` (what the test page
        posts, and what tests send): the payment's own amount and currency unless given."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        data = {
            "reference": payment.provider_reference,
            "amount": str(payment.amount if amount is None else amount),
            "currency": currency or payment.currency,
        }
        if amount_refunded is not None:
            data["amount_refunded"] = str(amount_refunded)
        event = {
            "id": event_id or f"evt_test_{secrets.token_hex(12)}",
            "type": event_type,
            "created": timestamp,
            "data": data,
        }
        body = json.dumps(event).encode()
        header = signature_header(body, timestamp=timestamp, secret=secret)
        return body, {SIGNATURE_HEADER: header}

    def parse_webhook(self, *, body: bytes, headers: dict) -> ProviderEvent:
        header = _header(headers, SIGNATURE_HEADER)
        if not header:
            raise SignatureInvalid(f"The {SIGNATURE_HEADER} header is missing.")
        fields = dict(
            part.strip().split("=", 1) for part in header.split(",") if "=" in part
        )  # fmt: skip
        try:
            timestamp = int(fields.get("t", ""))
        except ValueError:
            raise SignatureInvalid("The signature has no valid timestamp.") from None
        expected = _digest(body, timestamp=timestamp, secret=webhook_secret())
        given = fields.get("v1", "").encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(expected.encode(), given):
            raise SignatureInvalid("The signature does not match the body.")
        if abs(time.time() - timestamp) > settings.PAYMENTS_WEBHOOK_TOLERANCE:
            raise SignatureInvalid("The signature is too old (or from the future).")
        try:
            event = json.loads(body)
        except ValueError:
            raise SignatureInvalid("The event is not valid JSON.") from None
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            raise SignatureInvalid("The event has no data.")
        event_id, event_type = event.get("id"), event.get("type")
        if not isinstance(event_id, str) or not event_id or len(event_id) > 100:
            raise SignatureInvalid("The event has no valid id.")
        if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
            raise SignatureInvalid("The event has no valid type.")
        reference = data.get("reference") or ""
        currency = data.get("currency") or ""
        if not isinstance(reference, str) or len(reference) > 100:
            raise SignatureInvalid("The event's payment reference is not valid.")
        if not isinstance(currency, str) or len(currency) > 3:
            raise SignatureInvalid("The event's currency is not valid.")
        return ProviderEvent(
            event_id=event_id,
            event_type=event_type,
            payload=event,
            payment_reference=reference,
            amount=_amount(data.get("amount"), currency),
            currency=currency.upper(),
            amount_refunded=_amount(data.get("amount_refunded"), currency),
        )

    def refund(self, *, payment, amount: Decimal, reason: str, idempotency_key: str) -> str:
        # Like a real provider: the same idempotency key gives the same refund.
        return "test_re_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]

    def fetch(self, *, payment) -> PaymentState:
        # The test provider keeps no state of its own: what the shop knows is all there is.
        return PaymentState(
            status=payment.status,
            amount_received=payment.amount_received,
            amount_refunded=payment.amount_refunded,
        )
