"""Demo checkout settings: shipping methods, tax rates and a welcome voucher (never in
production; see catalog.demo for the catalog itself).

Idempotent: rows are found by name, country or code and left as they are when they exist.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from orders.models import ShippingMethod, TaxRate, Voucher

# Standard VAT rates of the countries the demo ships to (percent).
DEMO_TAX_RATES = {
    "AT": "20", "BE": "21", "CH": "8.1", "CZ": "21", "DE": "19", "DK": "25", "ES": "21",
    "FI": "25.5", "FR": "20", "GB": "20", "IE": "23", "IT": "22", "LU": "17", "NL": "21",
    "NO": "25", "PL": "23", "PT": "23", "SE": "25",
}  # fmt: skip
EU_COUNTRIES = sorted(set(DEMO_TAX_RATES) - {"CH", "GB", "NO"})
DEMO_SHIPPING = (
    ("Standard (3–5 days)", "4.95", "75.00", []),
    ("Express (next day)", "12.90", None, EU_COUNTRIES),
)
DEMO_VOUCHER = "WELCOME10"


@dataclass(frozen=True)
class DemoCheckoutResult:
    shipping_methods_created: int
    tax_rates_created: int
    vouchers_created: int


@transaction.atomic
def demo_checkout_seed() -> DemoCheckoutResult:
    """Create the demo shipping methods, tax rates and voucher that are missing."""
    if settings.IS_PRODUCTION:
        raise RuntimeError("Demo data is never written in production.")
    methods = 0
    for position, (name, price, free_above, countries) in enumerate(DEMO_SHIPPING):
        _, created = ShippingMethod.objects.get_or_create(
            name=name,
            defaults={
                "price": Decimal(price),
                "free_above": Decimal(free_above) if free_above else None,
                "countries": countries,
                "position": position,
            },
        )
        methods += created
    rates = 0
    for country, rate in DEMO_TAX_RATES.items():
        _, created = TaxRate.objects.get_or_create(
            country=country, defaults={"rate": Decimal(rate)}
        )
        rates += created
    _, voucher_created = Voucher.objects.get_or_create(
        code=DEMO_VOUCHER,
        defaults={
            "kind": Voucher.Kind.PERCENTAGE,
            "value": Decimal("10"),
            "min_spend": Decimal("30"),
            "per_customer_limit": 1,
        },
    )
    return DemoCheckoutResult(methods, rates, int(voucher_created))
