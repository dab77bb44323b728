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
    # Units merchants have put in stock, net of their corrections: what `check_stock` reconciles
    # against (stock on hand == stock_received - units in orders that were not cancelled).
    # Starts as the stock a variant is created with; only merchants' stock edits change it.
    stock_received = models.IntegerField(default=0, editable=False)
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

    def save(self, *args, **kwargs) -> None:
        if self._state.adding and not self.stock_received:
            self.stock_received = self.stock  # a new variant's opening stock was received
        super().save(*args, **kwargs)

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


def _default_hold_minutes() -> int:
    return settings.SHOP_SALE_HOLD_MINUTES


class Sale(models.Model):
    """A timed sale: during [starts_at, ends_at) its items sell at their sale price, each up to
    its allotment. The price is worked out from the window when it is read (no batch job)."""

    name = models.CharField(max_length=120)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    per_customer_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Units one customer may buy in this sale, all its items together "
        "(signed-in customers by account, guests by email). Empty: no limit.",
    )
    hold_minutes = models.PositiveIntegerField(
        default=_default_hold_minutes,
        help_text="How long an unpaid order keeps its sale units before they go back on sale.",
    )
    is_active = models.BooleanField(default=True, help_text="Switch off to stop the sale at once.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "id"]
        indexes = [models.Index(fields=["is_active", "ends_at"], name="sale_active_ends")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="catalog_sale_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(per_customer_limit__isnull=True) | Q(per_customer_limit__gte=1),
                name="catalog_sale_limit_positive",
            ),
            models.CheckConstraint(
                condition=Q(hold_minutes__gte=1), name="catalog_sale_hold_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SaleItem(models.Model):
    """A variant in a sale: its sale price and the units allotted to the sale.

    `taken` counts the units in orders (held for payment or sold); the database keeps it within
    0..allotment, and it only ever changes by conditional updates (catalog.services.sales).
    """

    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="items")
    # Deleting a variant takes it out of its sales (holds and order lines still protect it).
    variant = models.ForeignKey(ProductVariant, on_delete=models.CASCADE, related_name="sale_items")
    sale_price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(0)]
    )
    allotment = models.PositiveIntegerField(help_text="Units offered in the sale.")
    taken = models.PositiveIntegerField(
        default=0, editable=False, help_text="Units in orders: held for payment or sold."
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["sale", "variant"], name="catalog_sale_item_unique"),
            models.CheckConstraint(
                condition=Q(taken__gte=0) & Q(taken__lte=F("allotment")),
                name="catalog_sale_item_taken_within_allotment",
            ),
            models.CheckConstraint(
                condition=Q(sale_price__gte=0), name="catalog_sale_item_price_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sale} — {self.variant.sku}"


class SaleCustomer(models.Model):
    """Units one customer holds or bought in a sale: the per-customer limit's counter, changed
    only by conditional updates. `customer_key` is "user:<id>" or "email:<address>"."""

    sale = models.ForeignKey(Sale, on_delete=models.CASCADE, related_name="customers")
    customer_key = models.CharField(max_length=260)
    units = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sale", "customer_key"], name="catalog_sale_customer_unique"
            ),
            models.CheckConstraint(condition=Q(units__gte=0), name="catalog_sale_customer_units"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_key}: {self.units}"


class SaleHold(models.Model):
    """Sale units taken by one order line: held until the order is paid (then sold) or until it
    is cancelled or its time runs out (then released, back on sale, exactly once)."""

    class Status(models.TextChoices):
        HELD = "held", "Held for payment"
        SOLD = "sold", "Sold"
        RELEASED = "released", "Released"

    sale_item = models.ForeignKey(SaleItem, on_delete=models.PROTECT, related_name="holds")
    customer_key = models.CharField(max_length=260)
    quantity = models.PositiveIntegerField()
    reference = models.CharField(max_length=40, help_text="The order's number.")
    status = models.CharField(max_length=10, choices=Status, default=Status.HELD)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Lazy expiry: the expired holds of one item, cheaply, on every sale read.
            models.Index(
                fields=["sale_item", "expires_at"],
                condition=Q(status="held"),
                name="sale_hold_open",
            ),
            models.Index(fields=["reference"], name="sale_hold_reference"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="catalog_sale_hold_qty"),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.quantity} × {self.sale_item_id} ({self.status})"
