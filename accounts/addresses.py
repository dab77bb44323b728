"""Postal addresses: the countries the shop knows and how their postal codes look.

Shared by saved addresses (accounts) and checkout (orders): one rule for what a valid address is.
"""

import re

from django.core.exceptions import ValidationError

# ISO 3166-1 alpha-2 code -> (name, postal code pattern or None when the country has none).
COUNTRIES: dict[str, tuple[str, str | None]] = {
    "AT": ("Austria", r"\d{4}"),
    "BE": ("Belgium", r"\d{4}"),
    "CH": ("Switzerland", r"\d{4}"),
    "CZ": ("Czechia", r"\d{3} ?\d{2}"),
    "DE": ("Germany", r"\d{5}"),
    "DK": ("Denmark", r"\d{4}"),
    "ES": ("Spain", r"\d{5}"),
    "FI": ("Finland", r"\d{5}"),
    "FR": ("France", r"\d{5}"),
    "GB": ("United Kingdom", r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"),
    "IE": ("Ireland", r"[A-Z]\d[\dW] ?[A-Z\d]{4}"),
    "IT": ("Italy", r"\d{5}"),
    "LU": ("Luxembourg", r"\d{4}"),
    "NL": ("Netherlands", r"\d{4} ?[A-Z]{2}"),
    "NO": ("Norway", r"\d{4}"),
    "PL": ("Poland", r"\d{2}-\d{3}"),
    "PT": ("Portugal", r"\d{4}-\d{3}"),
    "SE": ("Sweden", r"\d{3} ?\d{2}"),
    "US": ("United States", r"\d{5}(-\d{4})?"),
    "CA": ("Canada", r"[A-Z]\d[A-Z] ?\d[A-Z]\d"),
    "AU": ("Australia", r"\d{4}"),
}

COUNTRY_CHOICES = sorted(
    ((code, name) for code, (name, _) in COUNTRIES.items()), key=lambda c: c[1]
)


def country_name(code: str) -> str:
    return COUNTRIES.get(code, (code, None))[0]


def postal_code_normalize(*, country: str, postal_code: str) -> str:
    """Return the postal code upper-cased and trimmed, or raise ValidationError if it does not
    look like one of the country's."""
    if country not in COUNTRIES:
        raise ValidationError({"country": "We do not ship to this country."})
    code = " ".join(postal_code.upper().split())
    pattern = COUNTRIES[country][1]
    if pattern and not re.fullmatch(pattern, code):
        raise ValidationError(
            {"postal_code": f"This is not a valid postal code for {country_name(country)}."}
        )
    return code
