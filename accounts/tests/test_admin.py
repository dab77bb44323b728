"""The back office for accounts: a customer's saved addresses on their user page."""

import re

import pytest
from django.contrib.auth.models import Permission

from accounts.models import Address, User
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

USERS = "/admin/accounts/user/"


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner@example.com", "pw"))
    return client


@pytest.fixture
def support_client(client, django_user_model):
    """Staff who look after customers: they may change accounts and their addresses."""
    user = django_user_model.objects.create_user("support@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts"))
    client.force_login(user)
    return client


@pytest.fixture(params=["superuser", "support"])
def accounts_admin_client(request):
    return request.getfixturevalue(f"{request.param}_client")


def _address(user: User, **fields) -> Address:
    values = {
        "full_name": "Ada Customer",
        "line1": "Hauptstraße 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
        **fields,
    }
    return Address.objects.create(user=user, **values)


def _user_form(user: User, addresses: list[Address], rows: list[dict]) -> dict:
    """Return the POST data of the user page: the account and its address rows."""
    data = {
        "email": user.email,
        "full_name": user.full_name,
        "is_active": "on",
        "addresses-TOTAL_FORMS": str(len(rows)),
        "addresses-INITIAL_FORMS": str(len(addresses)),
        "addresses-MIN_NUM_FORMS": "0",
        "addresses-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, row in enumerate(rows):
        existing = addresses[index] if index < len(addresses) else None
        values = {
            "id": str(existing.pk) if existing else "",
            "user": str(user.pk),
            "full_name": existing.full_name if existing else "",
            "line1": existing.line1 if existing else "",
            "line2": existing.line2 if existing else "",
            "postal_code": existing.postal_code if existing else "",
            "city": existing.city if existing else "",
            "country": existing.country if existing else "",
            "phone": existing.phone if existing else "",
            **row,
        }
        data.update({f"addresses-{index}-{key}": value for key, value in values.items()})
    return data


def _html(response) -> str:
    return re.sub(r"\s*\n\s*", "", response.content.decode())


def test_staff_without_account_permissions_cannot_see_addresses(client, django_user_model):
    customer = UserFactory()
    _address(customer)
    clerk = django_user_model.objects.create_user("clerk@example.com", "pw", is_staff=True)
    client.force_login(clerk)

    assert client.get(f"{USERS}{customer.pk}/change/").status_code == 403


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    customer = UserFactory()

    response = client.get(f"{USERS}{customer.pk}/change/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_user_page_lists_the_customers_addresses_default_first(accounts_admin_client):
    customer = UserFactory()
    _address(customer, line1="Nebenweg 9", is_default=False)
    _address(customer, line1="Hauptstraße 1", is_default=True)
    _address(UserFactory(), line1="Somebody Else 3")

    response = accounts_admin_client.get(f"{USERS}{customer.pk}/change/")

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert [form.instance.line1 for form in formset.forms] == ["Hauptstraße 1", "Nebenweg 9"]
    content = _html(response)
    assert 'value="Hauptstraße 1"' in content
    assert "Somebody Else 3" not in content
    # Which address is the default is the customer's choice: shown, not editable.
    assert 'name="addresses-0-is_default"' not in content
    assert '<td class="field-is_default"><p><img src="/static/admin/img/icon-yes.svg"' in content


def test_the_add_user_page_has_no_address_rows(accounts_admin_client):
    response = accounts_admin_client.get(f"{USERS}add/")

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"] == []
    assert "addresses-TOTAL_FORMS" not in response.content.decode()


def test_correcting_an_address_normalises_the_postal_code(accounts_admin_client):
    customer = UserFactory(full_name="Ada Customer")
    address = _address(customer, country="NL", postal_code="1011 AB", city="Amsterdam")

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/",
        _user_form(customer, [address], [{"postal_code": " 1012ab ", "line1": "Damrak 1"}]),
    )

    assert response.status_code == 302, response.context["errors"]
    address.refresh_from_db()
    assert (address.line1, address.postal_code, address.city) == ("Damrak 1", "1012AB", "Amsterdam")


def test_a_postal_code_that_does_not_fit_the_country_is_refused(accounts_admin_client):
    customer = UserFactory()
    address = _address(customer)

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/",
        _user_form(customer, [address], [{"postal_code": "ABC"}]),
    )

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors == [{"postal_code": ["This is not a valid postal code for Germany."]}]
    address.refresh_from_db()
    assert address.postal_code == "10115"


def test_an_unknown_country_is_refused(accounts_admin_client):
    customer = UserFactory()
    address = _address(customer)

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/", _user_form(customer, [address], [{"country": "XX"}])
    )

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors == [
        {"country": ["Select a valid choice. XX is not one of the available choices."]}
    ]
    address.refresh_from_db()
    assert address.country == "DE"


def test_support_can_add_an_address_and_it_is_not_made_the_default(accounts_admin_client):
    customer = UserFactory()
    default = _address(customer, is_default=True)
    new_row = {
        "full_name": "Ada Customer",
        "line1": "Rue de Rivoli 5",
        "postal_code": "75001",
        "city": "Paris",
        "country": "FR",
        "is_default": "on",  # ignored: the field is read-only
    }

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/", _user_form(customer, [default], [{}, new_row])
    )

    assert response.status_code == 302, response.context["errors"]
    assert list(
        customer.addresses.order_by("id").values_list("city", "postal_code", "is_default")
    ) == [("Berlin", "10115", True), ("Paris", "75001", False)]


def test_support_can_delete_an_address(accounts_admin_client):
    customer = UserFactory()
    keep = _address(customer, is_default=True)
    old = _address(customer, line1="Nebenweg 9")

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/",
        _user_form(customer, [keep, old], [{}, {"DELETE": "on"}]),
    )

    assert response.status_code == 302, response.context["errors"]
    assert list(customer.addresses.values_list("pk", flat=True)) == [keep.pk]


def test_the_first_address_support_adds_becomes_the_default(accounts_admin_client):
    customer = UserFactory()
    row = {
        "full_name": "Ada Customer",
        "line1": "Damrak 1",
        "postal_code": "1012ab",
        "city": "Amsterdam",
        "country": "NL",
    }

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/", _user_form(customer, [], [row])
    )

    assert response.status_code == 302, response.context["errors"]
    assert list(customer.addresses.values_list("line1", "postal_code", "is_default")) == [
        ("Damrak 1", "1012AB", True)
    ]


def test_deleting_the_default_address_passes_the_default_on(accounts_admin_client):
    customer = UserFactory()
    default = _address(customer, is_default=True)
    other = _address(customer, line1="Nebenweg 9")

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/",
        _user_form(customer, [default, other], [{"DELETE": "on"}, {}]),
    )

    assert response.status_code == 302, response.context["errors"]
    assert list(customer.addresses.values_list("line1", "is_default")) == [("Nebenweg 9", True)]


def test_editing_an_address_keeps_which_one_is_the_default(accounts_admin_client):
    customer = UserFactory()
    default = _address(customer, is_default=True)
    other = _address(customer, line1="Nebenweg 9")

    response = accounts_admin_client.post(
        f"{USERS}{customer.pk}/change/",
        _user_form(customer, [default, other], [{}, {"line1": "Nebenweg 10"}]),
    )

    assert response.status_code == 302, response.context["errors"]
    assert list(customer.addresses.order_by("id").values_list("line1", "is_default")) == [
        ("Hauptstraße 1", True),
        ("Nebenweg 10", False),
    ]
