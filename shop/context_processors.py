"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    """Expose the shop's name and currency to templates."""
    return {"SHOP_NAME": settings.SHOP_NAME, "SHOP_CURRENCY": settings.SHOP_CURRENCY}
