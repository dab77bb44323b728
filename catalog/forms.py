"""Forms that parse what shoppers type into the URL: filters, sorting and search."""

import unicodedata
from decimal import Decimal

from django import forms
from django.conf import settings

from catalog.selectors import PRODUCT_SORTS

MAX_PRICE = Decimal("9999999999.99")


def _printable(text: str) -> str:
    """Drop control characters (NUL among them), which no search term needs."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in " \t")


class ProductFilterForm(forms.Form):
    """Sorting and filters of a category page; a bad value is reported and ignored."""

    sort = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in PRODUCT_SORTS.items()], required=False
    )
    min_price = forms.DecimalField(
        label="Min price", required=False, min_value=0, max_value=MAX_PRICE, decimal_places=2
    )
    max_price = forms.DecimalField(
        label="Max price", required=False, min_value=0, max_value=MAX_PRICE, decimal_places=2
    )
    in_stock = forms.BooleanField(label="In stock only", required=False)

    def clean(self) -> dict:
        cleaned = super().clean()
        low, high = cleaned.get("min_price"), cleaned.get("max_price")
        if low is not None and high is not None and low > high:
            self.add_error("max_price", "The maximum price is below the minimum price.")
        return cleaned

    def filters(self) -> dict:
        """Return the valid values as keyword arguments for `catalog.selectors.product_list`."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "sort": data.get("sort") or "name",
            "min_price": data.get("min_price"),
            "max_price": data.get("max_price") if "max_price" not in self.errors else None,
            "in_stock_only": bool(data.get("in_stock")),
        }


class SearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, strip=True)

    def query(self) -> str:
        """Return the cleaned search text: printable, at most SHOP_SEARCH_MAX_LENGTH long."""
        self.is_valid()
        text = _printable(self.cleaned_data.get("q") or "")
        return " ".join(text.split())[: settings.SHOP_SEARCH_MAX_LENGTH].strip()
