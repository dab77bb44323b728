"""Placing an order: one transaction that turns a reviewed cart into an order awaiting payment.

Invariants owned here:
- Stock is taken with conditional updates (`stock = stock - n WHERE stock >= n`), line by line in
  ascending variant id, so concurrent checkouts lock rows in one order and never deadlock, and
  stock can never go below zero (the database refuses it too). The contended rows (stock, sale
  units) are updated last in the transaction, so their locks are held only until the commit.
- If any unit is missing, nothing is written and the customer is told which lines to change.
- Every amount is recomputed on the server from the locked rows; the customer's browser sends
  only the fingerprint of the quote it showed, and a different quote is refused (PricesChanged).
- A voucher use is counted under the voucher's row lock, within its global and per-customer
  limits.
- One checkout token makes at most one order: a repeated or concurrent submission returns the
  order the first one made.
- A line priced from a live sale takes its sale units (catalog's conditional updates: never more
  than the allotment, nor than the customer's limit) in the same transaction, and the order
  expires when the earliest of its holds does (SHOP_ORDER_PAYMENT_MINUTES without one). When
  units are missing, holds whose time has run out are released (their orders cancelled) and the
  placement is tried once more, so units left in abandoned checkouts go back on sale without
  waiting for cron.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.exceptions import SaleError
from catalog.models import ProductVariant
from catalog.selectors import sale_customer_key
from catalog.services import sale_units_take
from orders import selectors
from orders.exceptions import (
    CartEmpty,
    CheckoutIncomplete,
    OutOfStock,
    PricesChanged,
    SaleUnavailable,
    VoucherInvalid,
)
from orders.models import (
    Cart,
    Order,
    OrderEvent,
    OrderLine,
    OutboxEmail,
    Voucher,
    VoucherRedemption,
)
from orders.services.emails import outbox_record
from orders.services.numbers import order_number_generate
from orders.services.orders import expired_sale_holds_release

PLACE_ATTEMPTS = 3


def order_place(*, cart: Cart, checkout_token: str, fingerprint: str, user=None) -> Order:
    """Place the order for a reviewed cart; return it (the same one on a repeated submission).

    If units are missing, the orders past their time that hold units of the cart's sale items
    are cancelled first (their units go back on sale) and the placement is tried once more.
    """
    existing = _placed(cart, checkout_token)
    if existing is not None:
        return existing
    released = False
    collisions = 0
    while True:
        try:
            with transaction.atomic():
                return _order_place(
                    cart=cart, checkout_token=checkout_token, fingerprint=fingerprint, user=user
                )
        except IntegrityError:
            # Either a concurrent submission of the same checkout won (its order exists now), or
            # the random order number collided (try again with a new one).
            existing = _placed(cart, checkout_token)
            if existing is not None:
                return existing
            collisions += 1
            if collisions == PLACE_ATTEMPTS:
                raise
        except (OutOfStock, SaleUnavailable):
            variant_ids = cart.lines.values_list("variant_id", flat=True)
            if released or not expired_sale_holds_release(variant_ids=variant_ids):
                raise
            released = True


def _placed(cart: Cart, checkout_token: object) -> Order | None:
    """Return the order this cart's checkout already made with this token (another cart's token
    never finds another customer's order)."""
    token = str(checkout_token)
    if "\x00" in token:  # PostgreSQL refuses NUL in a query; no token holds one
        return None
    return Order.objects.filter(checkout_token=token, cart_id=cart.pk).first()


