"""Sign-up, sign-in, sign-out and password reset (django-allauth) on the shop's own templates."""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-77"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hash with MD5 here: the production hasher costs about half a second per password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _session_user_id(client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


def _signup(client, email: str, password: str = NEW_PASSWORD, password2: str | None = None):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": password, "password2": password2 or password},
    )


def _login(client, email: str, password: str):
    return client.post(reverse("account_login"), {"login": email, "password": password})


# --- Sign-up -------------------------------------------------------------------------------


def test_signup_page_renders_inside_the_shops_layout(client):
    response = client.get(reverse("account_signup"))

    assert response.status_code == 200
    content = response.content.decode()
    assert settings.SHOP_NAME in content
    assert 'class="brand"' in content
    assert 'id="site-search"' in content
    assert '<meta name="robots" content="noindex">' in content
    # allauth's form, with the fields our settings ask for and no username.
    assert 'name="email"' in content
    assert 'name="password1"' in content
    assert 'name="password2"' in content
    assert 'name="username"' not in content


def test_signup_creates_the_user_and_signs_them_in(client):
    response = _signup(client, "New.Customer@Example.com")

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:overview")
    user = User.objects.get()
    # allauth stores the whole address in lower case.
    assert user.email == "new.customer@example.com"
    assert user.check_password(NEW_PASSWORD)
    assert (user.is_staff, user.is_superuser, user.is_active) == (False, False, True)
    assert _session_user_id(client) == user.pk
    # Verification is optional: a confirmation email is sent, the customer is in already.
    assert [message.to for message in mail.outbox] == [["new.customer@example.com"]]


def test_signup_with_an_address_taken_in_another_case_is_refused(client):
    existing = UserFactory(email="ada@example.com")

    response = _signup(client, "ADA@Example.COM")

    assert response.status_code == 200
    assert "A user is already registered with this email address." in response.content.decode()
    assert list(User.objects.all()) == [existing]
    assert _session_user_id(client) is None
    assert mail.outbox == []


def test_signup_with_the_lowercase_address_of_a_mixed_case_user_is_refused(client):
    # Given a customer created outside allauth (createsuperuser, the admin, a shell)
    existing = User.objects.create_user("Ada@example.com", PASSWORD)
    client.raise_request_exception = False

    response = _signup(client, "ada@example.com")

    assert response.status_code == 200
    assert "A user is already registered with this email address." in response.content.decode()
    assert list(User.objects.all()) == [existing]


def test_signup_with_mismatched_passwords_creates_nothing(client):
    response = _signup(client, "new@example.com", password2="something-else-entirely-9")

    assert response.status_code == 200
    assert "You must type the same password each time." in response.content.decode()
    assert User.objects.count() == 0
    assert mail.outbox == []


def test_signup_with_a_weak_password_creates_nothing(client):
    response = _signup(client, "new@example.com", password="12345678")

    assert response.status_code == 200
    assert "This password is entirely numeric." in response.content.decode()
    assert User.objects.count() == 0


# --- Sign-in and sign-out ------------------------------------------------------------------


def test_login_page_renders_inside_the_shops_layout(client):
    response = client.get(reverse("account_login"))

    assert response.status_code == 200
    content = response.content.decode()
    assert settings.SHOP_NAME in content
    assert 'id="site-search"' in content
    assert 'name="login"' in content
    assert 'name="password"' in content


