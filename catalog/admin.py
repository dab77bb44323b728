"""The merchant's back office for the catalog. Thin: every write that has a rule goes through
`catalog.services`."""

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from catalog import selectors, services
from catalog.exceptions import ImageProcessingError, SaleError
from catalog.models import (
    Category,
    Product,
    ProductImage,
    ProductVariant,
    Sale,
    SaleCustomer,
    SaleHold,
    SaleItem,
)
from shop.money import money_format

LOW_STOCK = 5

# Compact inputs so a variant row (SKU, options, price, stock) fits on one line.
COMPACT_INPUTS = {
    models.JSONField: {"widget": forms.Textarea(attrs={"rows": 1, "cols": 32})},
    models.DecimalField: {
        "widget": forms.NumberInput(attrs={"step": "0.01", "style": "width:7em"})
    },
    models.IntegerField: {"widget": forms.NumberInput(attrs={"style": "width:5em"})},
}


def _stock_badge(stock: int | None) -> str:
    stock = stock or 0
    if stock <= 0:
        return mark_safe('<strong style="color:#b91c1c">0 · out of stock</strong>')
    if stock <= LOW_STOCK:
        return format_html('<strong style="color:#b45309">{} · low</strong>', stock)
    return format_html("{}", stock)


class StockShownMixin:
    """Variant forms carry the stock they showed (a hidden initial field), so a save can apply
    the merchant's edit as a change from it: the instance Django loads at POST time already has
    the units sold since the page was shown."""

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "stock" and field is not None:
            field.show_hidden_initial = True
        return field


def _stock_shown(form) -> int | None:
    if "stock" not in form.fields or not form.fields["stock"].show_hidden_initial:
        return None
    raw = form.data.get(form.add_initial_prefix("stock"))
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _stock_rebase(model_admin: admin.ModelAdmin, request: HttpRequest, form) -> None:
    """Apply a variant form's stock as a change from what it showed (see the service)."""
    shown = _stock_shown(form)
    if shown is None:
        return
    variant = form.instance
    if not services.variant_stock_rebase(variant=variant, stock_shown=shown):
        model_admin.message_user(
            request,
            f"{variant.sku}: units were sold while you edited; its stock is now 0, not below.",
            level=messages.WARNING,
        )


class ForgetsCatalogPages:
    """Any catalog save or delete in the back office drops the cached product pages once the
    transaction commits (before it, a page read meanwhile could cache the old data again)."""

    def _forget_pages(self) -> None:
        transaction.on_commit(selectors.catalog_pages_forget)

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self._forget_pages()

    def delete_model(self, request: HttpRequest, obj) -> None:
        super().delete_model(request, obj)
        self._forget_pages()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().delete_queryset(request, queryset)
        self._forget_pages()


