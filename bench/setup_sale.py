"""Create the flash sale's product (and its sale) in the bench database; print what was made.

Run by bench/run.py with the bench's environment, as
`python bench/setup_sale.py '<json options>'` (DJANGO_SETTINGS_MODULE=shop.settings,
PYTHONPATH=.). Prints one JSON object on its last line: the product's slug and URL, the variant,
the sale (or null when the shop has no sale models or --no-sale was asked) and T0.
"""

import json
import sys
from datetime import timedelta
from decimal import Decimal

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from catalog import models as catalog_models  # noqa: E402
from catalog.services import product_refresh_price_from  # noqa: E402

SLUG = "bench-flash-sale"


def main(options: dict) -> dict:
    units = int(options["units"])
    lead = float(options["lead_seconds"])
    want_sale = options.get("sale", True)
    has_sale_models = hasattr(catalog_models, "Sale") and hasattr(catalog_models, "SaleItem")
    category = (
        catalog_models.Category.objects.filter(is_active=True, parent__isnull=True)
        .order_by("position", "id")
        .first()
    )
    if category is None:
        raise SystemExit("No active category: run seed_demo first.")
    t0 = timezone.now() + timedelta(seconds=lead)
    with transaction.atomic():
        product = catalog_models.Product.objects.create(
            category=category,
            name="Flash sale: Northwind Storm Jacket",
            slug=SLUG,
            brand="Northwind",
            description="The jacket of the flash sale (made by bench/setup_sale.py).",
            is_active=True,
        )
        # create() runs the model's save(), which fills stock_received from the opening stock.
        variant = catalog_models.ProductVariant.objects.create(
            product=product,
            sku="BENCH-FLASH-1",
            price=Decimal(options["price"]),
            stock=units,
            options={},
            is_active=True,
        )
        product_refresh_price_from(product_ids=[product.pk])
        sale = item = None
        if want_sale and has_sale_models:
            sale = catalog_models.Sale.objects.create(
                name="Bench flash sale",
                starts_at=t0,
                ends_at=t0 + timedelta(seconds=float(options["sale_seconds"])),
                per_customer_limit=options.get("per_customer_limit"),
                is_active=True,
            )
            item = catalog_models.SaleItem.objects.create(
                sale=sale, variant=variant, sale_price=Decimal(options["sale_price"]),
                allotment=units,
            )  # fmt: skip
    return {
        "product_id": product.pk,
        "product_slug": product.slug,
        "product_url": product.get_absolute_url(),
        "category_url": category.get_absolute_url(),
        "variant_id": variant.pk,
        "initial_stock": variant.stock,
        "stock_received": getattr(variant, "stock_received", None),
        "price": str(variant.price),
        "sale": (
            {
                "id": sale.pk,
                "item_id": item.pk,
                "sale_price": str(item.sale_price),
                "allotment": item.allotment,
                "per_customer_limit": sale.per_customer_limit,
                "hold_minutes": sale.hold_minutes,
                "starts_at": sale.starts_at.isoformat(),
                "ends_at": sale.ends_at.isoformat(),
            }
            if sale is not None
            else None
        ),
        "sale_models": has_sale_models,
        "t0": t0.timestamp(),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
