"""Reads for carts, checkout quotes and orders.

Customer-facing reads are scoped: a cart by its id *and* owner, an order by the customer or by
its unguessable token, so an id taken from a URL never reaches `.get()` unscoped.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from catalog.selectors import SaleOffer, sale_customer_key, sale_customer_units, sale_offers
from orders.exceptions import CheckoutIncomplete, ShippingUnavailable, VoucherInvalid
from orders.models import Cart, CartLine, Order, ShippingMethod, TaxRate, Voucher
from orders.pricing import Totals, VoucherTerms, totals_compute
from shop.money import money_format


def _lookup_text(value: object) -> str | None:
    """Return user input as text to look up, or None when nothing can match it (PostgreSQL
    refuses NUL characters in a query: a tampered value must be "not found", not an error)."""
    text = str(value)
    return None if "\x00" in text else text


# --- Cart ---------------------------------------------------------------------------------------


def cart_for_request(*, cart_id: object, user) -> Cart | None:
    """Return the open cart of this visitor: the signed-in user's, else the session's guest cart."""
    if user is not None and user.is_authenticated:
        return Cart.objects.filter(user=user, status=Cart.Status.OPEN).first()
    try:
        pk = int(str(cart_id))
    except (TypeError, ValueError):
        return None
    return Cart.objects.filter(pk=pk, user__isnull=True, status=Cart.Status.OPEN).first()


def cart_item_count(*, cart_id: object, user) -> int:
    """Return how many items the visitor's open cart holds (one query; 0 without a cart)."""
    if user is not None and user.is_authenticated:
        carts = Cart.objects.filter(user=user, status=Cart.Status.OPEN)
    else:
        try:
            pk = int(str(cart_id))
        except (TypeError, ValueError):
            return 0
        carts = Cart.objects.filter(pk=pk, user__isnull=True, status=Cart.Status.OPEN)
    return CartLine.objects.filter(cart__in=carts).aggregate(n=Sum("quantity"))["n"] or 0


def cart_lines(cart: Cart) -> list[CartLine]:
    """Return the cart's lines with their variants and products (one query)."""
    return list(
        cart.lines.select_related("variant__product").order_by("created_at", "id")
        if cart.pk
        else []
    )


# --- Checkout quote ----------------------------------------------------------------------------


@dataclass
class QuoteLine:
    line: CartLine
    unit_price: Decimal
    total: Decimal
    price_changed: bool
    available: int
    problem: str = ""
    # The live sale the line is priced from (None: the regular price).
    sale: SaleOffer | None = None
    # A note for the customer that is not a problem (e.g. "the sale has sold out: regular price").
    note: str = ""

    @property
    def regular_price(self) -> Decimal:
        return self.line.variant.price


@dataclass
class Quote:
    lines: list[QuoteLine]
    totals: Totals
    shipping_method: ShippingMethod | None = None
    voucher: Voucher | None = None
    voucher_error: str = ""
    fingerprint: str = ""
    problems: list[str] = field(default_factory=list)
    # Of the problems, those about a sale's per-customer limit.
    limit_problems: list[str] = field(default_factory=list)

    @property
    def can_place(self) -> bool:
        return bool(self.lines) and not self.problems and not self.voucher_error


def shipping_methods_for(country: str | None) -> list[ShippingMethod]:
    methods = ShippingMethod.objects.filter(is_active=True).order_by("position", "price", "id")
    return [m for m in methods if country is None or m.ships_to(country)]


def tax_rate_for(country: str | None) -> Decimal:
    if not country:
        return Decimal("0")
    rate = TaxRate.objects.filter(country=country).values_list("rate", flat=True).first()
    return rate if rate is not None else Decimal("0")


def voucher_check(*, code: str, goods: Decimal, email: str, user, currency: str) -> Voucher:
    """Return the voucher for `code` if this customer may use it on `goods`, else raise
    VoucherInvalid with the reason. Placement calls it again with the voucher row locked."""
    normalized = _lookup_text(code.strip().upper())
    voucher = Voucher.objects.filter(code=normalized).first() if normalized else None
    if voucher is None:
        raise VoucherInvalid("We don't know this voucher code.")
    now = timezone.now()
    if not voucher.is_active:
        raise VoucherInvalid("This voucher is no longer valid.")
    if voucher.starts_at and voucher.starts_at > now:
        raise VoucherInvalid("This voucher is not valid yet.")
    if voucher.ends_at and voucher.ends_at <= now:
        raise VoucherInvalid("This voucher has expired.")
    if voucher.usage_limit is not None and voucher.used_count >= voucher.usage_limit:
        raise VoucherInvalid("This voucher has been used up.")
    if voucher.per_customer_limit is not None:
        mine = Q(email__iexact=email) if email else Q(pk__in=[])
        if user is not None and getattr(user, "is_authenticated", False):
            mine |= Q(user=user)
        if voucher.redemptions.filter(mine).count() >= voucher.per_customer_limit:
            raise VoucherInvalid("You have already used this voucher.")
    if goods < voucher.min_spend:
        raise VoucherInvalid(
            f"This voucher needs a spend of at least {money_format(voucher.min_spend, currency)}."
        )
    return voucher


