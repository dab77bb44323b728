"""Forms of the cart and checkout pages: they parse what shoppers send; the services decide."""

from django import forms
from django.core.exceptions import ValidationError

from accounts.addresses import COUNTRY_CHOICES, country_name, postal_code_normalize
from orders.models import ShippingMethod

NEW_ADDRESS = "new"
ADDRESS_FIELDS = ("full_name", "line1", "line2", "postal_code", "city", "country", "phone")
REQUIRED_ADDRESS_FIELDS = ("full_name", "line1", "postal_code", "city", "country")


def _text(autocomplete: str, **attrs) -> forms.TextInput:
    return forms.TextInput(attrs={"autocomplete": autocomplete, **attrs})


class CheckoutForm(forms.Form):
    """Contact, shipping address (a saved one or a new one), shipping method and voucher."""

    email = forms.EmailField(
        label="Email", max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="We send the order confirmation here.",
    )  # fmt: skip
    address_choice = forms.ChoiceField(label="Ship to", required=False)
    full_name = forms.CharField(
        label="Full name", max_length=150, required=False, widget=_text("name")
    )
    line1 = forms.CharField(
        label="Street and number", max_length=200, required=False, widget=_text("address-line1")
    )
    line2 = forms.CharField(
        label="Apartment, floor, c/o (optional)", max_length=200, required=False,
        widget=_text("address-line2"),
    )  # fmt: skip
    postal_code = forms.CharField(
        label="Postal code", max_length=20, required=False, widget=_text("postal-code")
    )
    city = forms.CharField(
        label="City", max_length=100, required=False, widget=_text("address-level2")
    )
    country = forms.ChoiceField(
        label="Country", required=False, choices=[("", "Choose a country"), *COUNTRY_CHOICES],
        widget=forms.Select(attrs={"autocomplete": "country"}),
    )  # fmt: skip
    phone = forms.CharField(
        label="Phone (optional)", max_length=40, required=False,
        widget=_text("tel", type="tel"),
    )  # fmt: skip
    save_address = forms.BooleanField(label="Save this address to my account", required=False)
    shipping_method = forms.ChoiceField(
        label="Shipping", error_messages={"required": "Choose how we ship your order."}
    )
    voucher_code = forms.CharField(
        label="Voucher code (optional)", max_length=40, required=False,
        widget=_text("off", autocapitalize="characters", spellcheck="false"),
    )  # fmt: skip

    def __init__(
        self, *args, addresses, methods: list[ShippingMethod], can_save_address: bool, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = list(addresses)
        self.methods = list(methods)
        self.fields["address_choice"].choices = [
            *((str(address.pk), str(address)) for address in self.addresses),
            (NEW_ADDRESS, "A new address"),
        ]
        self.fields["shipping_method"].choices = [(str(m.pk), m.name) for m in self.methods]
        if not can_save_address:
            del self.fields["save_address"]

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_voucher_code(self) -> str:
        return " ".join(self.cleaned_data["voucher_code"].split()).upper()

    def clean(self) -> dict:
        cleaned = super().clean()
        choice = cleaned.get("address_choice") or NEW_ADDRESS
        saved = next((a for a in self.addresses if str(a.pk) == choice), None)
        if "address_choice" in self.errors:
            address = None  # an address that is not theirs: that error is the one to show
        elif saved is not None:
            address = saved.as_snapshot()
            cleaned["save_address"] = False  # it is saved already
        else:
            address = self._new_address(cleaned)
        cleaned["address"] = address
        method = next(
            (m for m in self.methods if str(m.pk) == cleaned.get("shipping_method")), None
        )
        cleaned["method"] = method
        country = (address or {}).get("country")
        if method is not None and country and not method.ships_to(country):
            self.add_error(
                "shipping_method",
                f"{method.name} does not ship to {country_name(country)}: choose another way.",
            )
        return cleaned

    def _new_address(self, cleaned: dict) -> dict | None:
        missing = [name for name in REQUIRED_ADDRESS_FIELDS if not cleaned.get(name)]
        for name in missing:
            if name not in self.errors:
                self.add_error(name, "This field is required.")
        if missing or any(name in self.errors for name in ADDRESS_FIELDS):
            return None
        try:
            cleaned["postal_code"] = postal_code_normalize(
                country=cleaned["country"], postal_code=cleaned["postal_code"]
            )
        except ValidationError as error:
            self.add_error(None, error)
            return None
        return {name: cleaned.get(name, "").strip() for name in ADDRESS_FIELDS}

    def checkout_data(self) -> dict:
        """Return the details as the cart keeps them (see `services.cart_checkout_save`)."""
        return {
            "address": self.cleaned_data["address"],
            "shipping_method_id": self.cleaned_data["method"].pk,
            "voucher_code": self.cleaned_data["voucher_code"],
        }
