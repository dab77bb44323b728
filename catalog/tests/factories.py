from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from catalog.models import Category, Product, ProductImage, ProductVariant, Sale, SaleItem
from catalog.services import product_refresh_price_from


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        skip_postgeneration_save = True

    category = factory.SubFactory(CategoryFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    slug = factory.Sequence(lambda n: f"product-{n}")
    brand = "Northwind"
    description = "A sturdy product for every day."

    @factory.post_generation
    def variants(product, create, extracted, **kwargs):
        """Give the product one variant (or the given list of variant kwargs) and its price."""
        if not create:
            return
        specs = extracted if extracted is not None else [{}]
        for spec in specs:
            ProductVariantFactory(product=product, **spec)
        product_refresh_price_from(product_ids=[product.pk])
        product.refresh_from_db(fields=["price_from"])


class ProductVariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductVariant

    product = factory.SubFactory(ProductFactory, variants=[])
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    options = factory.LazyFunction(lambda: {"size": "M"})
    price = Decimal("19.99")
    stock = 10


class ProductImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductImage

    product = factory.SubFactory(ProductFactory)
    image = factory.django.ImageField(width=800, height=600, color="teal", format="JPEG")
    alt_text = "A product photo"


class SaleFactory(factory.django.DjangoModelFactory):
    """A sale that started an hour ago and ends in a day (pass starts_at/ends_at to move it)."""

    class Meta:
        model = Sale

    name = factory.Sequence(lambda n: f"Sale {n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    ends_at = factory.LazyAttribute(lambda sale: sale.starts_at + timedelta(days=1))
    hold_minutes = 10


class SaleItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SaleItem

    sale = factory.SubFactory(SaleFactory)
    variant = factory.SubFactory(ProductVariantFactory)
    sale_price = Decimal("15.00")
    allotment = 5
