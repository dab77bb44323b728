"""Cart writes: add, change, remove, merge on sign-in, remember checkout details.

Invariants owned here:
- A line's quantity is a whole number from 1 to MAX_LINE_QUANTITY and never more than the stock
  on hand when it is set (stock is taken only at order placement, so it may drop later: the cart
  page and the placement re-check it).
- Only active variants of active products with stock can be added. During a live sale the units
  a line can have are the sale's units left and the price remembered is the sale price; no
  line may ask for more than the sale's per-customer limit.
- A customer has at most one open cart (database constraint); signing in merges the session's
  cart into it, adding quantities capped by stock.
- Every cart write locks the cart row first, so two requests for one cart never interleave, and
  refuses a cart that is no longer open (CartClosed): an ordered or merged cart never changes.
- A cart that belongs to a customer is never merged into, or taken over by, anyone else.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import ProductVariant
from catalog.selectors import SaleOffer, sale_offers
from orders import selectors
from orders.exceptions import (
    CartClosed,
    CartLineNotFound,
    InvalidQuantity,
    NotEnoughStock,
    VariantUnavailable,
)
from orders.models import MAX_LINE_QUANTITY, Cart, CartLine, token_generate


def quantity_parse(value: object) -> int:
    """Return a valid line quantity from user input, or raise InvalidQuantity."""
    text = str(value).strip() if value is not None else ""
    digits = text.removeprefix("-")
    # isdecimal, not isdigit: "²" is a digit to Python but not a number to int().
    if not digits or not digits.isdecimal():
        raise InvalidQuantity("Enter the quantity as a whole number.")
    # Judge the size by its length before int(), which refuses very long digit strings.
    significant = digits.lstrip("0") or "0"
    if text.startswith("-") and significant != "0":
        raise InvalidQuantity("The quantity must be at least 1.")
    if len(significant) > len(str(MAX_LINE_QUANTITY)):
        raise InvalidQuantity(f"You can buy at most {MAX_LINE_QUANTITY} of one item at a time.")
    quantity = int(significant)
    if quantity < 1:
        raise InvalidQuantity("The quantity must be at least 1.")
    if quantity > MAX_LINE_QUANTITY:
        raise InvalidQuantity(f"You can buy at most {MAX_LINE_QUANTITY} of one item at a time.")
    return quantity


def _lock(cart: Cart) -> Cart:
    """Lock the cart's row and return it fresh; refuse a cart that is no longer open (ordered or
    merged in another tab since the page was shown)."""
    cart = Cart.objects.select_for_update().get(pk=cart.pk)
    if cart.status != Cart.Status.OPEN:
        raise CartClosed("This cart has already been checked out or merged; refresh the page.")
    return cart


def _touch(cart: Cart) -> None:
    cart.updated_at = timezone.now()
    cart.reminder_sent_at = None
    cart.save(update_fields=["updated_at", "reminder_sent_at"])


def _sellable_variant(variant_id: object) -> ProductVariant:
    try:
        pk = int(str(variant_id))
    except (TypeError, ValueError):
        raise VariantUnavailable("That item does not exist.") from None
    variant = (
        ProductVariant.objects.select_related("product")
        .filter(pk=pk, is_active=True, product__is_active=True)
        .first()
    )
    if variant is None:
        raise VariantUnavailable("That item is not for sale.")
    return variant


def _offer(variant: ProductVariant) -> selectors.LinePrice:
    """Price the variant now: its live sale's price and units while they last, else the regular
    price and the stock on hand."""
    offer = sale_offers(variant_ids=[variant.pk], live_only=True).get(variant.pk)
    return selectors.line_price(variant, offer)


def _sale_limit_check(offer: SaleOffer | None, quantity: int) -> None:
    """Refuse more of one item than a customer may buy in its sale (what their orders already
    hold is counted at checkout, once we know who they are)."""
    limit = offer.per_customer_limit if offer is not None else None
    if limit is not None and quantity > limit:
        raise InvalidQuantity(f"You can buy at most {limit} in the sale “{offer.sale_name}”.")


def cart_create(*, user=None) -> Cart:
    """Return the customer's open cart, making one if needed (guests always get a new one)."""
    if user is not None and user.is_authenticated:
        cart, _ = Cart.objects.get_or_create(
            user=user, status=Cart.Status.OPEN, defaults={"email": user.email}
        )
        return cart
    return Cart.objects.create()


