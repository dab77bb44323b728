"""Payment pages and provider webhooks. Thin: parse, call one service or selector, render.

The customer reaches these pages through the order's unguessable link (number and token), like
the order page itself. Webhooks only verify, store and enqueue; a worker does the rest.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from orders import selectors as order_selectors
from orders.models import Order
from payments import selectors, services
from payments.exceptions import NotPayable, ProviderError, ProviderUnavailable, SignatureInvalid
from payments.models import Payment
from payments.providers import EventType, providers_enabled
from payments.providers.test import TestProvider

logger = logging.getLogger(__name__)

TEST_PAGE_ACTIONS = {"pay": EventType.PAYMENT_SUCCEEDED, "decline": EventType.PAYMENT_FAILED}
# How often the "waiting for confirmation" page reloads itself, in seconds.
RETURN_REFRESH_SECONDS = 3


def _order_or_404(number: str, token: str) -> Order:
    try:
        return order_selectors.order_get_by_token(number=number, token=token)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None


@require_POST
def payment_start(request: HttpRequest, number: str, token: str) -> HttpResponse:
    order = _order_or_404(number, token)
    providers = providers_enabled()
    chosen = request.POST.get("provider", "")
    if not providers:
        messages.error(request, "Online payment is not available right now. Please try later.")
        return redirect(order.get_absolute_url())
    if not chosen and len(providers) > 1:
        return render(
            request, "payments/payment_choose.html", {"order": order, "providers": providers}
        )
    provider = (
        providers[0] if not chosen else next((p for p in providers if p.name == chosen), None)
    )
    if provider is None:
        messages.error(request, "That way of paying is not available. Please choose another.")
        return redirect(order.get_absolute_url())
    return_url = request.build_absolute_uri(
        reverse("payments:return", kwargs={"number": order.number, "token": order.access_token})
    )
    try:
        payment, result = services.payment_start(
            order_id=order.pk, provider_name=provider.name, return_url=return_url
        )
    except (NotPayable, ProviderUnavailable) as error:
        messages.error(request, str(error))
        return redirect(order.get_absolute_url())
    except ProviderError:
        logger.warning(
            "Starting a %s payment for %s failed.", provider.name, order.number, exc_info=True
        )
        messages.error(
            request, "We could not reach the payment provider. Please try again in a moment."
        )
        return redirect(order.get_absolute_url())
    if result.redirect_url:
        return redirect(result.redirect_url)
    return render(
        request,
        "payments/stripe_checkout.html",
        {
            "order": order,
            "payment": payment,
            "client_secret": result.client_secret,
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "return_url": return_url,
        },
    )


@require_safe
def payment_return(request: HttpRequest, number: str, token: str) -> HttpResponse:
    """Where the customer lands after paying: what the shop knows so far, from its own records
    (never from the query string the provider appends)."""
    order = _order_or_404(number, token)
    payment = selectors.payment_latest_for_order(order_id=order.pk)
    if order.status == Order.Status.CANCELLED:
        state = "cancelled"
    elif not order.is_pending_payment:
        state = "paid"
    elif payment is not None and payment.status in (Payment.Status.FAILED, Payment.Status.CANCELED):
        state = "failed"
    elif payment is not None and payment.needs_attention:
        state = "attention"
    else:
        state = "waiting"
    return render(
        request,
        "payments/payment_return.html",
        {
            "order": order,
            "payment": payment,
            "state": state,
            "refresh_seconds": RETURN_REFRESH_SECONDS if state == "waiting" else None,
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
def test_page(request: HttpRequest, reference: str) -> HttpResponse:
    """The test provider's hosted page: pay, decline or leave it for later.

    Paying or declining sends the signed event a real provider would, through the webhook
    pipeline (verification, storage, the task); the page never changes an order itself.
    """
    if not settings.PAYMENTS_TEST_PROVIDER:
        raise Http404("The test provider is switched off.")
    try:
        payment = selectors.payment_get_by_reference(provider="test", reference=reference)
    except Payment.DoesNotExist:
        raise Http404("No such test payment.") from None
    order = payment.order
    can_pay = payment.status == Payment.Status.PENDING and order.is_pending_payment
    if request.method == "POST":
        event_type = TEST_PAGE_ACTIONS.get(request.POST.get("action", ""))
        if event_type is not None and can_pay:
            body, headers = TestProvider().event_build(payment=payment, event_type=event_type)
            try:
                services.webhook_receive(provider_name="test", body=body, headers=headers)
            except (SignatureInvalid, ProviderUnavailable) as error:
                logger.warning("The test page's own event was refused: %s", error)
        return redirect("payments:return", number=order.number, token=order.access_token)
    return render(
        request,
        "payments/payment_test_page.html",
        {"payment": payment, "order": order, "can_pay": can_pay},
    )


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, provider_name: str) -> HttpResponse:
    """Receive a provider's event: verify, store, enqueue, answer. 400 for a request that is
    forged, tampered with, stale or unreadable (nothing stored); 200 for a duplicate."""
    try:
        event, created = services.webhook_receive(
            provider_name=provider_name, body=request.body, headers=request.headers
        )
    except ProviderUnavailable:
        raise Http404("No such payment provider.") from None
    except SignatureInvalid as error:
        logger.warning(
            "Refused a %s webhook from %s: %s",
            provider_name,
            request.META.get("REMOTE_ADDR", "?"),
            error,
        )
        return JsonResponse({"error": "invalid signature or event"}, status=400)
    return JsonResponse({"received": True, "duplicate": not created})
