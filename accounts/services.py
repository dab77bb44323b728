"""Writes of the accounts app: a customer's saved addresses.

Invariants owned here:
- A customer with saved addresses has exactly one default address. The database refuses a
  second one (`accounts_one_default_address`); these functions keep at least one: the first
  address becomes the default, and deleting the default passes it to the most recent other.
- Postal codes are stored normalised and valid for their country (`postal_code_normalize`
  raises ValidationError otherwise, and nothing is written).
- Every write locks the customer's row first, so two requests for one customer never interleave
  (two first addresses can never both try to become the default).
"""

from django.db import transaction

from accounts.addresses import postal_code_normalize
from accounts.models import Address, User


def _lock_customer(user_id: int) -> None:
    list(User.objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True))


def _fields(
    *, full_name: str, line1: str, line2: str, city: str, postal_code: str, country: str,
    phone: str,
) -> dict:  # fmt: skip
    return {
        "full_name": full_name.strip(),
        "line1": line1.strip(),
        "line2": line2.strip(),
        "city": city.strip(),
        "postal_code": postal_code_normalize(country=country, postal_code=postal_code),
        "country": country,
        "phone": phone.strip(),
    }


@transaction.atomic
def address_create(
    *,
    user,
    full_name: str,
    line1: str,
    city: str,
    postal_code: str,
    country: str,
    line2: str = "",
    phone: str = "",
    is_default: bool = False,
) -> Address:
    """Save a new address for the customer; the first one (or one asked to be) is the default."""
    fields = _fields(
        full_name=full_name, line1=line1, line2=line2, city=city, postal_code=postal_code,
        country=country, phone=phone,
    )  # fmt: skip
    _lock_customer(user.pk)
    current_default = Address.objects.filter(user_id=user.pk, is_default=True)
    has_default = current_default.exists()
    if is_default and has_default:
        current_default.update(is_default=False)
    return Address.objects.create(
        user_id=user.pk, is_default=is_default or not has_default, **fields
    )


@transaction.atomic
def address_update(
    *,
    address: Address,
    full_name: str,
    line1: str,
    city: str,
    postal_code: str,
    country: str,
    line2: str = "",
    phone: str = "",
    is_default: bool = False,
) -> Address:
    """Change an address. `is_default=True` also makes it the default; the default itself stays
    the default until another address is chosen, so there is always one."""
    fields = _fields(
        full_name=full_name, line1=line1, line2=line2, city=city, postal_code=postal_code,
        country=country, phone=phone,
    )  # fmt: skip
    _lock_customer(address.user_id)
    address = Address.objects.select_for_update().get(pk=address.pk, user_id=address.user_id)
    for name, value in fields.items():
        setattr(address, name, value)
    if is_default and not address.is_default:
        Address.objects.filter(user_id=address.user_id, is_default=True).update(is_default=False)
        address.is_default = True
    address.save()
    return address


@transaction.atomic
def address_set_default(*, address: Address) -> Address:
    """Make this address the customer's default (the previous default stops being one)."""
    _lock_customer(address.user_id)
    address = Address.objects.select_for_update().get(pk=address.pk, user_id=address.user_id)
    if not address.is_default:
        Address.objects.filter(user_id=address.user_id, is_default=True).update(is_default=False)
        address.is_default = True
        address.save(update_fields=["is_default", "updated_at"])
    return address


@transaction.atomic
def address_delete(*, address: Address) -> None:
    """Delete an address; if it was the default, the most recently changed other one becomes
    the default."""
    user_id = address.user_id
    _lock_customer(user_id)
    locked = Address.objects.select_for_update().filter(pk=address.pk, user_id=user_id).first()
    if locked is None:
        return
    locked.delete()
    if locked.is_default:
        successor = Address.objects.filter(user_id=user_id).order_by("-updated_at", "-id").first()
        if successor is not None:
            successor.is_default = True
            successor.save(update_fields=["is_default", "updated_at"])
