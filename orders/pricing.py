"""Pure price arithmetic for carts and orders: no database, no settings, only Decimals.

One rounding rule (`shop.money.money_round`, half-up to the minor unit) applied at fixed points:
each unit price, the discount, the shipping, the tax. Everything else is addition (or
multiplication by a whole quantity) of rounded amounts, so the parts always add up to the total
exactly:

    line total   = unit price (rounded) × quantity, so a line is what the customer sees
    goods        = sum(line totals)
    discount     = voucher on goods (never more than goods)
    shipping     = method price, or 0 when goods - discount reaches its free-above threshold
    taxable      = goods - discount + shipping
    tax          = the part of taxable that is tax (prices include tax)
                   or taxable × rate (tax added on top)
    total        = taxable             (prices include tax)
                   taxable + tax       (tax added on top)
"""

from dataclasses import dataclass
from decimal import Decimal

from shop.money import money_round

ZERO = Decimal("0")
HUNDRED = Decimal("100")


@dataclass(frozen=True)
class LinePrice:
    unit_price: Decimal
    quantity: int
    total: Decimal
    tax_amount: Decimal


@dataclass(frozen=True)
class VoucherTerms:
    kind: str  # "percentage" or "fixed"
    value: Decimal
    min_spend: Decimal = ZERO


@dataclass(frozen=True)
class Totals:
    currency: str
    lines: tuple[LinePrice, ...]
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    tax_rate: Decimal
    prices_include_tax: bool


def tax_part(amount: Decimal, *, rate: Decimal, included: bool, currency: str) -> Decimal:
    """Return the tax in `amount` (when included) or on top of it (when not), rounded."""
    if rate <= 0 or amount <= 0:
        return money_round(ZERO, currency)
    if included:
        return money_round(amount - amount / (1 + rate / HUNDRED), currency)
    return money_round(amount * rate / HUNDRED, currency)


def voucher_discount(goods: Decimal, terms: VoucherTerms | None, *, currency: str) -> Decimal:
    """Return the discount a voucher gives on the goods total (0 below its minimum spend)."""
    if terms is None or goods <= 0 or goods < terms.min_spend:
        return money_round(ZERO, currency)
    if terms.kind == "percentage":
        discount = goods * min(terms.value, HUNDRED) / HUNDRED
    else:
        discount = terms.value
    # Between nothing and the goods: a voucher never adds to the price nor makes it negative.
    return money_round(max(min(discount, goods), ZERO), currency)


def shipping_price(
    goods_after_discount: Decimal, *, price: Decimal, free_above: Decimal | None, currency: str
) -> Decimal:
    if free_above is not None and goods_after_discount >= free_above:
        return money_round(ZERO, currency)
    return money_round(price, currency)


def totals_compute(
    *,
    lines: list[tuple[Decimal, int]],
    currency: str,
    tax_rate: Decimal = ZERO,
    prices_include_tax: bool = True,
    shipping: Decimal = ZERO,
    free_shipping_above: Decimal | None = None,
    voucher: VoucherTerms | None = None,
) -> Totals:
    """Price a basket: `lines` are (unit price, quantity) pairs."""
    priced = []
    for unit_price, quantity in lines:
        # Round the unit price first: the line is then exactly "shown price × quantity".
        unit = money_round(unit_price, currency)
        line_total = unit * quantity
        priced.append(
            LinePrice(
                unit_price=unit,
                quantity=quantity,
                total=line_total,
                tax_amount=tax_part(
                    line_total, rate=tax_rate, included=prices_include_tax, currency=currency
                ),
            )
        )
    subtotal = sum((line.total for line in priced), money_round(ZERO, currency))
    discount = voucher_discount(subtotal, voucher, currency=currency)
    shipping_total = (
        shipping_price(
            subtotal - discount, price=shipping, free_above=free_shipping_above, currency=currency
        )
        if priced
        else money_round(ZERO, currency)
    )
    taxable = subtotal - discount + shipping_total
    tax = tax_part(taxable, rate=tax_rate, included=prices_include_tax, currency=currency)
    total = taxable if prices_include_tax else taxable + tax
    return Totals(
        currency=currency,
        lines=tuple(priced),
        subtotal=subtotal,
        discount=discount,
        shipping=shipping_total,
        tax=tax,
        total=total,
        tax_rate=tax_rate,
        prices_include_tax=prices_include_tax,
    )
