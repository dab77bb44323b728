"""Money helpers: one rounding rule, and the conversion to integer minor units.

Amounts are always `Decimal`. Rounding is half-up to the currency's minor unit; every total in
the shop goes through `money_round`. Integer minor units are used only at a payment provider's
edge. This module imports no app.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units for the currencies we expect to meet; anything else has two decimals.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "JOD": 3}
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}


class MoneyError(ValueError):
    """An amount that is not a finite decimal number."""


def currency_exponent(currency: str) -> int:
    """Return how many decimal places the currency's minor unit has."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def money_round(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round an amount half-up to the currency's minor unit."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise MoneyError(f"Not an amount: {amount!r}") from exc
    if not value.is_finite():
        raise MoneyError(f"Not a finite amount: {amount!r}")
    quantum = Decimal(1).scaleb(-currency_exponent(currency))
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """Convert an amount to an integer number of minor units (cents), rounding first."""
    return int(money_round(amount, currency).scaleb(currency_exponent(currency)))


def from_minor_units(units: int, currency: str) -> Decimal:
    """Convert an integer number of minor units back to a Decimal amount."""
    return Decimal(int(units)).scaleb(-currency_exponent(currency))


def money_format(amount: Decimal, currency: str) -> str:
    """Format an amount for people: '€1,234.50', or '1,234.50 SEK' for unknown symbols."""
    rounded = money_round(amount, currency)
    text = f"{abs(rounded):,.{currency_exponent(currency)}f}"
    sign = "-" if rounded < 0 else ""
    symbol = _SYMBOLS.get(currency.upper())
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"
