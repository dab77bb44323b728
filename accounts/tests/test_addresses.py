"""Saved addresses: the services keep exactly one default, and the pages show and change only the
customer's own addresses."""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import selectors, services
from accounts.models import Address
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# With database sessions a request reads its session with one query; with cached sessions
# (Redis in CI) it usually reads none.
SESSION_QUERIES = 1 if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db" else 0
ADDRESS_LIST_QUERIES = 4  # user, addresses, header cart count, category tree

INVALID_CHOICE = "Select a valid choice. {} is not one of the available choices."

HOME = {
    "full_name": "Ada Customer",
    "line1": "Hauptstraße 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
WORK = {
    "full_name": "Ada at work",
    "line1": "Keizersgracht 1",
    "city": "Amsterdam",
    "postal_code": "1015cj",
    "country": "NL",
}


def _defaults(user) -> list[str]:
    return list(Address.objects.filter(user=user, is_default=True).values_list("city", flat=True))


# --- Services ------------------------------------------------------------------------------------


def test_first_address_becomes_the_default_and_the_next_does_not():
    user = UserFactory()

    home = services.address_create(user=user, **HOME)
    work = services.address_create(user=user, **WORK)

    assert (home.is_default, work.is_default) == (True, False)
    assert work.postal_code == "1015CJ"
    assert _defaults(user) == ["Berlin"]


def test_postal_codes_are_normalised():
    address = services.address_create(user=UserFactory(), **{**WORK, "postal_code": "  1015   cj "})

    assert address.postal_code == "1015 CJ"


def test_a_new_default_takes_over():
    user = UserFactory()
    services.address_create(user=user, **HOME)

    services.address_create(user=user, is_default=True, **WORK)

    assert _defaults(user) == ["Amsterdam"]


def test_set_default_moves_the_default():
    user = UserFactory()
    services.address_create(user=user, **HOME)
    work = services.address_create(user=user, **WORK)

    services.address_set_default(address=work)

    assert _defaults(user) == ["Amsterdam"]


def test_deleting_the_default_passes_it_to_another_address():
    user = UserFactory()
    home = services.address_create(user=user, **HOME)
    services.address_create(user=user, **WORK)

    services.address_delete(address=home)

    assert _defaults(user) == ["Amsterdam"]
    assert Address.objects.filter(user=user).count() == 1


def test_deleting_the_last_address_leaves_none():
    user = UserFactory()
    home = services.address_create(user=user, **HOME)

    services.address_delete(address=home)

    assert not Address.objects.filter(user=user).exists()


def test_update_keeps_the_default_until_another_is_chosen():
    user = UserFactory()
    home = services.address_create(user=user, **HOME)

    updated = services.address_update(address=home, is_default=False, **{**HOME, "city": "Bonn"})

    assert (updated.city, updated.is_default) == ("Bonn", True)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"postal_code": "1234"},
            {"postal_code": ["This is not a valid postal code for Germany."]},
        ),
        ({"country": "XX"}, {"country": ["We do not ship to this country."]}),
    ],
)
def test_invalid_addresses_are_refused_and_nothing_is_written(fields, error):
    user = UserFactory()

    with pytest.raises(ValidationError) as refused:
        services.address_create(user=user, **{**HOME, **fields})

    assert refused.value.message_dict == error
    assert not Address.objects.exists()


def test_selectors_see_only_the_customers_own_addresses():
    mine, theirs = UserFactory(), UserFactory()
    home = services.address_create(user=mine, **HOME)
    services.address_create(user=theirs, **WORK)

    assert list(selectors.address_list_for_user(user=mine)) == [home]
    with pytest.raises(Address.DoesNotExist):
        selectors.address_get_for_user(user=theirs, address_id=home.pk)
    with pytest.raises(Address.DoesNotExist):
        selectors.address_get_for_user(user=mine, address_id="abc")


# --- Pages ---------------------------------------------------------------------------------------


def test_overview_links_to_orders_and_addresses(client):
    client.force_login(UserFactory())

    html = client.get(reverse("accounts:overview")).content.decode()

    assert f'href="{reverse("orders:account-orders")}">My orders</a>' in html
    assert f'href="{reverse("accounts:address-list")}">Addresses</a>' in html


