"""Flash sales on the shop's pages: the product page's sale states, cards, JSON-LD and caching.

The clock is frozen by patching `django.utils.timezone.now` (the only thing mocked)."""

import json
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest

from catalog.models import ProductVariant, SaleItem
from catalog.services import sale_units_take
from catalog.tests.factories import (
    CategoryFactory,
    ProductFactory,
    SaleFactory,
    SaleItemFactory,
)

pytestmark = pytest.mark.django_db

NOON = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
PRODUCT_QUERIES_COLD = 5  # product with category, variants, images, sale offers, category tree
PRODUCT_QUERIES_WARM = 0  # everything comes from the cache (the category tree too)
PRODUCT_QUERIES_STALE_SALE = 2  # stock, sale offers (catalog data and category tree cached)


@contextmanager
def clock(moment: datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def _sale_block(html: str) -> dict[str, str] | None:
    match = re.search(r"<div class=\"sale [^\"]*\"([^>]*)>", html)
    if not match:
        return None
    return dict(re.findall(r'data-sale-([a-z]+)="([^"]*)"', match.group(1)))


def _ld_json(html: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match, "no JSON-LD on the page"
    return json.loads(match.group(1))


@pytest.fixture
def boot():
    """A product with one variant at €40.00, 20 in stock, in a sale at €29.00 (8 units) from
    noon to 14:00."""
    product = ProductFactory(
        name="Trail boot", slug="trail-boot",
        variants=[{"sku": "BOOT-42", "price": Decimal("40.00"), "stock": 20}],
    )  # fmt: skip
    sale = SaleFactory(name="Summer drop", starts_at=NOON, ends_at=NOON + timedelta(hours=2))
    item = SaleItemFactory(
        sale=sale, variant=product.variants.get(), sale_price=Decimal("29.00"), allotment=8
    )
    return item


def _page(client, at: datetime, path: str = "/product/trail-boot/") -> str:
    with clock(at):
        response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


# --- Product page: the four states ---------------------------------------------------------------


def test_before_the_start_the_page_shows_the_coming_sale_and_a_countdown(client, boot):
    html = _page(client, NOON - timedelta(minutes=5))

    assert _sale_block(html) == {
        "state": "upcoming", "left": "8", "item": str(boot.pk), "price": "29.00",
    }  # fmt: skip
    assert '<p class="price" id="price">€40.00</p>' in html
    assert "<strong>€29.00</strong> from" in html
    assert '<time datetime="2030-06-01T12:00:00+00:00">1 Jun 2030, 12:00 UTC</time>' in html
    assert 'data-countdown="300"' in html


def test_during_the_sale_the_page_shows_the_sale_price_units_left_and_the_end(client, boot):
    html = _page(client, NOON + timedelta(minutes=30))

    assert _sale_block(html) == {
        "state": "live", "left": "8", "item": str(boot.pk), "price": "29.00",
    }  # fmt: skip
    assert '€29.00 <s class="price-regular">' in html
    assert '<span class="visually-hidden">Regular price </span>€40.00</s>' in html
    assert "8 left in the sale" in html
    assert 'data-countdown="5400"' in html  # 90 minutes to the end
    # The add-to-cart form is unchanged: the cart recomputes the price on the server.
    assert f'<input type="hidden" name="variant" value="{boot.variant_id}">' in html
    assert 'name="quantity" value="1"' in html


def test_units_taken_by_orders_lower_the_units_left(client, boot):
    sale_units_take(
        sale_item_id=boot.pk, quantity=3, customer_key="user:1", reference="N-1",
        now=NOON + timedelta(minutes=1),
    )  # fmt: skip

    html = _page(client, NOON + timedelta(minutes=2))

    assert _sale_block(html)["left"] == "5"
    assert "5 left in the sale" in html


def test_a_sold_out_sale_shows_sold_out_and_the_regular_price_while_stock_lasts(client, boot):
    SaleItem.objects.filter(pk=boot.pk).update(taken=8)

    html = _page(client, NOON + timedelta(minutes=30))

    assert _sale_block(html)["state"] == "sold-out"
    assert _sale_block(html)["left"] == "0"
    assert "Sold out in the sale: still available at the regular price." in html
    assert '<p class="price" id="price">€40.00</p>' in html
    assert "Add to cart</button>" in html and "disabled" not in html


def test_a_sale_that_took_the_last_units_in_stock_shows_sold_out_and_out_of_stock(client, boot):
    ProductVariant.objects.filter(pk=boot.variant_id).update(stock=0)

    html = _page(client, NOON + timedelta(minutes=30))

    assert _sale_block(html)["state"] == "sold-out"
    assert "Sold out in the sale." in html
    assert "Out of stock" in html


def test_after_the_sale_the_page_shows_the_normal_price(client, boot):
    html = _page(client, NOON + timedelta(hours=2))

    assert _sale_block(html) is None
    assert '<p class="price" id="price">€40.00</p>' in html
    assert "€29.00" not in html


def test_a_switched_off_sale_is_not_shown(client, boot):
    boot.sale.is_active = False
    boot.sale.save()

    html = _page(client, NOON + timedelta(minutes=30))

    assert _sale_block(html) is None
    assert "€29.00" not in html


def test_a_sale_starts_and_ends_on_the_second_even_with_the_page_cached(client, boot):
    second = timedelta(seconds=1)
    states = []
    for moment in [NOON - second, NOON - second / 2, NOON, NOON + timedelta(hours=2) - second,
                   NOON + timedelta(hours=2) - second / 4, NOON + timedelta(hours=2)]:  # fmt: skip
        block = _sale_block(_page(client, moment))
        states.append(block["state"] if block else None)

    assert states == ["upcoming", "upcoming", "live", "live", "live", None]


def test_each_variant_in_the_choice_shows_its_own_sale(client):
    product = ProductFactory(
        slug="tee",
        variants=[
            {"sku": "TEE-S", "price": Decimal("20.00"), "options": {"size": "S"}},
            {"sku": "TEE-M", "price": Decimal("20.00"), "options": {"size": "M"}},
            {"sku": "TEE-L", "price": Decimal("20.00"), "options": {"size": "L"}},
        ],
    )
    small, medium, large = (product.variants.get(sku=f"TEE-{size}") for size in "SML")
    live = SaleFactory(starts_at=NOON - timedelta(hours=1), ends_at=NOON + timedelta(hours=1))
    later = SaleFactory(starts_at=NOON + timedelta(days=1), ends_at=NOON + timedelta(days=2))
    SaleItemFactory(sale=live, variant=small, sale_price=Decimal("12.00"))
    SaleItemFactory(sale=later, variant=medium, sale_price=Decimal("14.00"))
    SaleItemFactory(sale=live, variant=large, sale_price=Decimal("13.00"), allotment=1, taken=1)

    with clock(NOON):
        response = client.get(f"/product/tee/?variant={medium.pk}")

    html = response.content.decode()
    assert {v.sku: v.sale.state if v.sale else None for v in response.context["variants"]} == {
        "TEE-L": "sold-out", "TEE-M": "upcoming", "TEE-S": "live",
    }  # fmt: skip
    assert '€12.00 <s class="price-regular">€20.00</s>' in html
    assert "sale from 2 Jun, 12:00" in html
    assert "sold out in the sale" in html
    assert _sale_block(html)["state"] == "upcoming"  # the chosen variant's


def test_structured_data_offers_the_sale_price_until_the_end(client, boot):
    during = _ld_json(_page(client, NOON + timedelta(minutes=1)))
    before = _ld_json(_page(client, NOON - timedelta(minutes=1)))

    offer = during["offers"]["offers"][0]
    assert (offer["price"], offer["priceValidUntil"]) == ("29.00", "2030-06-01T14:00:00+00:00")
    assert during["offers"]["lowPrice"] == "29.00"
    assert before["offers"]["offers"][0]["price"] == "40.00"
    assert "priceValidUntil" not in before["offers"]["offers"][0]


# --- Caching: sale info may lag about a second, catalog data until a merchant saves ----------


def test_product_page_queries_cold_warm_and_after_a_second(client, boot, django_assert_num_queries):
    at = NOON + timedelta(minutes=1)
    with clock(at), django_assert_num_queries(PRODUCT_QUERIES_COLD):
        client.get("/product/trail-boot/")
    with clock(at + timedelta(milliseconds=900)), django_assert_num_queries(PRODUCT_QUERIES_WARM):
        client.get("/product/trail-boot/")
    with clock(at + timedelta(seconds=1)), django_assert_num_queries(PRODUCT_QUERIES_STALE_SALE):
        client.get("/product/trail-boot/")


def test_units_left_lag_at_most_a_second(client, boot):
    at = NOON + timedelta(minutes=1)
    _page(client, at)
    SaleItem.objects.filter(pk=boot.pk).update(taken=6)

    within = _sale_block(_page(client, at + timedelta(milliseconds=500)))
    after = _sale_block(_page(client, at + timedelta(seconds=1)))

    assert (within["left"], after["left"]) == ("8", "2")


def test_stock_shown_lags_at_most_a_second(client, boot):
    at = NOON - timedelta(days=30)  # no sale near
    _page(client, at)
    ProductVariant.objects.filter(pk=boot.variant_id).update(stock=0)

    within = _page(client, at + timedelta(milliseconds=500))
    after = _page(client, at + timedelta(seconds=1))

    assert "Out of stock" not in within
    assert "Out of stock" in after


def test_a_new_sale_shows_within_a_second(client):
    ProductFactory(slug="mug", variants=[{"price": Decimal("10.00")}])
    _page(client, NOON, "/product/mug/")
    SaleItemFactory(
        sale=SaleFactory(starts_at=NOON - timedelta(hours=1)),
        variant=ProductVariant.objects.get(product__slug="mug"),
        sale_price=Decimal("7.00"),
    )

    html = _page(client, NOON + timedelta(seconds=1), "/product/mug/")

    assert _sale_block(html)["state"] == "live"


def test_a_merchant_save_drops_the_cached_page(
    client, admin_client, django_capture_on_commit_callbacks
):
    product = ProductFactory(slug="mug", variants=[{"sku": "MUG-1", "price": Decimal("10.00")}])
    variant = product.variants.get()
    assert "€10.00" in _page(client, NOON, "/product/mug/")
    data = {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000", "_save": "Save", "form-0-id": str(variant.pk),
        "form-0-price": "12.50", "form-0-stock": "10", "initial-form-0-stock": "10",
        "form-0-is_active": "on",
    }  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post("/admin/catalog/productvariant/", data).status_code == 302

    html = _page(client, NOON, "/product/mug/")
    assert '<p class="price" id="price">€12.50</p>' in html


# --- Product cards -------------------------------------------------------------------------------


def test_cards_show_a_sale_badge_and_price_during_a_live_sale(client, boot):
    before = _page(
        client, NOON - timedelta(minutes=1), f"/category/{boot.variant.product.category.slug}/"
    )
    during = _page(
        client, NOON + timedelta(minutes=1), f"/category/{boot.variant.product.category.slug}/"
    )

    assert '<p class="badge badge-sale">Sale</p>' not in before
    assert '<p class="badge badge-sale">Sale</p>' in during
    assert 'from €29.00 <s class="price-regular">€40.00</s>' in during


def test_cards_show_no_sale_once_its_units_are_gone(client, boot):
    SaleItem.objects.filter(pk=boot.pk).update(taken=8)

    html = _page(client, NOON + timedelta(minutes=1), "/search/?q=trail")

    assert "Trail boot" in html
    assert "badge-sale" not in html


@pytest.mark.parametrize("products", [2, 12])
def test_card_pages_keep_their_query_counts_with_sales(client, django_assert_num_queries, products):
    category = CategoryFactory(slug="gear")
    sale = SaleFactory(starts_at=NOON - timedelta(hours=1))
    for n in range(products):
        product = ProductFactory(category=category, name=f"Tent {n}", is_featured=True)
        SaleItemFactory(sale=sale, variant=product.variants.get(), sale_price=Decimal("9.00"))

    with clock(NOON):
        # the first page reads the category tree, the others find it in the cache
        for path, queries in [("/", 3), ("/category/gear/", 2), ("/search/?q=tent", 2)]:
            with django_assert_num_queries(queries):
                html = client.get(path).content.decode()
            assert html.count('<p class="badge badge-sale">Sale</p>') >= products, path
