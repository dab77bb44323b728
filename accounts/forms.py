"""Forms of the account pages: a saved address."""

from django import forms
from django.core.exceptions import ValidationError

from accounts.addresses import COUNTRY_CHOICES, postal_code_normalize


def _text(autocomplete: str) -> forms.TextInput:
    return forms.TextInput(attrs={"autocomplete": autocomplete})


class AddressForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=150, widget=_text("name"))
    line1 = forms.CharField(
        label="Street and number", max_length=200, widget=_text("address-line1")
    )
    line2 = forms.CharField(
        label="Apartment, floor, c/o (optional)", max_length=200, required=False,
        widget=_text("address-line2"),
    )  # fmt: skip
    postal_code = forms.CharField(label="Postal code", max_length=20, widget=_text("postal-code"))
    city = forms.CharField(label="City", max_length=100, widget=_text("address-level2"))
    country = forms.ChoiceField(
        label="Country", choices=[("", "Choose a country"), *COUNTRY_CHOICES],
        widget=forms.Select(attrs={"autocomplete": "country"}),
    )  # fmt: skip
    phone = forms.CharField(
        label="Phone (optional)", max_length=40, required=False,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}),
    )  # fmt: skip
    is_default = forms.BooleanField(label="Use as my default address", required=False)

    def clean(self) -> dict:
        cleaned = super().clean()
        country, postal_code = cleaned.get("country"), cleaned.get("postal_code")
        if country and postal_code:
            try:
                cleaned["postal_code"] = postal_code_normalize(
                    country=country, postal_code=postal_code
                )
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned

    @classmethod
    def initial_from(cls, address) -> dict:
        return {name: getattr(address, name) for name in cls.base_fields}
