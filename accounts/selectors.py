"""Reads of the accounts app. A customer's addresses are always read through their owner, so an
address id from a URL never reaches `.get()` unscoped."""

from django.db.models import QuerySet

from accounts.models import Address


def address_list_for_user(*, user) -> QuerySet[Address]:
    """Return the customer's saved addresses, the default one first."""
    return Address.objects.filter(user=user).order_by("-is_default", "-updated_at", "-id")


def address_get_for_user(*, user, address_id: object) -> Address:
    """Return one of the customer's addresses (raises Address.DoesNotExist for anyone else's)."""
    try:
        pk = int(str(address_id))
    except (TypeError, ValueError):
        raise Address.DoesNotExist from None
    return Address.objects.get(user=user, pk=pk)