def test_address_list_shows_only_the_customers_addresses(client, django_assert_num_queries):
    user = UserFactory()
    services.address_create(user=user, **HOME)
    services.address_create(user=user, **WORK)
    services.address_create(user=UserFactory(), **{**HOME, "full_name": "Somebody Else"})
    client.force_login(user)

    with django_assert_num_queries(SESSION_QUERIES + ADDRESS_LIST_QUERIES):
        response = client.get(reverse("accounts:address-list"))

    html = response.content.decode()
    assert "Hauptstraße 1" in html and "Keizersgracht 1" in html
    assert "Somebody Else" not in html
    assert html.count("Make default") == 1


def test_add_an_address(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("accounts:address-create"), {**HOME, "postal_code": " 10115 "})

    assert response["Location"] == reverse("accounts:address-list")
    address = Address.objects.get(user=user)
    assert (address.postal_code, address.is_default, address.get_country_display()) == (
        "10115",
        True,
        "Germany",
    )


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"postal_code": "ABC"}, "postal_code", "This is not a valid postal code for Germany."),
        ({"country": ""}, "country", "This field is required."),
        ({"country": "XX"}, "country", INVALID_CHOICE.format("XX")),
        ({"full_name": ""}, "full_name", "This field is required."),
        ({"city": "x" * 101}, "city", "Ensure this value has at most 100 characters (it has 101)."),
    ],
)  # fmt: skip
def test_bad_address_is_reported_and_not_saved(client, fields, field, error):
    client.force_login(UserFactory())

    response = client.post(reverse("accounts:address-create"), {**HOME, **fields})

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [error]
    assert not Address.objects.exists()


def test_edit_an_address(client):
    user = UserFactory()
    home = services.address_create(user=user, **HOME)
    client.force_login(user)

    form = client.get(reverse("accounts:address-update", args=[home.pk]))
    response = client.post(
        reverse("accounts:address-update", args=[home.pk]), {**WORK, "full_name": "Ada Moved"}
    )

    assert form.context["form"]["city"].value() == "Berlin"
    assert response["Location"] == reverse("accounts:address-list")
    home.refresh_from_db()
    assert (home.full_name, home.city, home.postal_code, home.is_default) == (
        "Ada Moved",
        "Amsterdam",
        "1015CJ",
        True,
    )


def test_make_default_and_delete(client):
    user = UserFactory()
    home = services.address_create(user=user, **HOME)
    work = services.address_create(user=user, **WORK)
    client.force_login(user)

    client.post(reverse("accounts:address-default", args=[work.pk]))
    defaults_after_switch = _defaults(user)
    client.post(reverse("accounts:address-delete", args=[work.pk]))

    assert defaults_after_switch == ["Amsterdam"]
    assert list(Address.objects.filter(user=user)) == [home]
    assert _defaults(user) == ["Berlin"]


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("accounts:address-update", "get"),
        ("accounts:address-update", "post"),
        ("accounts:address-delete", "post"),
        ("accounts:address-default", "post"),
    ],
)
def test_another_customers_address_is_not_found_and_not_changed(client, name, method):
    theirs = services.address_create(user=UserFactory(), **HOME)
    services.address_create(user=theirs.user, **WORK)
    client.force_login(UserFactory())

    response = getattr(client, method)(reverse(name, args=[theirs.pk]), {**WORK})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert (theirs.city, theirs.is_default) == ("Berlin", True)
    assert Address.objects.count() == 2


@pytest.mark.parametrize("name", ["accounts:address-delete", "accounts:address-default"])
def test_delete_and_make_default_refuse_get(client, name):
    user = UserFactory()
    home = services.address_create(user=user, **HOME)
    client.force_login(user)

    assert client.get(reverse(name, args=[home.pk])).status_code == 405
    assert Address.objects.filter(pk=home.pk).exists()


@pytest.mark.parametrize(
    "url", ["/account/addresses/", "/account/addresses/new/", "/account/addresses/1/"]
)
def test_address_pages_need_signing_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={url}"


def test_hostile_address_text_is_escaped(client):
    user = UserFactory()
    services.address_create(user=user, **{**HOME, "full_name": "<script>alert(1)</script>"})
    client.force_login(user)

    html = client.get(reverse("accounts:address-list")).content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
