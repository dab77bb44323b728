"""orders.pricing: worked examples, then properties that must hold for any basket."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders.pricing import VoucherTerms, shipping_price, tax_part, totals_compute, voucher_discount
from shop.money import currency_exponent, money_round

D = Decimal


def _quantized(amount: Decimal, currency: str) -> bool:
    """True when the amount carries exactly the currency's minor unit (e.g. 1.50, not 1.5)."""
    return amount.as_tuple().exponent == -currency_exponent(currency)


# --- Worked examples -------------------------------------------------------------------------


def test_tax_included_is_the_part_of_the_total_that_is_tax():
    totals = totals_compute(
        lines=[(D("19.99"), 2)], currency="EUR", tax_rate=D("19"), shipping=D("4.95")
    )

    assert totals.subtotal == D("39.98")
    assert totals.discount == D("0.00")
    assert totals.shipping == D("4.95")
    # 44.93 - 44.93 / 1.19 = 7.1737
    assert totals.tax == D("7.17")
    assert totals.total == D("44.93")
    assert totals.lines[0].tax_amount == D("6.38")  # 39.98 - 39.98 / 1.19 = 6.3834


def test_tax_added_on_top_is_rate_times_taxable_amount():
    totals = totals_compute(
        lines=[(D("19.99"), 2)],
        currency="EUR",
        tax_rate=D("19"),
        prices_include_tax=False,
        shipping=D("4.95"),
    )

    assert totals.tax == D("8.54")  # 44.93 * 0.19 = 8.5367
    assert totals.total == D("53.47")
    assert totals.prices_include_tax is False


def test_percentage_discount_rounds_half_up_to_the_cent():
    terms = VoucherTerms(kind="percentage", value=D("10"))

    totals = totals_compute(lines=[(D("0.05"), 1)], currency="EUR", voucher=terms)

    assert totals.discount == D("0.01")  # 0.005 rounds up
    assert totals.total == D("0.04")


def test_fixed_discount_never_exceeds_the_goods():
    terms = VoucherTerms(kind="fixed", value=D("50.00"))

    totals = totals_compute(
        lines=[(D("12.00"), 1)], currency="EUR", voucher=terms, shipping=D("4.95")
    )

    assert totals.discount == D("12.00")
    assert totals.total == D("4.95")


def test_discount_is_zero_below_the_minimum_spend_and_applies_at_it():
    terms = VoucherTerms(kind="fixed", value=D("5.00"), min_spend=D("20.00"))

    below = totals_compute(lines=[(D("19.99"), 1)], currency="EUR", voucher=terms)
    at = totals_compute(lines=[(D("10.00"), 2)], currency="EUR", voucher=terms)

    assert below.discount == D("0.00")
    assert below.total == D("19.99")
    assert at.discount == D("5.00")
    assert at.total == D("15.00")


def test_a_voucher_with_a_negative_value_gives_no_discount():
    terms = VoucherTerms(kind="fixed", value=D("-5.00"))

    totals = totals_compute(lines=[(D("10.00"), 1)], currency="EUR", voucher=terms)

    assert totals.discount == D("0.00")
    assert totals.total == D("10.00")


@pytest.mark.parametrize(
    ("goods", "expected_shipping"),
    [(D("74.99"), D("4.95")), (D("75.00"), D("0.00")), (D("75.01"), D("0.00"))],
)
def test_shipping_is_free_from_the_threshold_on(goods, expected_shipping):
    totals = totals_compute(
        lines=[(goods, 1)], currency="EUR", shipping=D("4.95"), free_shipping_above=D("75.00")
    )

    assert totals.shipping == expected_shipping
    assert totals.total == goods + expected_shipping


def test_free_shipping_threshold_counts_the_goods_after_discount():
    terms = VoucherTerms(kind="percentage", value=D("10"))

    totals = totals_compute(
        lines=[(D("80.00"), 1)],
        currency="EUR",
        shipping=D("4.95"),
        free_shipping_above=D("75.00"),
        voucher=terms,
    )

    assert totals.discount == D("8.00")
    assert totals.shipping == D("4.95")  # 72.00 after discount is below 75.00
    assert totals.total == D("76.95")


def test_an_empty_basket_costs_nothing_not_even_shipping():
    totals = totals_compute(lines=[], currency="EUR", tax_rate=D("19"), shipping=D("4.95"))

    assert (totals.subtotal, totals.discount, totals.shipping, totals.tax, totals.total) == (
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )
    assert totals.lines == ()


def test_yen_amounts_have_no_decimals():
    totals = totals_compute(
        lines=[(D("1980"), 3)], currency="JPY", tax_rate=D("10"), shipping=D("500")
    )

    assert totals.subtotal == D("5940")
    assert totals.shipping == D("500")
    assert totals.tax == D("585")  # 6440 - 6440 / 1.1 = 585.45
    assert totals.total == D("6440")
    assert all(
        _quantized(amount, "JPY")
        for amount in (totals.subtotal, totals.discount, totals.shipping, totals.tax, totals.total)
    )


def test_line_total_is_the_shown_unit_price_times_the_quantity():
    # A price finer than the currency's minor unit: the customer sees ¥1 a piece, so three
    # pieces cost ¥3 (not round(1.5) = ¥2).
    totals = totals_compute(lines=[(D("0.5"), 3)], currency="JPY")

    assert totals.lines[0].unit_price == D("1")
    assert totals.lines[0].total == D("3")
    assert totals.subtotal == D("3")


