"""Render the shop's emails: a subject, a plain-text body and an HTML body per kind.

Templates live in `templates/emails/<kind>_subject.txt`, `<kind>_body.txt` and `<kind>_body.html`.
Everything is rendered from what is stored when the email is sent: an order's line snapshots and
stored totals (never repriced), a cart's current lines and prices. Links are absolute
(`SHOP_BASE_URL`), since workers send emails outside any request. Text templates turn
autoescaping off; HTML templates keep it on, so a product called `<script>` stays text.
"""

import re
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import DNS_NAME, EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.addresses import country_name
from orders import selectors
from orders.models import Cart, Order, OutboxEmail
from orders.pricing import totals_compute
from shop.money import money_format

ORDER_KINDS = frozenset(
    {
        OutboxEmail.Kind.ORDER_RECEIVED,
        OutboxEmail.Kind.ORDER_PAID,
        OutboxEmail.Kind.ORDER_SHIPPED,
        OutboxEmail.Kind.ORDER_CANCELLED,
    }
)
_ADDRESS_FIELDS = ("full_name", "line1", "line2")


class EmailNotNeeded(Exception):
    """The email no longer makes sense (say, a cart reminder for a cart checked out since)."""


def email_message_build(outbox: OutboxEmail) -> EmailMultiAlternatives:
    """Render the recorded email into a message ready to send (text with an HTML alternative)."""
    if outbox.kind in ORDER_KINDS:
        if outbox.order_id is None:
            raise EmailNotNeeded("its order no longer exists.")
        context = _order_context(outbox.order)
    elif outbox.kind == OutboxEmail.Kind.CART_REMINDER:
        if outbox.cart_id is None:
            raise EmailNotNeeded("its cart no longer exists.")
        context = _cart_context(outbox.cart)
    else:
        raise ValueError(f"No email templates for kind {outbox.kind!r}.")
    context |= {"shop_name": settings.SHOP_NAME, "base_url": settings.SHOP_BASE_URL}

    subject = render_to_string(f"emails/{outbox.kind}_subject.txt", context)
    text = render_to_string(f"emails/{outbox.kind}_body.txt", context)
    html = render_to_string(f"emails/{outbox.kind}_body.html", context)
    message = EmailMultiAlternatives(
        subject=_one_line(subject),
        body=_tidy_text(text),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[outbox.to_email],
        headers={"Message-ID": _message_id(outbox), "Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(html, "text/html")
    return message


# --- Context -------------------------------------------------------------------------------------


def _order_context(order: Order) -> dict:
    currency = order.currency

    def money(amount: Decimal) -> str:
        return money_format(amount, currency)

    lines = [
        {
            "name": line.product_name,
            "variant": line.variant_label,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": money(line.unit_price),
            "total": money(line.line_total),
        }
        for line in order.lines.all()
    ]
    return {
        "order": order,
        "number": order.number,
        "lines": lines,
        "subtotal": money(order.subtotal),
        "discount": money(order.discount_total) if order.discount_total else "",
        "voucher_code": order.voucher_code,
        "shipping": money(order.shipping_total),
        "shipping_method": order.shipping_method_name,
        "tax": money(order.tax_total),
        "tax_included": order.prices_include_tax,
        "total": money(order.total),
        "address_lines": address_lines(order.shipping_address),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "order_url": settings.SHOP_BASE_URL + order.get_absolute_url(),
        "payment_minutes": settings.SHOP_ORDER_PAYMENT_MINUTES,
    }


def _cart_context(cart: Cart) -> dict:
    if cart.status != Cart.Status.OPEN:
        raise EmailNotNeeded("the cart was checked out or merged before the reminder went out.")
    lines = [
        line
        for line in selectors.cart_lines(cart)
        if line.variant.is_active and line.variant.product.is_active
    ]
    if not lines:
        raise EmailNotNeeded("the cart holds nothing that is for sale any more.")
    currency = settings.SHOP_CURRENCY
    totals = totals_compute(
        lines=[(line.variant.price, line.quantity) for line in lines], currency=currency
    )
    items = [
        {
            "name": line.variant.product.name,
            "variant": line.variant.label,
            "quantity": line.quantity,
            "unit_price": money_format(priced.unit_price, currency),
            "total": money_format(priced.total, currency),
            "in_stock": line.variant.stock >= line.quantity,
        }
        for line, priced in zip(lines, totals.lines, strict=True)
    ]
    return {
        "cart": cart,
        "lines": items,
        "subtotal": money_format(totals.subtotal, currency),
        "cart_url": settings.SHOP_BASE_URL + reverse("orders:cart"),
    }


def address_lines(address: object) -> list[str]:
    """Return a stored shipping address as the lines of an envelope."""
    if not isinstance(address, dict):
        return []
    lines = [str(address.get(key) or "").strip() for key in _ADDRESS_FIELDS]
    town = " ".join(
        str(address.get(key) or "").strip() for key in ("postal_code", "city") if address.get(key)
    )
    lines += [town, country_name(str(address.get("country") or "").strip())]
    return [line for line in lines if line]


# --- Formatting ----------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Collapse all whitespace (newlines included: they are not allowed in a header)."""
    return " ".join(text.split())


def _tidy_text(text: str) -> str:
    """Drop the blank lines template tags leave behind: at most one empty line in a row."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _message_id(outbox: OutboxEmail) -> str:
    """Return a Message-ID fixed per record, so a copy sent again after a crash (the mail server
    accepted it, the process died before recording that) can be recognised as the same email."""
    host = urlsplit(settings.SHOP_BASE_URL).hostname or str(DNS_NAME)
    stamp = outbox.created_at.strftime("%Y%m%d%H%M%S")
    return f"<{outbox.kind}.{outbox.pk}.{stamp}@{host}>"
