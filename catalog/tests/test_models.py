from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from catalog.models import Category, ProductVariant
from catalog.tests.factories import CategoryFactory, ProductFactory, ProductVariantFactory

pytestmark = pytest.mark.django_db


def test_stock_can_never_go_below_zero_in_the_database():
    variant = ProductVariantFactory(stock=1)

    with pytest.raises(IntegrityError), transaction.atomic():
        ProductVariant.objects.filter(pk=variant.pk).update(stock=-1)

    variant.refresh_from_db()
    assert variant.stock == 1


def test_a_conditional_decrement_cannot_oversell():
    variant = ProductVariantFactory(stock=1)
    from django.db.models import F

    taken = ProductVariant.objects.filter(pk=variant.pk, stock__gte=2).update(stock=F("stock") - 2)

    assert taken == 0
    variant.refresh_from_db()
    assert variant.stock == 1


def test_price_can_never_be_negative_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductVariantFactory(price=Decimal("-0.01"))
    assert ProductVariant.objects.count() == 0


def test_sku_is_unique():
    ProductVariantFactory(sku="ABC-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductVariantFactory(sku="ABC-1")
    assert ProductVariant.objects.filter(sku="ABC-1").count() == 1


def test_product_slug_is_unique():
    ProductFactory(slug="tent")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProductFactory(slug="tent")


def test_a_category_cannot_be_its_own_parent_in_the_database():
    category = CategoryFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.filter(pk=category.pk).update(parent=category)
    category.refresh_from_db()
    assert category.parent_id is None


def test_a_category_cannot_sit_under_its_own_descendant():
    root = CategoryFactory()
    child = CategoryFactory(parent=root)
    grandchild = CategoryFactory(parent=child)

    root.parent = grandchild
    with pytest.raises(ValidationError) as excinfo:
        root.full_clean()

    assert "parent" in excinfo.value.message_dict


def test_variant_label_joins_option_values():
    variant = ProductVariantFactory(options={"size": "M", "colour": "Blue"})
    assert variant.label == "M / Blue"
    assert str(variant) == f"{variant.product.name} — M / Blue"


def test_new_variants_take_the_shop_currency(settings):
    settings.SHOP_CURRENCY = "GBP"
    assert ProductVariantFactory().currency == "GBP"
