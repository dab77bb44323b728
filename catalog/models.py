"""Catalog data: categories, products, their variants and images.

Invariants held by the database: stock and prices are never negative, SKUs and slugs are
unique, a category is never its own parent. `Product.price_from` is derived (the lowest price
of the product's active variants) and kept up to date by `catalog.services`.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse

from catalog.validators import validate_image_file


def _default_currency() -> str:
    return settings.SHOP_CURRENCY


class Category(models.Model):
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Lower comes first.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=F("id")), name="catalog_category_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:category-detail", kwargs={"slug": self.slug})

    def clean(self) -> None:
        """Refuse a parent that is this category or one of its subcategories (a cycle)."""
        ancestor, seen = self.parent, set()
        while ancestor is not None and ancestor.pk not in seen:
            if self.pk is not None and ancestor.pk == self.pk:
                raise ValidationError(
                    {"parent": "A category cannot sit inside itself or one of its subcategories."}
                )
            seen.add(ancestor.pk)
            ancestor = ancestor.parent


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    brand = models.CharField(max_length=120, blank=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="Shown in the shop.")
    is_featured = models.BooleanField(default=False, help_text="Shown on the home page.")
    # Derived: the lowest price among active variants (None when there is none).
    price_from = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, editable=False
    )
    currency = models.CharField(max_length=3, default=_default_currency, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # Category listings: filter by category and visibility, then sort.
            models.Index(fields=["category", "is_active", "price_from"], name="product_cat_price"),
            models.Index(fields=["category", "is_active", "name"], name="product_cat_name"),
            models.Index(fields=["category", "is_active", "-created_at"], name="product_cat_new"),
            # Home page: newest, and featured.
            models.Index(fields=["is_active", "-created_at"], name="product_active_new"),
            models.Index(
                fields=["-created_at"],
                condition=Q(is_active=True, is_featured=True),
                name="product_featured",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_from__isnull=True) | Q(price_from__gte=0),
                name="catalog_product_price_from_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("catalog:product-detail", kwargs={"slug": self.slug})


class ProductVariant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField("SKU", max_length=64, unique=True)
    options = models.JSONField(
        default=dict, blank=True, help_text='Option values, e.g. {"size": "M", "colour": "Blue"}.'
    )
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default=_default_currency, editable=False)
    stock = models.IntegerField("stock on hand", default=0, validators=[MinValueValidator(0)])
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [
            # "In stock" filter: an active variant with stock, looked up per product.
            models.Index(
                fields=["product"],
                condition=Q(is_active=True, stock__gt=0),
                name="variant_in_stock",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(stock__gte=0), name="catalog_variant_stock_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(price__gte=0), name="catalog_variant_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.name} — {self.label}" if self.label else self.product.name

    @property
    def label(self) -> str:
        """Return the option values for people, e.g. 'M / Blue'."""
        if not isinstance(self.options, dict):
            return ""
        return " / ".join(str(value) for value in self.options.values() if value not in ("", None))

    @property
    def is_in_stock(self) -> bool:
        return self.is_active and self.stock > 0


class ProductImage(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(
        upload_to="products/%Y/%m/",
        width_field="width",
        height_field="height",
        validators=[validate_image_file],
    )
    width = models.PositiveIntegerField(null=True, editable=False)
    height = models.PositiveIntegerField(null=True, editable=False)
    thumbnail = models.ImageField(upload_to="products/thumbs/%Y/%m/", blank=True, editable=False)
    alt_text = models.CharField(
        max_length=200, blank=True, help_text="Describes the picture for screen readers."
    )
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.alt_text or f"Image of {self.product}"

    @property
    def display_alt(self) -> str:
        return self.alt_text or self.product.name