def _order_place(*, cart: Cart, checkout_token: str, fingerprint: str, user) -> Order:
    cart = Cart.objects.select_for_update().get(pk=cart.pk)
    if cart.status != Cart.Status.OPEN:
        existing = _placed(cart, checkout_token)
        if existing is not None:
            return existing
        raise CartEmpty("This cart has already been checked out.")
    if cart.checkout_token != checkout_token:
        raise PricesChanged("Your checkout changed in the meantime: please review it again.")
    address, _ = selectors.checkout_details_require(cart.checkout_data)
    if not cart.email:
        raise CheckoutIncomplete("Give the email address we should send your order to.")

    lines = selectors.cart_lines(cart)  # in the cart's order, as the review showed them
    if not lines:
        raise CartEmpty("Your cart is empty.")
    now = timezone.now()
    quote = selectors.checkout_quote(cart=cart, email=cart.email, user=user, now=now, lines=lines)
    if quote.limit_problems:
        raise SaleUnavailable(" ".join(quote.limit_problems))
    if quote.problems:
        raise OutOfStock(
            "Some items are no longer available. " + " ".join(quote.problems),
            lines=[_missing(q.line, q.available) for q in quote.lines if q.problem],
        )
    if quote.voucher_error:
        raise VoucherInvalid(quote.voucher_error)
    if not selectors.fingerprints_match(fingerprint, quote.fingerprint):
        sold_out = [q.line.variant for q in quote.lines if q.note]
        if sold_out:
            raise SaleUnavailable(
                "The sale has sold out of "
                + ", ".join(str(variant) for variant in sold_out)
                + ": your cart now shows the regular price. Please review your order again."
            )
        raise PricesChanged(
            "Prices or amounts changed since you reviewed your order: please check them again."
        )
    voucher = _voucher_use(quote=quote, cart=cart, user=user)

    totals = quote.totals
    # An order keeps its stock for the payment time, or less if a sale holds units for less.
    minutes = min(
        [settings.SHOP_ORDER_PAYMENT_MINUTES]
        + [q.sale.hold_minutes for q in quote.lines if q.sale is not None]
    )
    order = Order.objects.create(
        number=order_number_generate(),
        placed_at=now,
        expires_at=now + timedelta(minutes=minutes),
        user=user if user is not None and user.is_authenticated else None,
        email=cart.email,
        checkout_token=checkout_token,
        cart=cart,
        currency=totals.currency,
        prices_include_tax=totals.prices_include_tax,
        subtotal=totals.subtotal,
        discount_total=totals.discount,
        shipping_total=totals.shipping,
        tax_total=totals.tax,
        total=totals.total,
        shipping_address=address,
        shipping_method_name=quote.shipping_method.name,
        voucher=voucher,
        voucher_code=voucher.code if voucher else "",
    )
    if voucher is not None:
        VoucherRedemption.objects.create(
            voucher=voucher, order=order, user=order.user, email=order.email
        )
    OrderEvent.objects.create(
        order=order,
        to_status=order.status,
        message=f"Order placed: {len(quote.lines)} line(s), total {order.total} {order.currency}.",
        actor=order.user,
    )
    cart.status = Cart.Status.ORDERED
    cart.save(update_fields=["status"])
    outbox_record(kind=OutboxEmail.Kind.ORDER_RECEIVED, order=order, to_email=order.email)

    # The contended rows come last, so their row locks are held only until the commit: the
    # stock (conditional updates, ascending variant id), then the sale units; the lines, which
    # name their sale holds, are one insert after them.
    _stock_take(sorted(lines, key=lambda line: line.variant_id))
    holds = _sale_units_take(quote=quote, cart=cart, user=user, number=order.number, now=now)
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            variant=q.line.variant,
            product_name=q.line.variant.product.name,
            variant_label=q.line.variant.label,
            sku=q.line.variant.sku,
            unit_price=priced.unit_price,
            quantity=priced.quantity,
            line_total=priced.total,
            tax_rate=totals.tax_rate,
            tax_amount=priced.tax_amount,
            sale_hold=holds.get(q.line.pk),
        )
        for q, priced in zip(quote.lines, totals.lines, strict=True)
    )
    return order


def _missing(line, available: int) -> dict:
    return {
        "line_id": line.pk,
        "sku": line.variant.sku,
        "name": line.variant.product.name,
        "wanted": line.quantity,
        "available": available,
    }


def _stock_take(lines) -> None:
    """Take every line's units with a conditional update, in ascending variant id; raise
    OutOfStock naming every line that cannot be served (the transaction then rolls back)."""
    missing = []
    for line in lines:
        # One table only: PostgreSQL re-checks `stock >= n` on the row's newest version after
        # waiting for its lock (a condition through a join would be judged on the statement's
        # snapshot). The product being on sale was checked by the quote.
        taken = ProductVariant.objects.filter(
            pk=line.variant_id, is_active=True, stock__gte=line.quantity
        ).update(stock=F("stock") - line.quantity)
        if not taken:
            available = (
                ProductVariant.objects.filter(pk=line.variant_id).values_list("stock", flat=True)
            ).first() or 0
            missing.append(_missing(line, available))
    if missing:
        raise OutOfStock(
            "Some items are no longer available. "
            + " ".join(
                f"{m['name']}: Only {m['available']} left: lower the quantity."
                if m["available"] > 0
                else f"{m['name']}: This item has sold out."
                for m in missing
            ),
            lines=missing,
        )


def _sale_units_take(*, quote, cart: Cart, user, number: str, now) -> dict:
    """Take the sale units of every line priced from a sale; return {cart line id: hold}.
    Raise SaleUnavailable (the transaction then rolls back: nothing taken)."""
    holds = {}
    signed_in = user is not None and user.is_authenticated
    key = sale_customer_key(user_id=user.pk if signed_in else None, email=cart.email)
    for q in sorted(quote.lines, key=lambda q: q.line.variant_id):  # as the stock: no deadlock
        if q.sale is None:
            continue
        try:
            holds[q.line.pk] = sale_units_take(
                sale_item_id=q.sale.item_id, quantity=q.line.quantity, customer_key=key,
                reference=number, now=now,
            )  # fmt: skip
        except SaleError as error:
            raise SaleUnavailable(
                f"{error} Your cart now shows the price that applies: please review it again."
            ) from error
    return holds


def _voucher_use(*, quote, cart: Cart, user) -> Voucher | None:
    """Count one use of the quote's voucher under its row lock; raise VoucherInvalid if it may
    no longer be used (used up in the meantime, or by this customer)."""
    if quote.voucher is None:
        return None
    voucher = Voucher.objects.select_for_update().get(pk=quote.voucher.pk)
    selectors.voucher_check(
        code=voucher.code, goods=quote.totals.subtotal, email=cart.email, user=user,
        currency=settings.SHOP_CURRENCY,
    )  # fmt: skip
    counted = (
        Voucher.objects.filter(pk=voucher.pk)
        .filter(Q(usage_limit__isnull=True) | Q(used_count__lt=F("usage_limit")))
        .update(used_count=F("used_count") + 1)
    )
    if not counted:
        raise VoucherInvalid("This voucher has been used up.")
    return voucher