def test_login_with_email_signs_in_and_goes_to_the_account_page(client):
    user = UserFactory(email="ada@example.com")

    response = _login(client, "ada@example.com", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:overview")
    assert _session_user_id(client) == user.pk


def test_login_ignores_the_case_of_the_address(client):
    user = UserFactory(email="ada@example.com")

    response = _login(client, "ADA@EXAMPLE.com", PASSWORD)

    assert response.status_code == 302
    assert _session_user_id(client) == user.pk


def test_login_follows_a_safe_next_url_and_ignores_a_foreign_one(client):
    UserFactory(email="ada@example.com")

    safe = client.post(
        reverse("account_login") + "?next=/search/",
        {"login": "ada@example.com", "password": PASSWORD},
    )
    client.logout()
    foreign = client.post(
        reverse("account_login") + "?next=https://evil.example.net/",
        {"login": "ada@example.com", "password": PASSWORD},
    )

    assert safe["Location"] == "/search/"
    assert foreign["Location"] == reverse("accounts:overview")


def test_login_with_a_wrong_password_shows_an_error_and_signs_nobody_in(client):
    user = UserFactory(email="ada@example.com")
    last_login = user.last_login

    response = _login(client, "ada@example.com", "not-the-password")

    assert response.status_code == 200
    assert (
        "The email address and/or password you specified are not correct."
        in response.content.decode()
    )
    assert _session_user_id(client) is None
    user.refresh_from_db()
    assert user.last_login == last_login


def test_login_of_an_inactive_user_is_refused(client):
    UserFactory(email="ada@example.com", is_active=False)

    response = _login(client, "ada@example.com", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("account_inactive")
    assert _session_user_id(client) is None


def test_logout_by_post_signs_out(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert _session_user_id(client) is None


def test_logout_by_get_only_asks_for_confirmation(client):
    user = UserFactory()
    client.force_login(user)

    response = client.get(reverse("account_logout"))

    # A link (or an <img src>) elsewhere must not be able to sign the customer out.
    assert response.status_code == 200
    assert _session_user_id(client) == user.pk


# --- Password reset ------------------------------------------------------------------------


def test_password_reset_mails_a_link_that_sets_a_new_password(client):
    user = UserFactory(email="ada@example.com")

    # Given the customer asks for a reset
    response = client.post(reverse("account_reset_password"), {"email": "ada@example.com"})

    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.com"]
    links = re.findall(r"http://testserver(/accounts/password/reset/key/\S+/)", message.body)
    assert len(links) == 1

    # When they follow the link (allauth moves the key into the session and redirects)
    response = client.get(links[0])
    assert response.status_code == 302
    form_url = response["Location"]
    response = client.get(form_url)
    assert response.status_code == 200
    assert 'name="password1"' in response.content.decode()

    # And choose a new password
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_from_key_done")

    # Then the new password works and the old one does not
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    client.logout()
    assert _login(client, "ada@example.com", PASSWORD).status_code == 200
    assert _session_user_id(client) is None
    assert _login(client, "ada@example.com", NEW_PASSWORD).status_code == 302
    assert _session_user_id(client) == user.pk


def test_password_reset_link_works_only_once(client):
    UserFactory(email="ada@example.com")
    client.post(reverse("account_reset_password"), {"email": "ada@example.com"})
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    form_url = client.get(link.group(1))["Location"]
    client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    client.logout()

    # When the same link is followed again
    response = client.get(link.group(1), follow=True)

    assert response.status_code == 200
    assert 'name="password1"' not in response.content.decode()
    assert "Bad Token" in response.content.decode()


def test_password_reset_for_an_unknown_address_reveals_nothing_and_changes_nothing(client):
    user = UserFactory(email="ada@example.com")
    password_hash = user.password

    response = client.post(reverse("account_reset_password"), {"email": "bob@example.com"})

    # Same answer as for a known address, so the form cannot be used to find customers.
    assert response.status_code == 302
    assert response["Location"] == reverse("account_reset_password_done")
    assert [message.to for message in mail.outbox] == [["bob@example.com"]]
    assert "/accounts/password/reset/key/" not in mail.outbox[0].body
    user.refresh_from_db()
    assert user.password == password_hash


def test_password_reset_reaches_a_user_whose_address_has_capitals(client):
    # Given a customer created outside allauth (createsuperuser, the admin, a shell)
    User.objects.create_user("Ada@example.com", PASSWORD)

    client.post(reverse("account_reset_password"), {"email": "Ada@example.com"})

    assert len(mail.outbox) == 1
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


# --- The account page ----------------------------------------------------------------------


def test_account_page_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get(reverse("accounts:overview"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next=/account/"


def test_account_page_shows_the_signed_in_customers_email(client):
    user = UserFactory(email="ada@example.com")
    UserFactory(email="someone.else@example.com")
    client.force_login(user)

    response = client.get(reverse("accounts:overview"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Signed in as <strong>ada@example.com</strong>." in content
    assert "someone.else@example.com" not in content
    assert 'id="site-search"' in content


# --- Hostile input -------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "email",
    [
        "a" * 5000 + "@example.com",
        f"{SCRIPT}@example.com",
        "ada@" + "b" * 300 + ".com",
        "",
        "\x00@example.com",
    ],
)
def test_signup_with_hostile_email_is_refused_without_error(client, email):
    response = _signup(client, email)

    assert response.status_code == 200
    assert SCRIPT not in response.content.decode()
    assert User.objects.count() == 0
    assert mail.outbox == []


def test_a_valid_quoted_address_with_markup_is_accepted_and_shown_escaped(client):
    # A quoted local part may hold almost anything and is a valid address.
    address = f'"{SCRIPT}"@example.com'

    signup = _signup(client, address)
    response = client.get(reverse("accounts:overview"))

    assert signup.status_code == 302
    assert User.objects.get().email == address
    content = response.content.decode()
    assert SCRIPT not in content
    assert (
        "Signed in as <strong>&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;@example.com"
        "</strong>." in content
    )


def test_signup_escapes_script_in_every_field(client):
    response = client.post(
        reverse("account_signup"),
        {"email": SCRIPT, "password1": SCRIPT, "password2": SCRIPT + "x"},
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert SCRIPT not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert User.objects.count() == 0


@pytest.mark.parametrize("login", [SCRIPT, "a" * 5000 + "@example.com", "\x00"])
def test_login_with_hostile_input_is_refused_without_error(client, login):
    UserFactory(email="ada@example.com")

    response = _login(client, login, SCRIPT)

    assert response.status_code == 200
    assert SCRIPT not in response.content.decode()
    assert _session_user_id(client) is None


@pytest.mark.parametrize("email", [SCRIPT, "a" * 5000 + "@example.com"])
def test_password_reset_with_hostile_input_is_refused_without_error(client, email):
    response = client.post(reverse("account_reset_password"), {"email": email})

    assert response.status_code == 200
    assert SCRIPT not in response.content.decode()
    assert mail.outbox == []


def test_search_box_on_auth_pages_escapes_the_query(client):
    response = client.get(reverse("account_login"), {"q": SCRIPT})

    assert response.status_code == 200
    assert SCRIPT not in response.content.decode()
