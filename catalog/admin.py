"""The merchant's back office for the catalog. Thin: every write that has a rule goes through
`catalog.services`."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, OuterRef, QuerySet, Subquery, Sum
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from catalog import services
from catalog.exceptions import ImageProcessingError
from catalog.models import Category, Product, ProductImage, ProductVariant
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


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
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
class ProductAdmin(admin.ModelAdmin):
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
        self.message_user(request, f"{count} product(s) are now shown in the shop.")

    @admin.action(description="Hide selected products from the shop")
    def make_inactive(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        count = services.product_set_active(
            product_ids=queryset.values_list("pk", flat=True), is_active=False
        )
        self.message_user(request, f"{count} product(s) are now hidden from the shop.")


@admin.register(ProductVariant)
class ProductVariantAdmin(StockShownMixin, admin.ModelAdmin):
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
