"""The user model and its manager: email identity, case-insensitive uniqueness, superusers."""

import pytest
from django.contrib.auth import authenticate
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hash with MD5 here: the production hasher costs about half a second per password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_create_user_lowercases_the_whole_address():
    user = User.objects.create_user("  Ada.Lovelace@EXAMPLE.COM ", "a-long-password-42")

    user.refresh_from_db()
    assert user.email == "ada.lovelace@example.com"
    assert user.check_password("a-long-password-42")
    assert user.is_active is True
    assert user.is_staff is False
    assert user.is_superuser is False


def test_create_user_without_a_password_cannot_log_in():
    user = User.objects.create_user("nopassword@example.com")

    assert user.has_usable_password() is False
    assert authenticate(email="nopassword@example.com", password="") is None


@pytest.mark.parametrize("email", ["", None])
def test_create_user_requires_an_email_address(email):
    with pytest.raises(ValueError, match="An email address is required."):
        User.objects.create_user(email, "a-long-password-42")

    assert User.objects.count() == 0


def test_create_user_keeps_explicit_extra_fields():
    user = User.objects.create_user("staff@example.com", "pw", is_staff=True, full_name="Sam")

    assert (user.is_staff, user.is_superuser, user.full_name) == (True, False, "Sam")


def test_create_superuser_sets_staff_and_superuser():
    user = User.objects.create_superuser("boss@Example.COM", "a-long-password-42")

    user.refresh_from_db()
    assert user.email == "boss@example.com"
    assert user.is_staff is True
    assert user.is_superuser is True
    assert user.is_active is True
    assert user.check_password("a-long-password-42")


@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_create_superuser_refuses_to_drop_a_flag(flag):
    with pytest.raises(ValueError, match="A superuser must have is_staff and is_superuser set."):
        User.objects.create_superuser("boss@example.com", "pw", **{flag: False})

    assert User.objects.count() == 0


def test_email_uniqueness_ignores_case_in_the_database():
    User.objects.create_user("a@x.com", "pw")

    # When a second account differs only by the case of its address (written straight to the
    # table, so no normalisation in Python can hide what the database enforces)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="A@x.com")

    # Then only the first exists
    assert list(User.objects.values_list("email", flat=True)) == ["a@x.com"]


def test_email_uniqueness_holds_for_an_exact_duplicate():
    User.objects.create_user("a@x.com", "pw")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("a@X.COM", "pw")

    assert User.objects.count() == 1

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="A@X.COM")

    assert User.objects.count() == 1


def test_the_database_refuses_an_address_that_is_not_lower_case():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="Ada@example.com")

    assert User.objects.count() == 0


def test_get_by_natural_key_ignores_case():
    user = UserFactory(email="ada@example.com")

    assert User.objects.get_by_natural_key("ada@EXAMPLE.com") == user
    assert User.objects.get_by_natural_key("Ada@example.com") == user


def test_get_by_natural_key_of_an_unknown_address_raises_does_not_exist():
    UserFactory(email="ada@example.com")

    with pytest.raises(User.DoesNotExist):
        User.objects.get_by_natural_key("bob@example.com")


def test_authenticate_accepts_the_address_in_any_case_and_refuses_a_wrong_password():
    user = UserFactory(email="ada@example.com")

    assert authenticate(email="ADA@Example.com", password=PASSWORD) == user
    assert authenticate(email="ada@example.com", password="wrong-password") is None


def test_str_and_names():
    user = UserFactory.build(email="ada@example.com", full_name="Ada King Lovelace")
    nameless = UserFactory.build(email="bob@example.com", full_name="")

    assert str(user) == "ada@example.com"
    assert user.get_full_name() == "Ada King Lovelace"
    assert user.get_short_name() == "Ada"
    assert nameless.get_full_name() == "bob@example.com"
    assert nameless.get_short_name() == "bob@example.com"
