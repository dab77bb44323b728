"""Template helpers: money formatting, media URLs of annotated image paths, JSON-LD."""

import json

from django import template
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from shop.money import MoneyError, money_format

register = template.Library()

# The same escapes as Django's json_script: nothing in the data can close the <script> element.
_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.filter
def money(amount, currency: str) -> str:
    """Format an amount with its currency, e.g. {{ variant.price|money:variant.currency }}."""
    if amount is None or amount == "":
        return ""
    try:
        return money_format(amount, currency)
    except MoneyError:
        return ""


@register.filter
def media_url(name: str) -> str:
    """Return the URL of a stored file given its name (as annotated by a selector)."""
    return default_storage.url(name) if name else ""


@register.simple_tag
def ld_json(data: dict) -> SafeString:
    """Render a <script type="application/ld+json"> element, safely escaped."""
    text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False).translate(_JSON_ESCAPES)
    return format_html('<script type="application/ld+json">{}</script>', mark_safe(text))


@register.simple_tag
def page_url(query_string: str, number: int) -> str:
    """Return '?<filters>&page=N' for pagination links that keep the current filters."""
    prefix = f"{query_string}&" if query_string else ""
    return f"?{prefix}page={number}"
