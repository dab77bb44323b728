"""The Stripe provider against a real localstripe (see the `localstripe` fixture in conftest.py).

Payments here are unsaved model instances: the provider never touches the database.
"""

import hashlib
import hmac
import itertools
import json
import time
from decimal import Decimal

import pytest
import requests
import stripe

from orders.models import Order
from payments.exceptions import ProviderError, SignatureInvalid
from payments.models import Payment
from payments.providers.base import PaymentState, ProviderEvent
from payments.providers.stripe import StripeProvider, stripe_client

_ids = itertools.count(1)


def _payment(*, amount: str = "123.45", currency: str = "EUR", reference: str = "") -> Payment:
    payment_id = next(_ids)
    order = Order(number=f"N{payment_id:05d}", currency=currency)
    return Payment(
        pk=payment_id, order=order, provider="stripe", amount=Decimal(amount),
        currency=currency, provider_reference=reference,
    )  # fmt: skip


def _started(payment: Payment) -> Payment:
    payment.provider_reference = (
        StripeProvider()
        .start(payment=payment, return_url="http://shop.test/payments/return/")
        .provider_reference
    )
    return payment


def _confirm(reference: str, payment_method: str = "pm_card_visa"):
    """Pay the intent at localstripe as the Payment Element would (localstripe's confirm takes
    no payment method, so it is attached first)."""
    with stripe_client() as client:
        client.v1.payment_intents.update(reference, params={"payment_method": payment_method})
        return client.v1.payment_intents.confirm(reference)


def _intents(base_url: str) -> list[dict]:
    answer = requests.get(f"{base_url}/v1/payment_intents", auth=("sk_test_12345", ""), timeout=5)
    answer.raise_for_status()
    return answer.json()["data"]