def quote_fingerprint(quote_lines: list[QuoteLine], totals: Totals) -> str:
    """Return a short digest of everything the customer is shown and agrees to pay."""
    payload = {
        "lines": [[q.line.variant_id, q.line.quantity, str(q.unit_price)] for q in quote_lines],
        "amounts": [
            str(totals.subtotal),
            str(totals.discount),
            str(totals.shipping),
            str(totals.tax),
            str(totals.total),
        ],
        "currency": totals.currency,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return digest[:32]


def fingerprints_match(given: object, expected: str) -> bool:
    """Compare in constant time; anything but the expected string (any type, any text) is False."""
    # As bytes: compare_digest refuses str with non-ASCII characters (TypeError).
    return isinstance(given, str) and secrets.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode()
    )


@dataclass(frozen=True)
class LinePrice:
    unit_price: Decimal
    available: int  # units the line can have at that price
    sale: SaleOffer | None = None  # the live sale it is priced from (None: the regular price)
    note: str = ""


def line_price(variant, offer: SaleOffer | None) -> LinePrice:
    """Price a variant: at the sale price while its live sale has units (its units left count
    holds whose time ran out as back on sale), else at the regular price from the stock on
    hand, with a note when the sale has sold out."""
    if offer is not None and offer.is_live:
        if offer.units_left > 0:  # (fewer than the line wants: the quote names the problem)
            return LinePrice(offer.sale_price, offer.units_left, sale=offer)
        if variant.stock > 0:
            return LinePrice(
                variant.price, variant.stock, note="The sale has sold out of this item."
            )
    return LinePrice(variant.price, variant.stock)


def checkout_quote(
    *,
    cart: Cart,
    email: str = "",
    user=None,
    data: dict | None = None,
    now=None,
    lines: list[CartLine] | None = None,
) -> Quote:
    """Price the cart with the checkout details in `data` (or those saved on the cart), at the
    prices valid `now`: a sale's price inside its window, the regular price outside it.

    Nothing is written. Problems (sold-out lines, a voucher no longer valid, no shipping to the
    country, more sale units than a customer may buy) are reported on the quote for the page to
    show. `lines` saves reading the cart's lines again when the caller has them.
    """
    data = cart.checkout_data if data is None else data
    if not isinstance(data, dict):
        data = {}
    currency = settings.SHOP_CURRENCY
    # Saved details come from a form, but a malformed value must not break the cart page.
    address = data.get("address")
    country = address.get("country") if isinstance(address, dict) else None
    quote_lines = []
    problems = []
    lines = cart_lines(cart) if lines is None else lines
    offers = sale_offers(variant_ids=[line.variant_id for line in lines], now=now, live_only=True)
    for line in lines:
        variant = line.variant
        sellable = variant.is_active and variant.product.is_active
        priced = line_price(variant, offers.get(variant.pk))
        unit_price, available = priced.unit_price, priced.available
        problem = ""
        if not sellable:
            problem = "This item is no longer for sale."
        elif available < line.quantity:
            where = " in the sale" if priced.sale else ""
            problem = (
                f"Only {available} left{where}: lower the quantity."
                if available > 0
                else "This item has sold out."
            )
        if problem:
            problems.append(f"{variant.product.name}: {problem}")
        quote_lines.append(
            QuoteLine(
                line=line,
                unit_price=unit_price,
                total=unit_price * line.quantity,
                price_changed=unit_price != line.unit_price_seen,
                available=max(available, 0) if sellable else 0,
                problem=problem,
                sale=priced.sale,
                note=priced.note,
            )
        )
    limit_problems = _sale_limit_problems(quote_lines, email=email or cart.email, user=user)
    problems += limit_problems
    method = None
    method_id = data.get("shipping_method_id")
    if method_id is not None:
        method = next(
            (m for m in shipping_methods_for(country) if str(m.pk) == str(method_id)), None
        )
    pricing = {
        "lines": [(q.unit_price, q.line.quantity) for q in quote_lines],
        "currency": currency,
        "tax_rate": tax_rate_for(country),
        "prices_include_tax": settings.SHOP_PRICES_INCLUDE_TAX,
        "shipping": method.price if method else Decimal("0"),
        "free_shipping_above": method.free_above if method else None,
    }
    voucher, voucher_error = None, ""
    code = data.get("voucher_code")
    code = code.strip() if isinstance(code, str) else ""
    if code:
        try:
            voucher = voucher_check(
                code=code, goods=totals_compute(**pricing).subtotal, email=email or cart.email,
                user=user, currency=currency,
            )  # fmt: skip
        except VoucherInvalid as exc:
            voucher_error = str(exc)
    totals = totals_compute(**pricing, voucher=voucher_terms(voucher))
    for q, priced in zip(quote_lines, totals.lines, strict=True):
        q.total = priced.total
    return Quote(
        lines=quote_lines,
        totals=totals,
        shipping_method=method,
        voucher=voucher,
        voucher_error=voucher_error,
        fingerprint=quote_fingerprint(quote_lines, totals),
        problems=problems,
        limit_problems=limit_problems,
    )


