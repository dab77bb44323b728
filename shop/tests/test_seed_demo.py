"""The `seed_demo` command: a repeatable demo catalog, checkout settings and merchant."""

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Min, Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from catalog import demo
from catalog.models import Category, Product, ProductImage, ProductVariant
from catalog.tests.factories import ProductFactory
from orders.models import ShippingMethod, TaxRate, Voucher

pytestmark = pytest.mark.django_db

MERCHANT_PASSWORD = "shop-demo-merchant"
# Golden values for seed 2026: they only change when the generator changes on purpose. They catch
# output that differs between processes (e.g. anything derived from `hash()`).
GOLDEN_VARIANTS_OF_30 = 58
GOLDEN_FIRST_SLUG = "heritage-canvas-high-top-1"
GOLDEN_FIRST_SKU = "SNK-2026-00001-EU-43-OLIVE"
GOLDEN_FIRST_PRICE = Decimal("52.99")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def _variant_rows() -> list[tuple]:
    return list(
        ProductVariant.objects.order_by("sku").values_list(
            "product__slug", "sku", "options", "price", "stock", "is_active", "position"
        )
    )


def _spec_rows(specs: list[demo.DemoProductSpec]) -> list[tuple]:
    rows = [
        (spec.slug, v.sku, v.options, v.price, v.stock, v.is_active, position)
        for spec in specs
        for position, v in enumerate(spec.variants)
    ]
    return sorted(rows, key=lambda row: row[1])


def _table_counts() -> dict[str, int]:
    return {
        "categories": Category.objects.count(),
        "products": Product.objects.count(),
        "variants": ProductVariant.objects.count(),
        "images": ProductImage.objects.count(),
        "users": get_user_model().objects.count(),
        "groups": Group.objects.count(),
    }


NOTHING = {"categories": 0, "products": 0, "variants": 0, "images": 0, "users": 0, "groups": 0}


def _media_files() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_seed_builds_a_catalog_that_meets_every_rule():
    # given an empty shop
    specs = demo.demo_products_generate(count=30)

    # when 30 demo products are seeded
    output = _seed(products=30)

    # then the summary line reports exactly what was made
    lines = output.splitlines()
    assert re.fullmatch(
        r"Seeded demo catalog: 30 products \(30 new\), 58 variants, "
        r"25 categories \(25 new\) in \d+\.\d s\.",
        lines[0],
    )
    assert lines[1:] == [
        "Checkout: 2 shipping method(s), 18 tax rate(s) and 1 voucher(s) added "
        "(try the code WELCOME10).",
        "Sales: 2 demo sale(s) with 10 item(s) (“Flash Friday” is on now, “Winter preview” "
        "starts in two days).",
        f"Demo merchant (new account): merchant@example.com / {MERCHANT_PASSWORD}",
        "Back office: /admin/",
    ]
    # and the category tree has 6 roots of 2 to 4 subcategories each, and products only in those
    assert Category.objects.count() == 25
    roots = Category.objects.filter(parent=None).annotate(child_count=Count("children"))
    assert sorted(root.slug for root in roots) == [
        "accessories",
        "clothing",
        "home",
        "outdoor",
        "shoes",
        "sports",
    ]
    assert all(2 <= root.child_count <= 4 for root in roots)
    assert not Category.objects.filter(parent__isnull=False, children__isnull=False).exists()
    assert not Product.objects.filter(category__parent=None).exists()
    # and the products and variants are the generator's, with 1 to 4 variants each
    assert Product.objects.count() == 30
    assert ProductVariant.objects.count() == GOLDEN_VARIANTS_OF_30
    assert _variant_rows() == _spec_rows(specs)
    variant_counts = list(Product.objects.annotate(n=Count("variants")).values_list("n", flat=True))
    assert set(variant_counts) <= {1, 2, 3, 4}
    assert min(variant_counts) == 1
    # and every price has two decimal places
    prices = ProductVariant.objects.values_list("price", flat=True)
    assert all(price.as_tuple().exponent == -2 and price > 0 for price in prices)
    # and some variants are out of stock and some products are featured
    zero_stock = sum(v.stock == 0 for spec in specs for v in spec.variants)
    assert ProductVariant.objects.filter(stock=0).count() == zero_stock
    assert zero_stock > 0
    featured = sum(spec.is_featured for spec in specs)
    assert Product.objects.filter(is_featured=True).count() == featured
    assert featured > 0
    # and every product is visible with a brand, a description and at least one picture
    assert not Product.objects.filter(Q(brand="") | Q(description="") | Q(is_active=False)).exists()
    assert not Product.objects.filter(images=None).exists()
    assert ProductImage.objects.count() == sum(len(spec.pictures) for spec in specs)


