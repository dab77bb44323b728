"""Account pages: the overview and the customer's saved addresses. Thin: parse, call one
service or selector, render."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import selectors, services
from accounts.forms import AddressForm
from accounts.models import Address


@require_safe
@login_required
def account_overview(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/account_overview.html")


def _own_address(request: HttpRequest, address_id: int) -> Address:
    try:
        return selectors.address_get_for_user(user=request.user, address_id=address_id)
    except Address.DoesNotExist:
        raise Http404("No such address.") from None


@require_safe
@login_required
def address_list(request: HttpRequest) -> HttpResponse:
    addresses = list(selectors.address_list_for_user(user=request.user))
    return render(request, "accounts/address_list.html", {"addresses": addresses})


def _address_save(request: HttpRequest, form: AddressForm, address: Address | None) -> bool:
    """Call the create or update service with the form's values; report its refusal on the
    form. Return whether it was saved."""
    if not form.is_valid():
        return False
    try:
        if address is None:
            services.address_create(user=request.user, **form.cleaned_data)
        else:
            services.address_update(address=address, **form.cleaned_data)
    except ValidationError as error:
        form.add_error(None, error)
        return False
    return True


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def address_create(request: HttpRequest) -> HttpResponse:
    form = AddressForm(request.POST or None)
    if request.method == "POST" and _address_save(request, form, None):
        messages.success(request, "Address saved.")
        return redirect("accounts:address-list")
    return render(request, "accounts/address_form.html", {"form": form, "address": None})


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def address_update(request: HttpRequest, address_id: int) -> HttpResponse:
    address = _own_address(request, address_id)
    if request.method == "POST":
        form = AddressForm(request.POST)
        if _address_save(request, form, address):
            messages.success(request, "Address updated.")
            return redirect("accounts:address-list")
    else:
        form = AddressForm(initial=AddressForm.initial_from(address))
    return render(request, "accounts/address_form.html", {"form": form, "address": address})


@require_POST
@login_required
def address_delete(request: HttpRequest, address_id: int) -> HttpResponse:
    address = _own_address(request, address_id)
    services.address_delete(address=address)
    messages.success(request, "Address deleted.")
    return redirect("accounts:address-list")


@require_POST
@login_required
def address_set_default(request: HttpRequest, address_id: int) -> HttpResponse:
    address = _own_address(request, address_id)
    services.address_set_default(address=address)
    messages.success(request, "This is now your default address.")
    return redirect("accounts:address-list")