@transaction.atomic
def cart_add(*, cart: Cart, variant_id: object, quantity: object) -> CartLine:
    """Add a quantity of a variant to the cart (adding to a line already there)."""
    quantity = quantity_parse(quantity)
    variant = _sellable_variant(variant_id)
    cart = _lock(cart)
    line = CartLine.objects.filter(cart=cart, variant=variant).first()
    wanted = quantity + (line.quantity if line else 0)
    priced = _offer(variant)
    price, available, offer = priced.unit_price, priced.available, priced.sale
    where = " in the sale" if offer is not None else ""
    if available <= 0:
        raise NotEnoughStock(f"{variant.product.name} is sold out{where}.", available=0)
    if wanted > available:
        raise NotEnoughStock(
            f"Only {available} of {variant.product.name} left{where}"
            + (f"; you already have {line.quantity} in your cart." if line else "."),
            available=available,
        )
    if wanted > MAX_LINE_QUANTITY:
        raise InvalidQuantity(f"You can buy at most {MAX_LINE_QUANTITY} of one item at a time.")
    _sale_limit_check(offer, wanted)
    if line is None:
        line = CartLine.objects.create(
            cart=cart, variant=variant, quantity=wanted, unit_price_seen=price
        )
    else:
        line.quantity = wanted
        line.save(update_fields=["quantity"])
    _touch(cart)
    return line


@transaction.atomic
def cart_line_update(*, cart: Cart, line_id: object, quantity: object) -> CartLine:
    """Set a line's quantity (1 to the stock on hand)."""
    quantity = quantity_parse(quantity)
    cart = _lock(cart)
    line = _own_line(cart, line_id)
    variant = line.variant
    priced = _offer(variant)
    available, offer = priced.available, priced.sale
    if quantity > available and quantity > line.quantity:
        where = " in the sale" if offer is not None else ""
        raise NotEnoughStock(
            f"Only {available} of {variant.product.name} left{where}.", available=available
        )
    if quantity > line.quantity:
        _sale_limit_check(offer, quantity)
    line.quantity = quantity
    line.save(update_fields=["quantity"])
    _touch(cart)
    return line


@transaction.atomic
def cart_line_remove(*, cart: Cart, line_id: object) -> None:
    cart = _lock(cart)
    _own_line(cart, line_id).delete()
    _touch(cart)


def _own_line(cart: Cart, line_id: object) -> CartLine:
    """Return the line only if it belongs to this cart: another cart's line id is 'not found'."""
    try:
        pk = int(str(line_id))
    except (TypeError, ValueError):
        raise CartLineNotFound("That item is not in your cart.") from None
    line = CartLine.objects.select_related("variant__product").filter(cart=cart, pk=pk).first()
    if line is None:
        raise CartLineNotFound("That item is not in your cart.")
    return line


@transaction.atomic
def cart_merge(*, source: Cart, user) -> Cart:
    """Merge a guest's cart into the user's open cart on sign-in; return the user's cart.

    Quantities are added and capped by the stock on hand and the line maximum; the guest cart
    is closed as merged. With no cart of their own, the user simply takes over the guest cart.
    Another customer's cart is never merged nor taken over.
    """
    source = Cart.objects.select_for_update().get(pk=source.pk)
    if source.status != Cart.Status.OPEN or source.user_id is not None:
        return cart_create(user=user)
    target = Cart.objects.select_for_update().filter(user=user, status=Cart.Status.OPEN).first()
    if target is None:
        try:
            with transaction.atomic():
                Cart.objects.filter(pk=source.pk).update(
                    user=user, email=source.email or user.email
                )
        except IntegrityError:
            # A concurrent sign-in gave the user an open cart first: merge into that one.
            target = (
                Cart.objects.select_for_update().filter(user=user, status=Cart.Status.OPEN).get()
            )
        else:
            source.refresh_from_db()
            return source
    existing = {line.variant_id: line for line in target.lines.all()}
    for line in source.lines.select_related("variant"):
        stock_cap = min(line.variant.stock, MAX_LINE_QUANTITY)
        mine = existing.get(line.variant_id)
        if mine is None:
            quantity = min(line.quantity, stock_cap)
            if quantity >= 1:
                CartLine.objects.create(
                    cart=target,
                    variant=line.variant,
                    quantity=quantity,
                    unit_price_seen=line.unit_price_seen,
                )
        else:
            mine.quantity = max(mine.quantity, min(mine.quantity + line.quantity, stock_cap))
            mine.save(update_fields=["quantity"])
    source.status = Cart.Status.MERGED
    source.save(update_fields=["status"])
    _touch(target)
    return target


@transaction.atomic
def cart_checkout_save(*, cart: Cart, email: str, data: dict) -> Cart:
    """Remember the checkout form's details (contact, address, shipping, voucher) on the cart.

    A new checkout token is issued whenever the details change, so the review step that follows
    is a new, single placement.
    """
    cart = _lock(cart)
    # Stored lower-cased, like account addresses: orders are searched and vouchers counted by it.
    email = email.strip().lower()
    if cart.email != email or cart.checkout_data != data:
        cart.checkout_token = token_generate()
    cart.email = email
    cart.checkout_data = data
    cart.updated_at = timezone.now()
    cart.save(update_fields=["email", "checkout_data", "checkout_token", "updated_at"])
    return cart