def test_price_from_is_the_lowest_active_variant_price():
    # given a product whose cheapest variant is inactive, among the first 500 demo products
    specs = demo.demo_products_generate(count=500)
    special = next(
        spec
        for spec in specs
        if min(v.price for v in spec.variants) < min(v.price for v in spec.variants if v.is_active)
    )

    # when they are seeded
    _seed(products=500)

    # then every product's price_from is the lowest price of its active variants
    products = Product.objects.annotate(
        lowest=Min("variants__price", filter=Q(variants__is_active=True))
    )
    assert [(p.slug, p.price_from) for p in products] == [(p.slug, p.lowest) for p in products]
    assert not products.filter(price_from=None).exists()
    # and the inactive cheaper variant is left out
    product = Product.objects.get(slug=special.slug)
    assert product.price_from == min(v.price for v in special.variants if v.is_active)
    assert product.price_from > min(v.price for v in special.variants)


def test_same_seed_builds_the_same_catalog_on_a_fresh_run():
    # given a seeded catalog that is then emptied
    _seed(products=30)
    first_run = _variant_rows()
    Product.objects.all().delete()

    # when it is seeded again with the same seed
    _seed(products=30)

    # then the products, SKUs, options, prices and stock are the same as the first time
    assert _variant_rows() == first_run
    # and they are the ones this seed has always given
    golden = [row[:4] for row in first_run if row[1] == GOLDEN_FIRST_SKU]
    assert golden == [
        (
            GOLDEN_FIRST_SLUG,
            GOLDEN_FIRST_SKU,
            {"size": "EU 43", "colour": "Olive"},
            GOLDEN_FIRST_PRICE,
        )
    ]


def test_a_product_does_not_depend_on_the_products_before_it():
    # given the first 20 demo products
    twenty = demo.demo_products_generate(count=20)

    # when product 17 is generated on its own, and with another seed
    alone = demo.demo_product_generate(number=17)
    other_seed = demo.demo_products_generate(count=20, seed=7)

    # then it is the same product; another seed gives other products
    assert alone == twenty[16]
    assert {spec.slug for spec in other_seed}.isdisjoint({spec.slug for spec in twenty})


def test_second_run_with_the_same_count_creates_nothing():
    # given a seeded catalog
    _seed(products=30)
    before = _table_counts()
    products_before = list(Product.objects.order_by("id").values_list("id", "slug", "updated_at"))
    variants_before = _variant_rows()

    # when the command runs again
    output = _seed(products=30)

    # then nothing is created or changed
    assert output.startswith(
        "Seeded demo catalog: 30 products (0 new), 58 variants, 25 categories (0 new) in "
    )
    assert "Demo merchant (existing account): merchant@example.com" in output
    assert _table_counts() == before
    assert list(Product.objects.order_by("id").values_list("id", "slug", "updated_at")) == (
        products_before
    )
    assert _variant_rows() == variants_before


def test_larger_count_adds_only_the_missing_products():
    # given 30 seeded products
    _seed(products=30)
    first_thirty = list(Product.objects.order_by("id").values_list("id", "slug"))

    # when 45 are asked for
    output = _seed(products=45)

    # then the 30 stay as they were and 15 are added: the catalog is the generator's first 45
    assert output.startswith("Seeded demo catalog: 45 products (15 new), ")
    assert Product.objects.count() == 45
    assert list(Product.objects.order_by("id").values_list("id", "slug")[:30]) == first_thirty
    assert _variant_rows() == _spec_rows(demo.demo_products_generate(count=45))
    assert Category.objects.count() == 25


def test_seeding_takes_the_same_number_of_queries_for_more_products():
    # given the demo categories and pictures already in place
    demo.demo_catalog_seed(products=0)

    # when 10 products are added, then 40 more
    with CaptureQueriesContext(connection) as ten:
        demo.demo_catalog_seed(products=10)
    with CaptureQueriesContext(connection) as forty:
        demo.demo_catalog_seed(products=50)

    # then both runs take the same number of queries: products are written in bulk
    assert Product.objects.count() == 50
    assert len(forty) == len(ten)


