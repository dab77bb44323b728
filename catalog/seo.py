"""Search-engine metadata: canonical URLs and schema.org structured data for products."""

from decimal import Decimal

from django.http import HttpRequest
from django.utils.html import strip_tags
from django.utils.text import Truncator

from catalog.models import Product
from catalog.selectors import SaleOffer


def meta_description(text: str, *, fallback: str = "") -> str:
    """Return plain text of at most 160 characters for a <meta name="description">."""
    plain = " ".join(strip_tags(text or fallback).split())
    return Truncator(plain).chars(160)


def product_structured_data(
    request: HttpRequest, product: Product, *, sale_offers: dict[int, SaleOffer] | None = None
) -> dict:
    """Return the schema.org Product (with its offers) for the product page's JSON-LD.

    A variant in a live sale with units left is offered at its sale price, valid until the
    sale's end."""
    variants = product.active_variants
    sale_offers = sale_offers or {}

    def price(variant) -> Decimal:
        offer = sale_offers.get(variant.pk)
        return offer.sale_price if offer and offer.state == "live" else variant.price

    url = request.build_absolute_uri(product.get_absolute_url())
    data: dict = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product.name,
        "description": meta_description(product.description, fallback=product.name),
        "url": url,
        "image": [request.build_absolute_uri(image.image.url) for image in product.images.all()],
        "category": product.category.name,
    }
    if product.brand:
        data["brand"] = {"@type": "Brand", "name": product.brand}
    if len(variants) == 1:
        data["sku"] = variants[0].sku
    offers = [
        {
            "@type": "Offer",
            "sku": variant.sku,
            "price": str(price(variant)),
            "priceCurrency": variant.currency,
            "availability": "https://schema.org/InStock"
            if variant.stock > 0
            else "https://schema.org/OutOfStock",
            "url": f"{url}?variant={variant.pk}",
        }
        for variant in variants
    ]
    for variant, offer in zip(variants, offers, strict=True):
        sale = sale_offers.get(variant.pk)
        if sale and sale.state == "live":
            offer["priceValidUntil"] = sale.ends_at.isoformat()
    if offers:
        prices = [price(variant) for variant in variants]
        data["offers"] = {
            "@type": "AggregateOffer",
            "lowPrice": str(min(prices)),
            "highPrice": str(max(prices)),
            "priceCurrency": variants[0].currency,
            "offerCount": len(offers),
            "offers": offers,
        }
    return data
