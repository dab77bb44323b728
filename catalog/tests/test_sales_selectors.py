"""Reading sales: which offer a variant gets, how many units are left, and product cards."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from catalog import selectors
from catalog.models import Product, SaleItem
from catalog.services import sale_units_take
from catalog.tests.factories import ProductVariantFactory, SaleFactory, SaleItemFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_the_live_sale_beats_an_upcoming_one():
    variant = ProductVariantFactory(price=Decimal("40.00"))
    SaleItemFactory(
        variant=variant, sale=SaleFactory(starts_at=NOON + HOUR), sale_price=Decimal("10.00")
    )
    live = SaleItemFactory(
        variant=variant, sale=SaleFactory(starts_at=NOON - HOUR), sale_price=Decimal("30.00")
    )

    offer = selectors.sale_offers(variant_ids=[variant.pk], now=NOON)[variant.pk]

    assert (offer.item_id, offer.state, offer.sale_price) == (live.pk, "live", Decimal("30.00"))


def test_of_two_live_sales_the_lowest_price_wins():
    variant = ProductVariantFactory(price=Decimal("40.00"))
    SaleItemFactory(
        variant=variant, sale=SaleFactory(starts_at=NOON - HOUR), sale_price=Decimal("30.00")
    )
    cheaper = SaleItemFactory(
        variant=variant, sale=SaleFactory(starts_at=NOON - 2 * HOUR), sale_price=Decimal("25.00")
    )

    offer = selectors.sale_offers(variant_ids=[variant.pk], now=NOON)[variant.pk]

    assert (offer.item_id, offer.sale_price) == (cheaper.pk, Decimal("25.00"))


@pytest.mark.parametrize(
    ("at", "state"),
    [
        (NOON - timedelta(microseconds=1), "upcoming"),
        (NOON, "live"),
        (NOON + 2 * HOUR - timedelta(microseconds=1), "live"),
        (NOON + 2 * HOUR, None),
    ],
)
def test_a_sale_starts_and_ends_on_the_second(at, state):
    item = SaleItemFactory(sale=SaleFactory(starts_at=NOON, ends_at=NOON + 2 * HOUR))

    offer = selectors.sale_offers(variant_ids=[item.variant_id], now=at).get(item.variant_id)

    assert (offer.state if offer else None) == state


def test_units_of_expired_holds_are_back_on_sale():
    item = SaleItemFactory(sale=SaleFactory(starts_at=NOON - HOUR, hold_minutes=10), allotment=5)
    sale_units_take(sale_item_id=item.pk, quantity=2, customer_key="user:1", reference="N-1",
                    now=NOON - timedelta(minutes=15))  # fmt: skip
    sale_units_take(sale_item_id=item.pk, quantity=1, customer_key="user:2", reference="N-2",
                    now=NOON - timedelta(minutes=5))  # fmt: skip

    offer = selectors.sale_offers(variant_ids=[item.variant_id], now=NOON)[item.variant_id]

    assert SaleItem.objects.get().taken == 3
    assert offer.units_left == 4  # 5 - 3 taken + 2 whose hold ran out


def test_units_left_never_pass_the_stock():
    item = SaleItemFactory(variant=ProductVariantFactory(stock=3), allotment=10,
                           sale=SaleFactory(starts_at=NOON - HOUR))  # fmt: skip

    offer = selectors.sale_offers(variant_ids=[item.variant_id], now=NOON)[item.variant_id]

    assert (offer.units_left, offer.state) == (3, "live")


def test_cards_carry_the_lowest_live_sale_price_with_units_left():
    product = ProductVariantFactory(price=Decimal("40.00")).product
    ProductVariantFactory(product=product, price=Decimal("50.00"))
    small, large = product.variants.order_by("price")
    live = SaleFactory(starts_at=NOON - HOUR)
    SaleItemFactory(sale=live, variant=small, sale_price=Decimal("20.00"), allotment=1, taken=1)
    SaleItemFactory(sale=live, variant=large, sale_price=Decimal("35.00"))
    SaleItemFactory(
        sale=SaleFactory(starts_at=NOON + HOUR), variant=small, sale_price=Decimal("5.00")
    )

    cards = selectors.product_cards_with_sale(Product.objects.all(), now=NOON)

    assert [card.sale_price for card in cards] == [Decimal("35.00")]


@pytest.mark.parametrize("sale", ["ended", "switched off", "upcoming"])
def test_cards_carry_no_sale_price_without_a_live_sale(sale):
    starts_at = {"ended": NOON - 3 * HOUR, "switched off": NOON - HOUR, "upcoming": NOON + HOUR}
    SaleItemFactory(
        sale=SaleFactory(starts_at=starts_at[sale], ends_at=starts_at[sale] + 2 * HOUR,
                         is_active=sale != "switched off"),
    )  # fmt: skip

    cards = selectors.product_cards_with_sale(Product.objects.all(), now=NOON)

    assert [card.sale_price for card in cards] == [None]


def test_the_product_page_re_stamps_cached_offers_with_the_time_of_the_request():
    item = SaleItemFactory(sale=SaleFactory(starts_at=NOON - HOUR, ends_at=NOON + HOUR))
    slug = item.variant.product.slug

    selectors.product_page(slug=slug, now=NOON)
    page = selectors.product_page(slug=slug, now=NOON + timedelta(milliseconds=600))

    assert page.offers[item.variant_id].seconds_to_end == 3600  # ceil(3599.4)
    assert page.offers[item.variant_id].now == NOON + timedelta(milliseconds=600)