@admin.register(Category)
class CategoryAdmin(ForgetsCatalogPages, admin.ModelAdmin):
    list_display = ("name", "parent", "slug", "position", "is_active", "product_count")
    list_editable = ("position", "is_active")
    list_filter = ("is_active", ("parent", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("parent",)
    list_select_related = ("parent",)
    # The product-count annotation drops the model's ordering; pages must stay stable.
    ordering = ("position", "name", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(description="products", ordering="_product_count")
    def product_count(self, category: Category) -> int:
        return category._product_count


class ProductVariantInline(StockShownMixin, admin.TabularInline):
    model = ProductVariant
    extra = 1
    formfield_overrides = COMPACT_INPUTS
    fields = ("sku", "options", "price", "currency", "stock", "is_active", "position")
    readonly_fields = ("currency",)


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 1
    fields = ("preview", "image", "alt_text", "position")
    readonly_fields = ("preview",)

    @admin.display(description="thumbnail")
    def preview(self, image: ProductImage) -> str:
        if not image.thumbnail:
            return "—"
        return format_html(
            '<img src="{}" alt="{}" style="max-height:64px;border-radius:4px">',
            image.thumbnail.url,
            image.display_alt,
        )


@admin.register(Product)
class ProductAdmin(ForgetsCatalogPages, admin.ModelAdmin):
    list_display = ("name", "category", "brand", "price", "stock", "is_active", "is_featured")
    list_filter = ("is_active", "is_featured", "category", "created_at")
    search_fields = ("name", "slug", "brand", "variants__sku")
    search_help_text = "Search by name, slug, brand or SKU."
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("category",)
    list_select_related = ("category",)
    readonly_fields = ("price_from_display", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "slug", "category", "brand", "description")}),
        ("Visibility", {"fields": ("is_active", "is_featured")}),
        ("Summary", {"fields": ("price_from_display", "created_at", "updated_at")}),
    )
    inlines = (ProductVariantInline, ProductImageInline)
    actions = ("make_active", "make_inactive")
    date_hierarchy = "created_at"
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        # A subquery, not Sum("variants__stock"): searching by SKU joins the variants again,
        # and a join-based sum would then count each variant once per joined row.
        total_stock = (
            ProductVariant.objects.filter(product=OuterRef("pk"))
            .values("product")
            .annotate(total=Sum("stock"))
            .values("total")
        )
        return super().get_queryset(request).annotate(_stock=Subquery(total_stock))

    @admin.display(description="price", ordering="price_from")
    def price(self, product: Product) -> str:
        if product.price_from is None:
            return "—"
        return f"from {money_format(product.price_from, product.currency)}"

    @admin.display(description="price from")
    def price_from_display(self, product: Product) -> str:
        return self.price(product)

    @admin.display(description="stock", ordering="_stock")
    def stock(self, product: Product) -> str:
        return _stock_badge(product._stock)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        product = form.instance
        services.product_refresh_price_from(product_ids=[product.pk])
        for image in product.images.filter(thumbnail=""):
            try:
                services.product_image_make_thumbnail(image=image)
            except ImageProcessingError as exc:
                self.message_user(request, str(exc), level=messages.WARNING)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        # A replaced picture needs a new thumbnail: clear the old one so save_related makes it.
        for image_form in formset.forms:
            if isinstance(image_form.instance, ProductImage) and "image" in image_form.changed_data:
                image_form.instance.thumbnail = ""
        if formset.model is ProductVariant:
            for variant_form in formset.forms:
                if variant_form.instance.pk and variant_form.has_changed():
                    _stock_rebase(self, request, variant_form)
        super().save_formset(request, form, formset, change)

    @admin.action(description="Show selected products in the shop")
    def make_active(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        count = services.product_set_active(
            product_ids=queryset.values_list("pk", flat=True), is_active=True
        )
        self._forget_pages()
        self.message_user(request, f"{count} product(s) are now shown in the shop.")

    @admin.action(description="Hide selected products from the shop")
    def make_inactive(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        count = services.product_set_active(
            product_ids=queryset.values_list("pk", flat=True), is_active=False
        )
        self._forget_pages()
        self.message_user(request, f"{count} product(s) are now hidden from the shop.")


@admin.register(ProductVariant)
class ProductVariantAdmin(ForgetsCatalogPages, StockShownMixin, admin.ModelAdmin):
    """Stock and prices at a glance, editable straight from the list."""

    list_display = (
        "sku",
        "product",
        "options_label",
        "price",
        "stock",
        "stock_status",
        "is_active",
    )
    list_editable = ("price", "stock", "is_active")
    formfield_overrides = COMPACT_INPUTS
    list_filter = ("is_active", "product__category")
    search_fields = ("sku", "product__name")
    autocomplete_fields = ("product",)
    list_select_related = ("product",)
    ordering = ("stock", "sku")
    list_per_page = 100

    @admin.display(description="options")
    def options_label(self, variant: ProductVariant) -> str:
        return variant.label or "—"

    @admin.display(description="status", ordering="stock")
    def stock_status(self, variant: ProductVariant) -> str:
        return _stock_badge(variant.stock)

    def save_model(self, request: HttpRequest, obj: ProductVariant, form, change: bool) -> None:
        # A variant moved to another product changes the price of both products.
        previous = form.initial.get("product") if change else None
        if change:
            _stock_rebase(self, request, form)
        super().save_model(request, obj, form, change)
        services.product_refresh_price_from(product_ids={obj.product_id, previous} - {None})

    def delete_model(self, request: HttpRequest, obj: ProductVariant) -> None:
        product_id = obj.product_id
        super().delete_model(request, obj)
        services.product_refresh_price_from(product_ids=[product_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProductVariant]) -> None:
        product_ids = set(queryset.values_list("product_id", flat=True))
        super().delete_queryset(request, queryset)
        services.product_refresh_price_from(product_ids=product_ids)


# --- Flash sales -------------------------------------------------------------------------------
#
# `SaleItem.taken` is a counter checkouts change concurrently with conditional updates: the back
# office never writes it. Saving an existing item writes only the fields the merchant edited
# (`save(update_fields=...)`), and an allotment change goes through `sale_item_set_allotment`,
# which re-checks it against the units taken under the item's row lock.

SALE_PRICE_NOT_LOWER = "A sale price must be lower than the regular price ({price})."


def _sale_status(sale: Sale, now) -> str:
    if not sale.is_active:
        return "switched off"
    if now < sale.starts_at:
        return "upcoming"
    return "live" if now < sale.ends_at else "ended"


class SaleStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [
            ("upcoming", "Upcoming"),
            ("live", "Live"),
            ("ended", "Ended"),
            ("off", "Switched off"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Sale]) -> QuerySet[Sale]:
        now = timezone.now()
        on = queryset.filter(is_active=True)
        match self.value():
            case "upcoming":
                return on.filter(starts_at__gt=now)
            case "live":
                return on.filter(starts_at__lte=now, ends_at__gt=now)
            case "ended":
                return on.filter(ends_at__lte=now)
            case "off":
                return queryset.filter(is_active=False)
        return queryset


class SaleForm(forms.ModelForm):
    class Meta:
        model = Sale
        fields = ("name", "starts_at", "ends_at", "per_customer_limit", "hold_minutes", "is_active")

    def clean(self) -> dict:
        data = super().clean()
        starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
        if starts_at and ends_at and ends_at <= starts_at:
            self.add_error("ends_at", "The sale must end after it starts.")
        return data


class SaleItemForm(forms.ModelForm):
    class Meta:
        model = SaleItem
        fields = ("variant", "sale_price", "allotment")

    def clean(self) -> dict:
        data = super().clean()
        variant, price = data.get("variant"), data.get("sale_price")
        if variant is not None and price is not None and price >= variant.price:
            self.add_error(
                "sale_price",
                SALE_PRICE_NOT_LOWER.format(price=money_format(variant.price, variant.currency)),
            )
        item = self.instance
        if item.pk is None:
            return data
        # The instance was read when this POST arrived: its `taken` is current, not the page's.
        allotment = data.get("allotment")
        if allotment is not None and allotment < item.taken:
            self.add_error(
                "allotment",
                f"{item.taken} units are already in orders: the allotment cannot go below that.",
            )
        if variant is not None and variant.pk != item.variant_id and item.holds.exists():
            self.add_error(
                "variant",
                "Orders hold units of this item: keep its variant (set its allotment to the "
                "units taken to stop selling it, and add the other variant as a new row).",
            )
        return data


class SaleItemFormSet(forms.BaseInlineFormSet):
    """Refuses a variant in two sales whose windows overlap (removing an item that orders hold
    units of is refused by Django's inline, which checks PROTECT); saves existing items without
    ever writing `taken`."""

    def clean(self) -> None:
        super().clean()
        sale = self.instance
        live_forms = [
            form
            for form in self.forms
            if form.is_valid() and form.cleaned_data and not self._should_delete_form(form)
        ]
        starts_at, ends_at = sale.starts_at, sale.ends_at
        if not (starts_at and ends_at and ends_at > starts_at):
            return
        by_variant = {form.cleaned_data["variant"].pk: form for form in live_forms}
        clashes = (
            SaleItem.objects.filter(
                variant_id__in=by_variant, sale__starts_at__lt=ends_at, sale__ends_at__gt=starts_at
            )
            .exclude(sale_id=sale.pk)
            .select_related("sale", "variant")
            .order_by("sale__starts_at", "pk")
        )
        for clash in clashes:
            other = clash.sale
            by_variant[clash.variant_id].add_error(
                "variant",
                f"{clash.variant.sku} is already in the sale “{other.name}” "
                f"({other.starts_at:%Y-%m-%d %H:%M} to {other.ends_at:%Y-%m-%d %H:%M}"
                f"{', switched off' if not other.is_active else ''}), whose dates overlap "
                "this one's. Change the dates or remove it from one of them.",
            )

    def save_existing(self, form, obj: SaleItem, commit: bool = True) -> SaleItem:
        changed = set(form.changed_data)
        fields = [name for name in ("variant", "sale_price") if name in changed]
        if fields:
            obj.save(update_fields=fields)
        if "allotment" in changed:
            try:
                services.sale_item_set_allotment(
                    sale_item_id=obj.pk, allotment=form.cleaned_data["allotment"]
                )
            except SaleError as exc:
                self.save_warnings.append(f"{obj.variant.sku}: {exc} Its allotment is unchanged.")
        return obj

    def save(self, commit: bool = True):
        self.save_warnings: list[str] = []
        return super().save(commit)


class SaleItemInline(admin.TabularInline):
    model = SaleItem
    form = SaleItemForm
    formset = SaleItemFormSet
    extra = 1
    autocomplete_fields = ("variant",)
    formfield_overrides = COMPACT_INPUTS
    fields = ("variant", "regular_price", "sale_price", "allotment", "taken", "units_left")
    readonly_fields = ("regular_price", "taken", "units_left")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SaleItem]:
        return super().get_queryset(request).select_related("variant__product")

    @admin.display(description="regular price")
    def regular_price(self, item: SaleItem) -> str:
        if item.variant_id is None:
            return "—"
        return money_format(item.variant.price, item.variant.currency)

    @admin.display(description="units left")
    def units_left(self, item: SaleItem) -> str:
        return "—" if item.pk is None else str(item.allotment - item.taken)


@admin.register(Sale)
class SaleAdmin(admin.ModelAdmin):
    form = SaleForm
    list_display = (
        "name",
        "status",
        "starts_at",
        "ends_at",
        "item_count",
        "units_allotted",
        "units_taken",
        "units_left",
        "per_customer_limit",
        "is_active",
    )
    list_filter = (SaleStatusFilter, "is_active", "starts_at")
    search_fields = ("name", "items__variant__sku", "items__variant__product__name")
    search_help_text = "Search by name, or by the SKU or product name of a variant in the sale."
    date_hierarchy = "starts_at"
    ordering = ("-starts_at", "id")
    fieldsets = (
        (None, {"fields": ("name", "starts_at", "ends_at", "is_active")}),
        ("Limits", {"fields": ("per_customer_limit", "hold_minutes")}),
        ("Orders", {"fields": ("status_display", "holds_link", "customers_link")}),
    )
    readonly_fields = ("status_display", "holds_link", "customers_link")
    inlines = (SaleItemInline,)
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Sale]:
        # Subqueries, not Sum("items__..."): searching by SKU joins the items again, and a
        # join-based sum would count each item once per joined row.
        def total(expression) -> Subquery:
            return Coalesce(
                Subquery(
                    SaleItem.objects.filter(sale=OuterRef("pk"))
                    .values("sale")
                    .annotate(total=expression)
                    .values("total")
                ),
                0,
            )

        return (
            super()
            .get_queryset(request)
            .annotate(
                _items=total(Count("pk")),
                _allotted=total(Sum("allotment")),
                _taken=total(Sum("taken")),
            )
            .annotate(_left=F("_allotted") - F("_taken"))
        )

    @admin.display(description="status")
    def status(self, sale: Sale) -> str:
        return _sale_status(sale, timezone.now())

    @admin.display(description="status")
    def status_display(self, sale: Sale) -> str:
        return "—" if sale.pk is None else _sale_status(sale, timezone.now())

    @admin.display(description="items", ordering="_items")
    def item_count(self, sale: Sale) -> int:
        return sale._items

    @admin.display(description="allotted", ordering="_allotted")
    def units_allotted(self, sale: Sale) -> int:
        return sale._allotted

    @admin.display(description="taken", ordering="_taken")
    def units_taken(self, sale: Sale) -> int:
        return sale._taken

    @admin.display(description="left", ordering="_left")
    def units_left(self, sale: Sale) -> int:
        return sale._left

    @admin.display(description="holds")
    def holds_link(self, sale: Sale) -> str:
        if sale.pk is None:
            return "—"
        url = reverse("admin:catalog_salehold_changelist")
        return format_html(
            '<a href="{}?sale_item__sale__id__exact={}">Units held and sold, by order</a>',
            url,
            sale.pk,
        )

    @admin.display(description="customers")
    def customers_link(self, sale: Sale) -> str:
        if sale.pk is None:
            return "—"
        url = reverse("admin:catalog_salecustomer_changelist")
        return format_html('<a href="{}?sale__id__exact={}">Units per customer</a>', url, sale.pk)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        for warning in getattr(formset, "save_warnings", []):
            self.message_user(request, warning, level=messages.WARNING)

    def get_deleted_objects(self, objs, request: HttpRequest):
        # A sale's customer counters go with it, though nobody may delete them by hand; its
        # holds are protected (and listed as such) whatever the permissions.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed -= {SaleCustomer._meta.verbose_name, SaleHold._meta.verbose_name}
        return deleted, counts, perms_needed, protected

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        holds = SaleHold.objects.filter(sale_item__sale_id=object_id).count()
        if holds:
            self.message_user(
                request,
                f"This sale cannot be deleted: orders hold or bought its units ({holds} "
                f"hold{pluralize(holds)}). Switch it off instead to stop it at once.",
                level=messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:catalog_sale_change", args=[object_id]))
        return super().delete_view(request, object_id, extra_context)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the shop's checkouts write: merchants may look, never add, edit or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SaleHold)
class SaleHoldAdmin(ReadOnlyAdmin):
    list_display = (
        "reference",
        "sale",
        "variant",
        "customer_key",
        "quantity",
        "status",
        "expires_at",
        "created_at",
        "settled_at",
    )
    list_filter = ("status", ("sale_item__sale", admin.RelatedOnlyFieldListFilter))
    search_fields = ("reference", "customer_key", "sale_item__variant__sku")
    search_help_text = "Search by order number, customer or SKU."
    list_select_related = ("sale_item__sale", "sale_item__variant")
    ordering = ("-created_at", "-id")
    list_per_page = 100

    @admin.display(description="sale", ordering="sale_item__sale__name")
    def sale(self, hold: SaleHold) -> str:
        return hold.sale_item.sale.name

    @admin.display(description="SKU", ordering="sale_item__variant__sku")
    def variant(self, hold: SaleHold) -> str:
        return hold.sale_item.variant.sku


@admin.register(SaleCustomer)
class SaleCustomerAdmin(ReadOnlyAdmin):
    list_display = ("customer_key", "sale", "units")
    list_filter = (("sale", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("customer_key",)
    list_select_related = ("sale",)
    ordering = ("-units", "id")
    list_per_page = 100
