from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.money import (
    MoneyError,
    currency_exponent,
    from_minor_units,
    money_format,
    money_round,
    to_minor_units,
)


def test_rounds_half_up_to_the_minor_unit():
    assert money_round(Decimal("1.005"), "EUR") == Decimal("1.01")
    assert money_round(Decimal("1.004"), "EUR") == Decimal("1.00")
    assert money_round(Decimal("-1.005"), "EUR") == Decimal("-1.01")
    assert money_round(Decimal("99.5"), "JPY") == Decimal("100")
    assert money_round(Decimal("1.0005"), "KWD") == Decimal("1.001")


def test_minor_units_round_trip():
    assert to_minor_units(Decimal("12.34"), "EUR") == 1234
    assert to_minor_units(Decimal("500"), "JPY") == 500
    assert from_minor_units(1234, "EUR") == Decimal("12.34")
    assert currency_exponent("usd") == 2


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", None, ""])
def test_refuses_what_is_not_a_finite_amount(bad):
    with pytest.raises(MoneyError):
        money_round(bad, "EUR")


def test_formats_for_people():
    assert money_format(Decimal("1234.5"), "EUR") == "€1,234.50"
    assert money_format(Decimal("-3"), "USD") == "-$3.00"
    assert money_format(Decimal("10"), "SEK") == "10.00 SEK"
    assert money_format(Decimal("1200"), "JPY") == "¥1,200"


@given(
    amounts=st.lists(
        st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False), max_size=30
    ),
    currency=st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_rounded_amounts_convert_to_minor_units_exactly(amounts, currency):
    total = sum((money_round(a, currency) for a in amounts), Decimal(0))
    units = sum(to_minor_units(a, currency) for a in amounts)
    assert from_minor_units(units, currency) == total
    assert money_round(total, currency) == total
