from decimal import Decimal
from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from catalog import services
from catalog.exceptions import ImageProcessingError
from catalog.models import Product, ProductImage
from catalog.tests.factories import ProductFactory, ProductImageFactory, ProductVariantFactory

pytestmark = pytest.mark.django_db


def test_price_from_is_the_lowest_active_variant_price():
    product = ProductFactory(variants=[])
    ProductVariantFactory(product=product, price=Decimal("30.00"))
    ProductVariantFactory(product=product, price=Decimal("12.50"))
    ProductVariantFactory(product=product, price=Decimal("5.00"), is_active=False)

    updated = services.product_refresh_price_from(product_ids=[product.pk])

    product.refresh_from_db()
    assert updated == 1
    assert product.price_from == Decimal("12.50")


def test_price_from_is_empty_without_active_variants():
    product = ProductFactory(variants=[{"is_active": False}])
    product.refresh_from_db()
    assert product.price_from is None


def test_set_active_changes_only_the_given_products():
    shown, hidden, other = ProductFactory(), ProductFactory(), ProductFactory()

    changed = services.product_set_active(product_ids=[shown.pk, hidden.pk], is_active=False)

    assert changed == 2
    assert set(Product.objects.filter(is_active=False).values_list("pk", flat=True)) == {
        shown.pk,
        hidden.pk,
    }
    other.refresh_from_db()
    assert other.is_active is True


def test_thumbnail_is_a_small_jpeg_of_the_original():
    image = ProductImageFactory(image__width=1600, image__height=1200)

    services.product_image_make_thumbnail(image=image)

    image.refresh_from_db()
    assert image.width == 1600 and image.height == 1200
    with Image.open(image.thumbnail.path) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (480, 360)


def test_thumbnail_of_a_broken_file_raises_a_clear_error():
    image = ProductImageFactory()
    with open(image.image.path, "wb") as handle:
        handle.write(b"not an image at all")

    with pytest.raises(ImageProcessingError):
        services.product_image_make_thumbnail(image=image)

    image.refresh_from_db()
    assert not image.thumbnail


def test_uploaded_non_image_is_refused_by_validation():
    product = ProductFactory()
    image = ProductImage(
        product=product, image=SimpleUploadedFile("x.jpg", b"GIF89a not really", "image/jpeg")
    )
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        image.full_clean()
    assert "image" in excinfo.value.message_dict


def test_uploaded_image_in_an_unsupported_format_is_refused():
    buffer = BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, format="BMP")
    image = ProductImage(
        product=ProductFactory(), image=SimpleUploadedFile("x.bmp", buffer.getvalue())
    )
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        image.full_clean()
    assert "JPEG, PNG, WebP or GIF" in str(excinfo.value)
