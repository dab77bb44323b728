"""The visitor's cart as the pages see it: found through the session (guests) or the account,
and its item count for the header, read at most once per request and only when shown."""

from functools import partial

from django.http import HttpRequest

from orders import selectors
from orders.models import Cart

# The guest's cart id in the session; signed-in customers use their open cart instead.
SESSION_CART_KEY = "cart_id"


def _visitor(request: HttpRequest):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _session_cart_id(request: HttpRequest) -> object:
    session = getattr(request, "session", None)
    return session.get(SESSION_CART_KEY) if session is not None else None


def cart_for_request(request: HttpRequest) -> Cart | None:
    """Return the visitor's open cart, or None (without a query for a guest who has none)."""
    user = _visitor(request)
    cart_id = _session_cart_id(request)
    if user is None and cart_id is None:
        return None
    return selectors.cart_for_request(cart_id=cart_id, user=user)


def cart_item_count_remember(request: HttpRequest, count: int) -> None:
    """Tell the header what the page already counted, sparing it a query."""
    request._cart_item_count = count


def cart_item_count_for_request(request: HttpRequest) -> int:
    """Return how many items the visitor's cart holds, reading it on first use only."""
    count = getattr(request, "_cart_item_count", None)
    if count is None:
        user = _visitor(request)
        cart_id = _session_cart_id(request)
        if user is None and cart_id is None:
            count = 0
        else:
            count = selectors.cart_item_count(cart_id=cart_id, user=user)
        cart_item_count_remember(request, count)
    return count


def cart(request: HttpRequest) -> dict:
    # A callable: templates call it where the count is shown (and filters get a plain int);
    # pages that never show it never query.
    return {"cart_item_count": partial(cart_item_count_for_request, request)}
