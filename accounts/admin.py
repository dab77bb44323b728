"""The back office for customers and staff: accounts, and the addresses customers saved."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import HttpRequest

from accounts import services
from accounts.models import Address, User

ADDRESS_FIELDS = ("full_name", "line1", "line2", "city", "postal_code", "country", "phone")


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        return User.objects.normalize_email(self.cleaned_data["email"])


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def clean_email(self) -> str:
        return User.objects.normalize_email(self.cleaned_data["email"])


class AddressInline(admin.TabularInline):
    """The customer's saved addresses, for support to read and correct. The form checks them
    (`Address.clean`); `UserAdmin.save_formset` writes them through `accounts.services`, which
    keep exactly one default. Which address is the default stays the customer's choice, so it is
    shown, not edited."""

    model = Address
    extra = 0
    fields = (
        "full_name",
        "line1",
        "line2",
        "postal_code",
        "city",
        "country",
        "phone",
        "is_default",
        "updated_at",
    )
    readonly_fields = ("is_default", "updated_at")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name")
    readonly_fields = ("date_joined", "last_login")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("full_name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = (AddressInline,)

    def get_inlines(self, request: HttpRequest, obj: User | None):
        # A new account has no addresses yet; the add page stays the short email-and-password form.
        return self.inlines if obj is not None else ()

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is not Address:
            super().save_formset(request, form, formset, change)
            return
        # commit=False only sorts the rows into new, changed and deleted (the change message
        # reads those lists); the services write them.
        formset.save(commit=False)
        for address in formset.deleted_objects:
            services.address_delete(address=address)
        for address, _ in formset.changed_objects:
            fields = {name: getattr(address, name) for name in ADDRESS_FIELDS}
            services.address_update(address=address, is_default=address.is_default, **fields)
        for address in formset.new_objects:
            fields = {name: getattr(address, name) for name in ADDRESS_FIELDS}
            services.address_create(user=form.instance, **fields)