def test_pictures_are_a_small_shared_set_written_once_with_thumbnails():
    # given an empty media directory
    assert _media_files() == []

    # when the catalog is seeded twice
    first = demo.demo_catalog_seed(products=30)
    second = demo.demo_catalog_seed(products=60)

    # then 18 pictures and their 18 thumbnails were written, once
    assert (first.pictures_written, second.pictures_written) == (18, 0)
    files = _media_files()
    assert len(files) == 36
    assert all(name.startswith("demo/") for name in files)
    # and every image row points at an existing shared file, with its true size, and a thumbnail
    # no larger than 480 px
    media_root = Path(settings.MEDIA_ROOT)
    images = list(ProductImage.objects.all())
    assert len(images) == sum(len(s.pictures) for s in demo.demo_products_generate(count=60))
    assert {image.image.name for image in images} <= set(files)
    for image in images:
        with Image.open(media_root / image.image.name) as picture:
            assert picture.size == (image.width, image.height)
        with Image.open(media_root / image.thumbnail.name) as thumbnail:
            assert max(thumbnail.size) <= 480
        assert image.alt_text.startswith(image.product.name)


def test_merchant_can_sign_in_to_the_back_office_without_being_superuser(client):
    # given a seeded shop
    _seed(products=0)

    # when the merchant signs in and opens the back office
    signed_in = client.login(email="merchant@example.com", password=MERCHANT_PASSWORD)
    response = client.get(reverse("admin:index"))

    # then the page opens, and the merchant may manage the catalog but not accounts
    assert signed_in is True
    assert response.status_code == 200
    merchant = get_user_model().objects.get(email="merchant@example.com")
    assert (merchant.is_staff, merchant.is_superuser) == (True, False)
    assert merchant.has_perm("catalog.change_product")
    assert merchant.has_perm("catalog.add_productvariant")
    assert not merchant.has_perm("accounts.change_user")
    # and the Merchants group holds every permission of catalog, orders and payments
    group = Group.objects.get(name="Merchants")
    assert list(merchant.groups.all()) == [group]
    expected = Permission.objects.filter(
        content_type__app_label__in=["catalog", "orders", "payments"]
    )
    assert set(group.permissions.all()) == set(expected)
    assert {"view_category", "change_product", "add_productvariant", "delete_productimage"} <= set(
        expected.values_list("codename", flat=True)
    )


def test_second_run_keeps_one_merchant_and_resets_only_the_group_permissions():
    # given a seeded merchant who changed their password, and a group that lost a permission
    _seed(products=0)
    user_model = get_user_model()
    merchant = user_model.objects.get(email="merchant@example.com")
    merchant.set_password("my-own-password")
    merchant.full_name = "Dana Merchant"
    merchant.save()
    group = Group.objects.get(name="Merchants")
    group.permissions.remove(Permission.objects.get(codename="change_product"))

    # when the command runs again
    output = _seed(products=0)

    # then there is still one merchant, as they left it, and the group has its permissions back
    assert user_model.objects.filter(email__iexact="merchant@example.com").count() == 1
    merchant.refresh_from_db()
    assert merchant.check_password("my-own-password")
    assert merchant.full_name == "Dana Merchant"
    assert group.permissions.filter(codename="change_product").exists()
    assert Group.objects.filter(name="Merchants").count() == 1
    assert (
        "Demo merchant (existing account): merchant@example.com / (not the one given: the "
        "account's password was left as it was)"
    ) in output


def test_merchant_password_option_sets_the_new_account_password(client):
    # given an empty shop
    # when the command runs with a chosen password
    _seed(products=0, merchant_password="another-secret-77")

    # then the merchant signs in with it
    assert client.login(email="merchant@example.com", password="another-secret-77") is True


def test_if_empty_skips_a_catalog_that_has_products():
    # given a shop with 5 demo products
    _seed(products=5)
    before = _table_counts()

    # when seeding 30 only if empty
    output = _seed(products=30, if_empty=True)

    # then nothing is written, and the merchant's login is still shown
    assert output == (
        "The catalog already has products: demo seeding skipped.\n"
        "Demo merchant: merchant@example.com / shop-demo-merchant\n"
        "Back office: /admin/\n"
    )
    assert _table_counts() == before
    assert Product.objects.count() == 5


def test_if_empty_without_the_demo_merchant_points_to_createsuperuser():
    # given a shop whose products were not made by the demo seeder
    ProductFactory()

    # when seeding only if empty
    output = _seed(products=30, if_empty=True)

    # then no password is claimed, and nothing is written
    assert "createsuperuser" in output
    assert "shop-demo-merchant" not in output
    assert Product.objects.count() == 1


def test_if_empty_seeds_an_empty_catalog():
    # given an empty shop
    # when seeding 30 only if empty
    output = _seed(products=30, if_empty=True)

    # then the catalog is seeded
    assert output.startswith("Seeded demo catalog: 30 products (30 new), ")
    assert Product.objects.count() == 30