def test_tax_part_is_zero_without_a_rate_or_an_amount():
    assert tax_part(D("10.00"), rate=D("0"), included=True, currency="EUR") == D("0.00")
    assert tax_part(D("0.00"), rate=D("19"), included=False, currency="EUR") == D("0.00")
    assert tax_part(D("-5.00"), rate=D("19"), included=False, currency="EUR") == D("0.00")


def test_voucher_discount_without_terms_is_zero():
    assert voucher_discount(D("10.00"), None, currency="EUR") == D("0.00")


def test_shipping_price_is_rounded_to_the_minor_unit():
    assert shipping_price(D("1"), price=D("4.955"), free_above=None, currency="EUR") == D("4.96")


# --- Properties ------------------------------------------------------------------------------

CURRENCIES = ["EUR", "USD", "JPY", "BHD"]

prices = st.decimals(min_value=0, max_value=D("99999.99"), places=3)
quantities = st.integers(min_value=1, max_value=99)
rates = st.decimals(min_value=0, max_value=100, places=2)
vouchers = st.one_of(
    st.none(),
    st.builds(
        VoucherTerms,
        kind=st.just("percentage"),
        value=st.decimals(min_value=0, max_value=100, places=2),
        min_spend=st.decimals(min_value=0, max_value=500, places=2),
    ),
    st.builds(
        VoucherTerms,
        kind=st.just("fixed"),
        value=st.decimals(min_value=0, max_value=2000, places=2),
        min_spend=st.decimals(min_value=0, max_value=500, places=2),
    ),
)
baskets = st.fixed_dictionaries(
    {
        "lines": st.lists(st.tuples(prices, quantities), max_size=8),
        "currency": st.sampled_from(CURRENCIES),
        "tax_rate": rates,
        "prices_include_tax": st.booleans(),
        "shipping": st.decimals(min_value=0, max_value=100, places=2),
        "free_shipping_above": st.one_of(
            st.none(), st.decimals(min_value=0, max_value=1000, places=2)
        ),
        "voucher": vouchers,
    }
)


@settings(max_examples=400, deadline=None)
@given(basket=baskets)
def test_parts_add_up_to_the_total_exactly(basket):
    totals = totals_compute(**basket)

    tax_on_top = D(0) if totals.prices_include_tax else totals.tax
    assert totals.total == totals.subtotal - totals.discount + totals.shipping + tax_on_top
    assert totals.subtotal == sum((line.total for line in totals.lines), D(0))
    for line in totals.lines:
        assert line.total == line.unit_price * line.quantity


@settings(max_examples=400, deadline=None)
@given(basket=baskets)
def test_every_amount_is_quantized_to_the_minor_unit(basket):
    totals = totals_compute(**basket)
    currency = basket["currency"]

    amounts = [totals.subtotal, totals.discount, totals.shipping, totals.tax, totals.total]
    for line in totals.lines:
        amounts += [line.unit_price, line.total, line.tax_amount]
    assert all(_quantized(amount, currency) for amount in amounts), amounts


@settings(max_examples=400, deadline=None)
@given(basket=baskets)
def test_nothing_is_negative_and_the_discount_never_exceeds_the_goods(basket):
    totals = totals_compute(**basket)

    assert D(0) <= totals.discount <= totals.subtotal
    assert totals.shipping >= 0
    assert totals.tax >= 0
    assert totals.total >= 0
    for line in totals.lines:
        assert 0 <= line.tax_amount <= line.total


@settings(max_examples=400, deadline=None)
@given(basket=baskets)
def test_tax_is_the_included_share_or_the_rate_on_top(basket):
    totals = totals_compute(**basket)
    currency, rate = basket["currency"], basket["tax_rate"]
    taxable = totals.subtotal - totals.discount + totals.shipping

    if totals.prices_include_tax:
        assert totals.total == taxable
        assert totals.tax <= totals.total
        # The included share is rate / (100 + rate) of the amount, to within rounding.
        assert (
            abs(totals.tax - taxable * rate / (100 + rate))
            <= D(1).scaleb(-currency_exponent(currency)) / 2
        )
    else:
        assert totals.tax == money_round(taxable * rate / 100, currency)
        assert totals.total == taxable + totals.tax


@settings(max_examples=400, deadline=None)
@given(basket=baskets)
def test_shipping_is_charged_unless_the_threshold_is_reached(basket):
    totals = totals_compute(**basket)
    threshold = basket["free_shipping_above"]

    reached = threshold is not None and totals.subtotal - totals.discount >= threshold
    if not totals.lines or reached:
        assert totals.shipping == 0
    else:
        assert totals.shipping == money_round(basket["shipping"], basket["currency"])


@settings(max_examples=400, deadline=None)
@given(basket=baskets)
def test_the_discount_follows_the_voucher_terms(basket):
    totals = totals_compute(**basket)
    terms, currency = basket["voucher"], basket["currency"]

    if terms is None or totals.subtotal == 0 or totals.subtotal < terms.min_spend:
        assert totals.discount == 0
    elif terms.kind == "percentage":
        assert totals.discount == money_round(totals.subtotal * terms.value / 100, currency)
    else:
        assert totals.discount == money_round(min(terms.value, totals.subtotal), currency)
