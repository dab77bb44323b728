"""Writes to the catalog.

Invariants owned here:
- `Product.price_from` is the lowest price among the product's active variants, or None when it
  has none; every write that changes variants calls `product_refresh_price_from`.
- Every product image has a thumbnail no larger than THUMBNAIL_SIZE, made from the original.
- A merchant's stock edit is a change relative to what their form showed, applied to the stock on
  hand when it is saved: units sold meanwhile are never written back (`variant_stock_rebase`).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from io import BytesIO
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Min, OuterRef, Q, Subquery
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from catalog.exceptions import (
    ImageProcessingError,
    SaleError,
    SaleLimitReached,
    SaleNotLive,
    SaleSoldOut,
)
from catalog.models import (
    Product,
    ProductImage,
    ProductVariant,
    SaleCustomer,
    SaleHold,
    SaleItem,
)

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
    # The merchant's change is a receipt (or a correction): the ledger check_stock reconciles.
    ProductVariant.objects.filter(pk=variant.pk).update(
        stock_received=F("stock_received") + (variant.stock - current)
    )
    variant.stock_received = ProductVariant.objects.values_list("stock_received", flat=True).get(
        pk=variant.pk
    )
    return wanted >= 0


# --- Sales -------------------------------------------------------------------------------------
#
# Invariants owned here (check_stock verifies them):
# - SaleItem.taken == the units of its holds that are held or sold, and 0 <= taken <= allotment
#   (a database check). Units are taken with one conditional UPDATE on the item's row
#   (`taken = taken + n WHERE taken <= allotment - n`): the database serialises buyers on the
#   row and re-checks the condition on the latest version, so no count is read and written back
#   in Python and a sale can never sell more than its allotment.
# - SaleCustomer.units == the units of that customer's held or sold holds in the sale, and never
#   passes the sale's per-customer limit (the same conditional update, on the customer's row).
# - A hold leaves "held" exactly once (conditional update on its status): released (units back
#   on sale) or sold.
# These run inside the caller's transaction (the order's placement or cancellation), which takes
# the variant's row lock first: every path locks variant -> sale item -> sale customer.


def sale_units_take(
    *,
    sale_item_id: int,
    quantity: int,
    customer_key: str,
    reference: str,
    now: datetime | None = None,
) -> SaleHold:
    """Take `quantity` units of a live sale item for one order line; return the hold.

    Raise SaleNotLive, SaleSoldOut or SaleLimitReached (nothing is then changed, provided the
    caller rolls back its transaction, which placement does).
    """
    now = now or timezone.now()
    item = SaleItem.objects.select_related("sale").filter(pk=sale_item_id).first()
    if item is None:  # taken out of its sale by a merchant a moment ago
        raise SaleNotLive("This item is no longer in the sale.")
    sale = item.sale
    if not (sale.is_active and sale.starts_at <= now < sale.ends_at):
        raise SaleNotLive(f"The sale “{sale.name}” is no longer on.")
    taken = SaleItem.objects.filter(pk=item.pk, taken__lte=F("allotment") - quantity).update(
        taken=F("taken") + quantity
    )
    if not taken:
        left = SaleItem.objects.filter(pk=item.pk).values_list(
            F("allotment") - F("taken"), flat=True
        ).get()  # fmt: skip
        raise SaleSoldOut(
            f"The sale has sold out of {item.variant}."
            if left <= 0
            else f"Only {left} left in the sale of {item.variant}.",
            sale_item_id=item.pk,
        )
    SaleCustomer.objects.get_or_create(sale_id=sale.pk, customer_key=customer_key)
    counted = SaleCustomer.objects.filter(sale_id=sale.pk, customer_key=customer_key)
    if sale.per_customer_limit is not None:
        counted = counted.filter(units__lte=sale.per_customer_limit - quantity)
    if not counted.update(units=F("units") + quantity):
        raise SaleLimitReached(
            f"You can buy at most {sale.per_customer_limit} in the sale “{sale.name}”, "
            "and your orders already hold some of them.",
            limit=sale.per_customer_limit,
        )
    return SaleHold.objects.create(
        sale_item=item,
        customer_key=customer_key,
        quantity=quantity,
        reference=reference,
        expires_at=now + timedelta(minutes=sale.hold_minutes),
    )


def sale_hold_release(*, hold_id: int) -> bool:
    """Put a held hold's units back on sale (the order was cancelled or expired); return False
    if it was no longer held (released or sold already): it happens exactly once."""
    changed = SaleHold.objects.filter(pk=hold_id, status=SaleHold.Status.HELD).update(
        status=SaleHold.Status.RELEASED, settled_at=timezone.now()
    )
    if not changed:
        return False
    hold = SaleHold.objects.select_related("sale_item").get(pk=hold_id)
    SaleItem.objects.filter(pk=hold.sale_item_id).update(taken=F("taken") - hold.quantity)
    SaleCustomer.objects.filter(
        sale_id=hold.sale_item.sale_id, customer_key=hold.customer_key
    ).update(units=F("units") - hold.quantity)
    return True


def sale_hold_sell(*, hold_id: int) -> bool:
    """Mark a hold sold (its order was paid); return False if it was not held."""
    return bool(
        SaleHold.objects.filter(pk=hold_id, status=SaleHold.Status.HELD).update(
            status=SaleHold.Status.SOLD, settled_at=timezone.now()
        )
    )


@transaction.atomic
def sale_item_set_allotment(*, sale_item_id: int, allotment: int) -> SaleItem:
    """Change how many units a sale offers, never below the units already in orders."""
    item = SaleItem.objects.select_for_update().get(pk=sale_item_id)
    if allotment < item.taken:
        raise SaleError(
            f"{item.taken} units are already in orders: the allotment cannot go below that."
        )
    item.allotment = allotment
    item.save(update_fields=["allotment"])
    return item