def _signed(body: bytes, *, secret: str = "whsec_test", timestamp: int | None = None) -> dict:
    """Headers as Stripe signs a webhook: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<body>")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


def _event(event_type: str, obj: dict, event_id: str = "evt_1") -> bytes:
    payload = {
        "id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
        "api_version": "2017-08-15", "livemode": False, "data": {"object": obj},
    }  # fmt: skip
    return json.dumps(payload).encode()


def _intent(status: str, **fields) -> dict:
    return {
        "id": "pi_123", "object": "payment_intent", "amount": 12345, "currency": "eur",
        "status": status, "metadata": {"order_number": "N00001", "payment_id": "1"}, **fields,
    }  # fmt: skip


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing", ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"]
)
def test_stripe_is_configured_only_with_all_three_keys(settings, missing):
    settings.STRIPE_SECRET_KEY = "sk_test_12345"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    assert StripeProvider().is_configured() is True

    setattr(settings, missing, "")
    assert StripeProvider().is_configured() is False


# --- start ---------------------------------------------------------------------------------------


def test_start_creates_one_payment_intent_in_minor_units_with_the_order_in_its_metadata(
    localstripe,
):
    payment = _payment(amount="123.45", currency="EUR")

    result = StripeProvider().start(payment=payment, return_url="http://shop.test/return/")

    [intent] = _intents(localstripe)
    assert result.provider_reference == intent["id"]
    assert result.provider_reference.startswith("pi_")
    assert result.client_secret == intent["client_secret"]
    assert result.redirect_url == ""
    assert intent["amount"] == 12345
    assert intent["currency"] == "eur"
    assert intent["metadata"] == {
        "order_number": payment.order.number,
        "payment_id": str(payment.pk),
    }
    assert intent["status"] == "requires_payment_method"


def test_start_sends_a_zero_decimal_currency_in_whole_units(localstripe):
    payment = _payment(amount="1500", currency="JPY")

    StripeProvider().start(payment=payment, return_url="http://shop.test/return/")

    [intent] = _intents(localstripe)
    assert (intent["amount"], intent["currency"]) == (1500, "jpy")


def test_starting_again_reuses_the_payment_intent(localstripe):
    payment = _payment()
    first = StripeProvider().start(payment=payment, return_url="http://shop.test/return/")
    payment.provider_reference = first.provider_reference

    second = StripeProvider().start(payment=payment, return_url="http://shop.test/return/")

    assert second == first
    assert [intent["id"] for intent in _intents(localstripe)] == [first.provider_reference]


def test_starting_a_payment_whose_intent_was_cancelled_is_refused(localstripe):
    payment = _started(_payment())
    with stripe_client() as client:
        client.v1.payment_intents.cancel(payment.provider_reference)

    with pytest.raises(ProviderError, match="cancelled at Stripe"):
        StripeProvider().start(payment=payment, return_url="http://shop.test/return/")

    assert len(_intents(localstripe)) == 1


def test_an_unreachable_stripe_is_a_provider_error(localstripe, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # the discard port: nothing listens

    with pytest.raises(ProviderError, match="Stripe could not start the payment"):
        StripeProvider().start(payment=_payment(), return_url="http://shop.test/return/")


def test_a_refused_request_is_a_provider_error_with_stripes_message(localstripe):
    payment = _payment(reference="pi_doesnotexist")

    with pytest.raises(ProviderError, match="Not Found"):
        StripeProvider().start(payment=payment, return_url="http://shop.test/return/")


# --- parse_webhook -------------------------------------------------------------------------------


def test_a_signed_payment_succeeded_event_is_mapped(localstripe):
    body = _event("payment_intent.succeeded", _intent("succeeded", amount_received=12345))

    event = StripeProvider().parse_webhook(body=body, headers=_signed(body))

    assert event == ProviderEvent(
        event_id="evt_1",
        event_type="payment_intent.succeeded",
        payload=json.loads(body),
        payment_reference="pi_123",
        amount=Decimal("123.45"),
        currency="EUR",
        extra={
            "status": "succeeded",
            "metadata": {"order_number": "N00001", "payment_id": "1"},
            "error": "",
        },
    )


def test_a_succeeded_intent_without_amount_received_counts_its_whole_amount(localstripe):
    # localstripe sends no amount_received; Stripe always does.
    body = _event("payment_intent.succeeded", _intent("succeeded"))

    event = StripeProvider().parse_webhook(body=body, headers=_signed(body))

    assert (event.amount, event.currency) == (Decimal("123.45"), "EUR")


def test_a_failed_payment_event_carries_the_reference_and_the_error_but_no_amount(localstripe):
    failure = {"code": "card_declined", "message": "Your card was declined."}
    body = _event("payment_intent.payment_failed", _intent("requires_payment_method",
                  amount_received=0, last_payment_error=failure))  # fmt: skip

    event = StripeProvider().parse_webhook(body=body, headers=_signed(body))

    assert (event.event_type, event.payment_reference, event.amount, event.currency) == (
        "payment_intent.payment_failed", "pi_123", None, "EUR",
    )  # fmt: skip
    assert event.extra["error"] == "Your card was declined."


def test_a_canceled_event_carries_the_reference(localstripe):
    body = _event("payment_intent.canceled", _intent("canceled", amount_received=0))

    event = StripeProvider().parse_webhook(body=body, headers=_signed(body))

    assert (event.event_type, event.payment_reference, event.amount) == (
        "payment_intent.canceled", "pi_123", None,
    )  # fmt: skip


def test_a_charge_refunded_event_carries_the_intent_and_the_total_refunded(localstripe):
    charge = {
        "id": "ch_1", "object": "charge", "amount": 12345, "amount_refunded": 5000,
        "currency": "eur", "payment_intent": "pi_123", "refunded": False, "metadata": {},
    }  # fmt: skip
    body = _event("charge.refunded", charge)

    event = StripeProvider().parse_webhook(body=body, headers=_signed(body))

    assert (event.payment_reference, event.amount_refunded, event.currency, event.amount) == (
        "pi_123", Decimal("50.00"), "EUR", None,
    )  # fmt: skip


@pytest.mark.parametrize(
    "event_type, obj",
    [
        ("customer.created", {"id": "cus_1", "object": "customer"}),
        ("charge.refunded", {"id": "ch_1", "object": "charge", "amount_refunded": 100,
                             "currency": "eur", "payment_intent": None}),
    ],
)  # fmt: skip
def test_an_event_about_no_payment_has_no_reference(localstripe, event_type, obj):
    body = _event(event_type, obj)

    event = StripeProvider().parse_webhook(body=body, headers=_signed(body))

    assert (event.event_id, event.event_type, event.payment_reference) == ("evt_1", event_type, "")
    assert event.payload == json.loads(body)


def test_the_signature_header_is_found_whatever_its_case(localstripe):
    body = _event("payment_intent.succeeded", _intent("succeeded", amount_received=12345))
    headers = {"stripe-signature": _signed(body)["Stripe-Signature"]}

    event = StripeProvider().parse_webhook(body=body, headers=headers)

    assert event.payment_reference == "pi_123"


def _forged(case: str) -> tuple[bytes, dict]:
    body = _event("payment_intent.succeeded", _intent("succeeded", amount_received=12345))
    if case == "tampered body":
        return body.replace(b"12345", b"99999"), _signed(body)
    if case == "wrong secret":
        return body, _signed(body, secret="whsec_other")
    if case == "missing header":
        return body, {}
    if case == "empty header":
        return body, {"Stripe-Signature": ""}
    if case == "stale timestamp":
        return body, _signed(body, timestamp=int(time.time()) - 301)
    if case == "malformed header":
        return body, {"Stripe-Signature": "not-a-signature"}
    if case == "other scheme only":
        return body, {"Stripe-Signature": _signed(body)["Stripe-Signature"].replace("v1=", "v0=")}
    if case == "signed non-JSON":
        return b"not json", _signed(b"not json")
    if case == "signed non-event JSON":
        return b"[1, 2]", _signed(b"[1, 2]")
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "tampered body", "wrong secret", "missing header", "empty header", "stale timestamp",
        "malformed header", "other scheme only", "signed non-JSON", "signed non-event JSON",
    ],
)  # fmt: skip
def test_a_forged_tampered_or_stale_webhook_is_refused(localstripe, case):
    body, headers = _forged(case)

    with pytest.raises(SignatureInvalid):
        StripeProvider().parse_webhook(body=body, headers=headers)


def test_a_webhook_just_inside_the_tolerance_is_accepted(localstripe, settings):
    settings.STRIPE_WEBHOOK_TOLERANCE = 60
    body = _event("payment_intent.succeeded", _intent("succeeded", amount_received=12345))

    event = StripeProvider().parse_webhook(
        body=body, headers=_signed(body, timestamp=int(time.time()) - 50)
    )

    assert event.payment_reference == "pi_123"


def test_no_webhook_is_accepted_without_a_webhook_secret(localstripe, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    body = _event("payment_intent.succeeded", _intent("succeeded", amount_received=12345))

    with pytest.raises(SignatureInvalid):
        StripeProvider().parse_webhook(body=body, headers=_signed(body, secret=""))


# --- refund --------------------------------------------------------------------------------------


def test_a_refund_of_a_paid_intent_returns_its_id_and_shows_on_the_charge(localstripe):
    payment = _started(_payment(amount="123.45"))
    charge_id = _confirm(payment.provider_reference).latest_charge.id

    refund_id = StripeProvider().refund(
        payment=payment, amount=Decimal("50.00"), reason="Damaged in transit",
        idempotency_key="refund-1",
    )  # fmt: skip

    assert refund_id.startswith("re_")
    with stripe_client() as client:
        refund = client.v1.refunds.retrieve(refund_id)
        charge = client.v1.charges.retrieve(charge_id)
    assert (refund.amount, refund.payment_intent) == (5000, payment.provider_reference)
    assert refund.metadata.to_dict() == {
        "payment_id": str(payment.pk),
        "reason": "Damaged in transit",
    }
    assert charge.amount_refunded == 5000


def test_a_refund_stripe_refuses_is_a_provider_error_with_its_message(localstripe):
    payment = _started(_payment())  # never paid

    with pytest.raises(ProviderError, match="Stripe refused the refund: .*"):
        StripeProvider().refund(
            payment=payment, amount=Decimal("1.00"), reason="x", idempotency_key="refund-2"
        )


def test_a_payment_without_an_intent_cannot_be_refunded(localstripe):
    with pytest.raises(ProviderError, match="no Stripe PaymentIntent"):
        StripeProvider().refund(
            payment=_payment(), amount=Decimal("1.00"), reason="x", idempotency_key="refund-3"
        )


# --- fetch ---------------------------------------------------------------------------------------


def test_fetch_reports_an_unpaid_intent_as_pending(localstripe):
    payment = _started(_payment())

    assert StripeProvider().fetch(payment=payment) == PaymentState(
        status="pending", amount_received=Decimal("0.00"), amount_refunded=Decimal("0.00")
    )


def test_fetch_reports_a_paid_then_partly_refunded_intent(localstripe):
    payment = _started(_payment(amount="123.45"))
    _confirm(payment.provider_reference)
    assert StripeProvider().fetch(payment=payment) == PaymentState(
        status="succeeded", amount_received=Decimal("123.45"), amount_refunded=Decimal("0.00")
    )

    StripeProvider().refund(
        payment=payment, amount=Decimal("20.45"), reason="x", idempotency_key="refund-4"
    )

    assert StripeProvider().fetch(payment=payment) == PaymentState(
        status="succeeded", amount_received=Decimal("123.45"), amount_refunded=Decimal("20.45")
    )


def test_fetch_reports_a_declined_attempt_as_failed(localstripe):
    payment = _started(_payment())
    with pytest.raises(stripe.CardError):
        _confirm(payment.provider_reference, payment_method="pm_card_chargeCustomerFail")

    assert StripeProvider().fetch(payment=payment) == PaymentState(
        status="failed", amount_received=Decimal("0.00"), amount_refunded=Decimal("0.00")
    )


def test_fetch_reports_a_cancelled_intent(localstripe):
    payment = _started(_payment())
    with stripe_client() as client:
        client.v1.payment_intents.cancel(payment.provider_reference)

    assert StripeProvider().fetch(payment=payment).status == "canceled"


def test_fetch_of_an_unknown_intent_is_a_provider_error(localstripe):
    with pytest.raises(ProviderError, match="Stripe could not be asked"):
        StripeProvider().fetch(payment=_payment(reference="pi_doesnotexist"))
