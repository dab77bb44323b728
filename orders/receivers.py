"""Receivers of framework signals (never of our own apps' signals)."""

import logging

from django.db import DatabaseError
from django.http import HttpRequest

from orders import selectors, services
from orders.context_processors import SESSION_CART_KEY
from orders.exceptions import OrderError

logger = logging.getLogger(__name__)


def cart_merge_on_login(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """Move the guest cart of the session into the customer's cart when they sign in."""
    session = getattr(request, "session", None)
    if session is None or SESSION_CART_KEY not in session:
        return
    guest_cart = selectors.cart_for_request(cart_id=session[SESSION_CART_KEY], user=None)
    if guest_cart is not None:
        try:
            services.cart_merge(source=guest_cart, user=user)
        except (OrderError, DatabaseError):
            # Signing in matters more than the cart: keep the guest cart in the session and let
            # the customer sign in; the next sign-in tries the merge again.
            logger.warning("Could not merge cart %s on sign-in", guest_cart.pk, exc_info=True)
            return
    # The customer's own open cart is found through their account from now on.
    del session[SESSION_CART_KEY]