def test_dry_run_reports_and_writes_nothing():
    # given an empty shop
    # when the command runs with --dry-run
    output = _seed(products=30, dry_run=True)

    # then it reports what it would create, and nothing is in the database or the media directory
    assert output.splitlines() == [
        "Dry run, nothing written. Would seed demo catalog: 30 products (30 new), 58 variants, "
        "25 categories (25 new).",
        f"Demo merchant (account to be created): merchant@example.com / {MERCHANT_PASSWORD}",
        "Back office: /admin/",
    ]
    assert _table_counts() == NOTHING
    assert _media_files() == []


def test_dry_run_after_a_seed_counts_only_the_missing_products():
    # given 30 seeded products
    _seed(products=30)
    before = _table_counts()

    # when a dry run asks for 45
    output = _seed(products=45, dry_run=True)

    # then it would add 15 and writes nothing
    assert output.startswith(
        "Dry run, nothing written. Would seed demo catalog: 45 products (15 new), "
    )
    assert _table_counts() == before


def test_production_refuses_and_writes_nothing(settings):
    # given a production deployment
    settings.IS_PRODUCTION = True

    # when the command runs
    with pytest.raises(CommandError, match="refused in production"):
        _seed(products=30)

    # then nothing is written
    assert _table_counts() == NOTHING
    assert _media_files() == []


def test_production_refuses_the_demo_functions_too(settings):
    # given a production deployment
    settings.IS_PRODUCTION = True

    # when the demo functions are called directly, then they refuse and write nothing
    with pytest.raises(demo.DemoSeedRefused):
        demo.demo_catalog_seed(products=3)
    with pytest.raises(demo.DemoSeedRefused):
        demo.demo_merchant_ensure(password=MERCHANT_PASSWORD)
    assert _table_counts() == NOTHING
    assert _media_files() == []


def test_a_clash_with_existing_data_fails_and_writes_nothing():
    # given a seeded product whose slug was changed, so its SKUs belong to no demo slug
    _seed(products=5)
    Product.objects.filter(slug=GOLDEN_FIRST_SLUG).update(slug="renamed-by-the-merchant")
    before = _table_counts()

    # when the command runs for more products
    with pytest.raises(CommandError, match="clashes with existing data"):
        _seed(products=10)

    # then nothing was written
    assert _table_counts() == before
    assert not Product.objects.filter(slug=GOLDEN_FIRST_SLUG).exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"products": -1}, "cannot be negative"),
        ({"products": 3, "seed": 1_000_000}, "seed must be between 0 and 999999"),
    ],
)
def test_invalid_options_are_refused(options, message):
    # given an empty shop
    # when asked for a negative number of products or a seed too long for a SKU
    with pytest.raises(CommandError, match=message):
        _seed(**options)

    # then nothing is written
    assert _table_counts() == NOTHING
    assert _media_files() == []


def test_seed_adds_checkout_settings_once():
    # given a first seeding
    _seed(products=0)
    first = (ShippingMethod.objects.count(), TaxRate.objects.count(), Voucher.objects.count())

    # when seeding again
    output = _seed(products=0)

    # then shipping, tax and the welcome voucher exist once, and nothing new is added
    assert first == (2, 18, 1)
    assert (ShippingMethod.objects.count(), TaxRate.objects.count(), Voucher.objects.count()) == (
        2,
        18,
        1,
    )
    assert "Checkout: 0 shipping method(s), 0 tax rate(s) and 0 voucher(s) added" in output
    assert TaxRate.objects.get(country="DE").rate == Decimal("19.00")
    assert Voucher.objects.get(code="WELCOME10").per_customer_limit == 1


def test_seeding_puts_demo_products_on_a_live_sale_and_a_coming_one_once():
    from catalog.models import Sale, SaleItem
    from catalog.selectors import sale_offers

    # Given a seeded demo shop
    out = _seed(products=12)

    # Then one sale is on now (6 items at 70% of their price) and one starts later (4 items)
    assert "Sales: 2 demo sale(s) with 10 item(s)" in out
    live = Sale.objects.get(name=demo.DEMO_SALE_LIVE)
    items = list(SaleItem.objects.filter(sale=live).select_related("variant"))
    assert len(items) == 6
    assert all(
        i.sale_price == (i.variant.price * Decimal("0.70")).quantize(Decimal("0.01")) for i in items
    )
    offers = sale_offers(variant_ids=[i.variant_id for i in items])
    assert {offer.state for offer in offers.values()} == {"live"}
    upcoming = Sale.objects.get(name=demo.DEMO_SALE_UPCOMING)
    assert upcoming.starts_at > live.starts_at and upcoming.items.count() == 4

    # And a second run adds none
    assert "Sales:" not in _seed(products=12)
    assert Sale.objects.count() == 2