def _sale_limit_problems(quote_lines: list[QuoteLine], *, email: str, user) -> list[str]:
    """Name the sales in which this customer would pass the per-customer limit (their orders'
    units counted); a guest is known by email, so nothing is said before one is given."""
    limited: dict[int, tuple[SaleOffer, int]] = {}
    for q in quote_lines:
        if q.sale is not None and q.sale.per_customer_limit is not None:
            offer, units = limited.get(q.sale.sale_id, (q.sale, 0))
            limited[q.sale.sale_id] = (offer, units + q.line.quantity)
    if not limited:
        return []
    signed_in = _signed_in(user)
    if not signed_in and not email:
        already = {}
    else:
        key = sale_customer_key(user_id=user.pk if signed_in else None, email=email)
        already = sale_customer_units(sale_ids=limited, customer_key=key)
    problems = []
    for sale_id, (offer, units) in limited.items():
        held = already.get(sale_id, 0)
        if held + units > offer.per_customer_limit:
            problems.append(
                f"You can buy at most {offer.per_customer_limit} in the sale “{offer.sale_name}”"
                + (f" and your orders already have {held}." if held else ".")
            )
    return problems


def voucher_terms(voucher: Voucher | None) -> VoucherTerms | None:
    if voucher is None:
        return None
    return VoucherTerms(kind=voucher.kind, value=voucher.value, min_spend=voucher.min_spend)


def checkout_details_require(data: dict) -> tuple[dict, int]:
    """Return the saved address and shipping method id, or raise CheckoutIncomplete."""
    address = data.get("address")
    method_id = data.get("shipping_method_id")
    if not isinstance(address, dict) or not address.get("country") or method_id is None:
        raise CheckoutIncomplete("Fill in your address and choose a shipping method first.")
    if not any(str(m.pk) == str(method_id) for m in shipping_methods_for(address["country"])):
        raise ShippingUnavailable("That shipping method does not ship to your country.")
    return address, int(method_id)


# --- Orders ------------------------------------------------------------------------------------


def _with_lines(orders: QuerySet[Order]) -> QuerySet[Order]:
    return orders.prefetch_related(Prefetch("lines")).select_related("voucher")


def _signed_in(user) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def order_list_for_customer(*, user) -> QuerySet[Order]:
    """Return the customer's orders with their item counts (none for an anonymous visitor)."""
    # Aggregating drops Meta.ordering: order explicitly, newest first.
    orders = Order.objects.annotate(item_count=Sum("lines__quantity")).order_by("-placed_at", "-id")
    return orders.filter(user=user) if _signed_in(user) else orders.none()


def order_get_for_customer(*, user, number: str) -> Order:
    """Return the customer's order (raises Order.DoesNotExist for anyone else's)."""
    number = _lookup_text(number)
    if not _signed_in(user) or number is None:
        raise Order.DoesNotExist
    return _with_lines(Order.objects.filter(user=user)).get(number=number)


def order_get_by_token(*, number: str, token: str) -> Order:
    """Return an order through its unguessable link (raises Order.DoesNotExist otherwise)."""
    number = _lookup_text(number)
    order = _with_lines(Order.objects.all()).filter(number=number).first() if number else None
    # As bytes: compare_digest refuses str with non-ASCII characters (TypeError).
    if order is None or not secrets.compare_digest(
        order.access_token.encode(), str(token).encode("utf-8", "surrogatepass")
    ):
        raise Order.DoesNotExist
    return order


def orders_pending_older_than(*, cutoff, now=None) -> QuerySet[Order]:
    """Unpaid orders placed before `cutoff`, or whose own time (a sale hold's) has run out."""
    return Order.objects.filter(
        Q(placed_at__lt=cutoff) | Q(expires_at__lte=now or timezone.now()),
        status=Order.Status.PENDING_PAYMENT,
    )


def orders_holding_expired_sale_units(*, sale_item_ids, now=None) -> QuerySet[Order]:
    """Unpaid orders past their time that hold units of these sale items."""
    return Order.objects.filter(
        status=Order.Status.PENDING_PAYMENT,
        expires_at__lte=now or timezone.now(),
        lines__sale_hold__sale_item_id__in=list(sale_item_ids),
    ).distinct()


def carts_idle_with_email(*, cutoff) -> QuerySet[Cart]:
    """Open carts with an email and at least one line, untouched since `cutoff`, not reminded."""
    return (
        Cart.objects.filter(
            status=Cart.Status.OPEN, updated_at__lt=cutoff, reminder_sent_at__isnull=True
        )
        .exclude(email="")
        .annotate(line_count=Count("lines"))
        .filter(line_count__gt=0)
    )
