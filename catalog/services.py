"""Writes to the catalog.

Invariants owned here:
- `Product.price_from` is the lowest price among the product's active variants, or None when it
  has none; every write that changes variants calls `product_refresh_price_from`.
- Every product image has a thumbnail no larger than THUMBNAIL_SIZE, made from the original.
- A merchant's stock edit is a change relative to what their form showed, applied to the stock on
  hand when it is saved: units sold meanwhile are never written back (`variant_stock_rebase`).
"""

from collections.abc import Iterable
from io import BytesIO
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Min, OuterRef, Q, Subquery
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from catalog.exceptions import ImageProcessingError
from catalog.models import Product, ProductImage, ProductVariant

THUMBNAIL_SIZE = (480, 480)


def product_refresh_price_from(*, product_ids: Iterable[int]) -> int:
    """Recompute the derived `price_from` of the given products; return how many were updated."""
    ids = list(product_ids)
    if not ids:
        return 0
    lowest = (
        ProductVariant.objects.filter(product=OuterRef("pk"), is_active=True)
        .values("product")
        .annotate(lowest=Min("price"))
        .values("lowest")
    )
    return Product.objects.filter(pk__in=ids).update(price_from=Subquery(lowest))


@transaction.atomic
def product_set_active(*, product_ids: Iterable[int], is_active: bool) -> int:
    """Show or hide products in the shop; return how many changed."""
    return (
        Product.objects.filter(pk__in=list(product_ids))
        .filter(~Q(is_active=is_active))
        .update(is_active=is_active, updated_at=timezone.now())
    )


def product_image_make_thumbnail(*, image: ProductImage) -> ProductImage:
    """Write a resized copy of the image into its `thumbnail` field and save it."""
    try:
        image.image.open("rb")
        image.image.seek(0)
        with Image.open(image.image) as picture:
            picture = ImageOps.exif_transpose(picture)
            picture.thumbnail(THUMBNAIL_SIZE)
            if picture.mode not in ("RGB", "L"):
                picture = picture.convert("RGB")
            buffer = BytesIO()
            picture.save(buffer, format="JPEG", quality=85, optimize=True, progressive=True)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageProcessingError(f"Could not make a thumbnail of {image.image.name}.") from exc
    finally:
        image.image.close()
    stem = PurePosixPath(image.image.name).stem
    if image.thumbnail:
        image.thumbnail.delete(save=False)
    image.thumbnail.save(f"{stem}-thumb.jpg", ContentFile(buffer.getvalue()), save=False)
    image.save(update_fields=["thumbnail"])
    return image


def variant_stock_rebase(*, variant: ProductVariant, stock_shown: int) -> bool:
    """Turn the absolute stock typed into a form that showed `stock_shown` into a change applied
    to the stock on hand now, under the row's lock; return False if that would go below zero
    (the stock is then set to 0).

    Call it inside the transaction that saves the variant (the admin's is atomic): checkouts
    taking units between the form being shown and saved keep their decrement.
    """
    current = (
        ProductVariant.objects.select_for_update()
        .values_list("stock", flat=True)
        .get(pk=variant.pk)
    )
    wanted = current + (variant.stock - stock_shown)
    variant.stock = max(wanted, 0)
    return wanted >= 0
