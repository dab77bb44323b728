import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from catalog.tests.factories import (
    CategoryFactory,
    ProductFactory,
    ProductImageFactory,
    ProductVariantFactory,
)

pytestmark = pytest.mark.django_db

# Pinned query counts for an anonymous shopper (tests prove they do not grow with the page).
HOME_QUERIES = 3  # category tree, featured products, new products
CATEGORY_QUERIES = 3  # category tree, count, one page of product cards
# Product page, cold cache: product with category, variants, images, sale offers (added with
# flash sales), category tree. Warm: the category tree only (see test_sales_views.py).
PRODUCT_QUERIES = 5
SEARCH_QUERIES = 3  # category tree (navigation), count, one page of product cards


def _ld_json(html: str) -> dict:
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert match, "no JSON-LD on the page"
    return json.loads(match.group(1))


def _fill(category, count: int) -> None:
    for n in range(count):
        product = ProductFactory(category=category, is_featured=n % 2 == 0)
        ProductImageFactory(product=product)
        ProductVariantFactory(product=product, price=Decimal("9.99"), stock=0)


# --- Home ---------------------------------------------------------------------------------------


def test_home_shows_categories_featured_and_new_products(client):
    category = CategoryFactory(name="Outdoor", slug="outdoor")
    ProductFactory(name="Featured tent", category=category, is_featured=True)
    ProductFactory(name="Plain mug", category=category)

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/category/outdoor/"' in html
    assert "Featured tent" in html and "Plain mug" in html
    assert '<link rel="canonical" href="http://testserver/">' in html


@pytest.mark.parametrize("products", [2, 12])
def test_home_query_count_does_not_grow(client, django_assert_num_queries, products):
    _fill(CategoryFactory(), products)
    with django_assert_num_queries(HOME_QUERIES):
        assert client.get("/").status_code == 200


# --- Category listing --------------------------------------------------------------------------


def test_category_page_lists_its_products_and_its_subcategories(client):
    parent = CategoryFactory(name="Clothing", slug="clothing", description="Wear it.")
    child = CategoryFactory(name="Jackets", slug="jackets", parent=parent)
    ProductFactory(name="Storm shell", category=child, variants=[{"price": Decimal("129.90")}])

    response = client.get("/category/clothing/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>Clothing | " in html
    assert '<meta name="description" content="Wear it.">' in html
    assert "Storm shell" in html and "from €129.90" in html
    assert 'href="/category/jackets/"' in html
    assert '<link rel="canonical" href="http://testserver/category/clothing/">' in html


@pytest.mark.parametrize("products", [3, 30])
def test_category_query_count_does_not_grow(client, django_assert_num_queries, products):
    category = CategoryFactory(slug="gear")
    _fill(category, products)
    with django_assert_num_queries(CATEGORY_QUERIES):
        response = client.get("/category/gear/?sort=price&in_stock=on&min_price=1")
    assert response.status_code == 200


def test_category_paginates_and_keeps_filters_in_page_links(client, settings):
    settings.SHOP_PRODUCTS_PER_PAGE = 2
    category = CategoryFactory(slug="gear")
    for n in range(5):
        ProductFactory(category=category, name=f"Item {n}")

    response = client.get("/category/gear/?sort=name&page=2")

    html = response.content.decode()
    assert [p.name for p in response.context["page_obj"]] == ["Item 2", "Item 3"]
    assert 'href="?sort=name&amp;page=3"' in html
    assert '<link rel="canonical" href="http://testserver/category/gear/?page=2">' in html


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=-1",
        "page=0",
        "page=99999999999999999999999",
        "page=1.5",
        "sort=drop%20table",
        "sort=",
        "min_price=abc&max_price=1e999",
        "min_price=-5",
        "min_price=NaN&max_price=Infinity",
        "max_price=99999999999999999999999999999",
        "min_price=10&max_price=1",
        "in_stock=maybe",
        "min_price=%00",
        "page=%00&sort=%00",
        "min_price=1&min_price=2&sort=name&sort=price",
    ],
)
def test_category_page_survives_bad_query_strings(client, query):
    category = CategoryFactory(slug="gear")
    ProductFactory(category=category, name="Tent")

    response = client.get(f"/category/gear/?{query}")

    assert response.status_code == 200
    assert "Tent" in response.content.decode()


def test_bad_filters_are_reported_and_ignored(client):
    category = CategoryFactory(slug="gear")
    ProductFactory(category=category, name="Tent")

    response = client.get("/category/gear/?min_price=abc")

    html = response.content.decode()
    assert "Enter a number." in html
    assert "That filter was ignored." in html
    assert response.context["page_obj"].paginator.count == 1


def test_out_of_range_page_shows_the_last_page(client, settings):
    settings.SHOP_PRODUCTS_PER_PAGE = 2
    category = CategoryFactory(slug="gear")
    for n in range(3):
        ProductFactory(category=category, name=f"Item {n}")

    response = client.get("/category/gear/?page=50")

    assert response.status_code == 200
    assert response.context["page_obj"].number == 2


@pytest.mark.parametrize("path", ["/category/missing/", "/product/missing/", "/nowhere/"])
def test_unknown_slugs_give_the_404_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "We couldn’t find that page" in response.content.decode()


def test_inactive_category_and_product_are_not_found(client):
    hidden = CategoryFactory(slug="hidden", is_active=False)
    ProductFactory(slug="secret", is_active=False, category=hidden)

    assert client.get("/category/hidden/").status_code == 404
    assert client.get("/product/secret/").status_code == 404


# --- Product page --------------------------------------------------------------------------------


def test_product_page_shows_variants_price_stock_and_images(client):
    product = ProductFactory(
        name="Storm shell",
        slug="storm-shell",
        brand="Northwind",
        description="Keeps rain out.",
        variants=[
            {"sku": "SS-M", "price": Decimal("129.90"), "stock": 0, "options": {"size": "M"}},
            {"sku": "SS-L", "price": Decimal("139.90"), "stock": 3, "options": {"size": "L"}},
        ],
    )
    ProductImageFactory(product=product, alt_text="Storm shell in blue")

    response = client.get("/product/storm-shell/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>Storm shell by Northwind | " in html
    # The first variant in stock is chosen by default.
    assert response.context["chosen_variant"].sku == "SS-L"
    assert "€139.90" in html and "Only 3 left" in html
    assert 'alt="Storm shell in blue"' in html
    assert "sold out" in html
    assert '<link rel="canonical" href="http://testserver/product/storm-shell/">' in html
    assert '<meta name="description" content="Keeps rain out.">' in html


def test_product_page_variant_choice_and_bad_variant_values(client):
    product = ProductFactory(
        slug="mug",
        variants=[{"sku": "MUG-S", "stock": 5}, {"sku": "MUG-L", "stock": 5}],
    )
    large = product.variants.get(sku="MUG-L")

    chosen = client.get(f"/product/mug/?variant={large.pk}").context["chosen_variant"]
    fallback = [
        client.get(f"/product/mug/?variant={value}").context["chosen_variant"].sku
        for value in ["abc", "-1", "999999999999999999999", "%00", ""]
    ]

    assert chosen.sku == "MUG-L"
    assert fallback == ["MUG-S"] * 5


def test_product_page_structured_data(client):
    product = ProductFactory(
        name="Tent",
        slug="tent",
        brand="Dome",
        variants=[
            {"sku": "T-2", "price": Decimal("199.00"), "stock": 2},
            {"sku": "T-3", "price": Decimal("249.00"), "stock": 0},
        ],
    )
    ProductImageFactory(product=product)

    data = _ld_json(client.get("/product/tent/").content.decode())

    assert data["@type"] == "Product"
    assert data["name"] == "Tent"
    assert data["brand"] == {"@type": "Brand", "name": "Dome"}
    assert data["url"] == "http://testserver/product/tent/"
    assert data["image"][0].startswith("http://testserver/media/products/")
    assert data["offers"]["lowPrice"] == "199.00"
    assert data["offers"]["highPrice"] == "249.00"
    assert data["offers"]["priceCurrency"] == "EUR"
    assert [o["availability"] for o in data["offers"]["offers"]] == [
        "https://schema.org/InStock",
        "https://schema.org/OutOfStock",
    ]


@pytest.mark.parametrize("images", [1, 6])
def test_product_query_count_does_not_grow(client, django_assert_num_queries, images):
    product = ProductFactory(slug="tent", variants=[{}, {}, {}])
    for _ in range(images):
        ProductImageFactory(product=product)
    with django_assert_num_queries(PRODUCT_QUERIES):
        assert client.get("/product/tent/").status_code == 200


def test_product_without_active_variants_is_shown_as_unavailable(client):
    ProductFactory(slug="gone", variants=[{"is_active": False}])
    html = client.get("/product/gone/").content.decode()
    assert "Currently unavailable" in html


# --- Escaping ------------------------------------------------------------------------------------

XSS = "<script>alert(1)</script>"


def test_hostile_product_text_renders_as_text_everywhere(client):
    category = CategoryFactory(name=XSS, slug="xss", description=XSS)
    product = ProductFactory(
        name=XSS, slug="xss-product", brand=XSS, description=XSS, category=category,
        is_featured=True,
        variants=[{"options": {"size": XSS}}, {"options": {"colour": XSS}}],
    )  # fmt: skip
    ProductImageFactory(product=product, alt_text=XSS)

    pages = ["/", "/category/xss/", "/product/xss-product/", "/search/?q=alert"]
    for path in pages:
        html = client.get(path).content.decode()
        assert XSS not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


def test_json_ld_cannot_close_its_script_element(client):
    ProductFactory(name="</script><script>alert(1)</script>", slug="evil")
    html = client.get("/product/evil/").content.decode()
    assert "</script><script>alert(1)" not in html
    assert _ld_json(html)["name"] == "</script><script>alert(1)</script>"


# --- Search --------------------------------------------------------------------------------------


def test_search_shows_matches(client):
    ProductFactory(name="Rain jacket")
    ProductFactory(name="Camp stove")

    response = client.get(reverse("catalog:search"), {"q": "jacket"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "Rain jacket" in html and "Camp stove" not in html
    assert '<meta name="robots" content="noindex, follow">' in html


def test_empty_search_asks_for_words(client):
    response = client.get("/search/?q=")
    assert response.status_code == 200
    assert response.context["page_obj"] is None


@pytest.mark.parametrize(
    "q",
    [
        "x" * 100_000,
        "\x00",
        "tent\x00tent",
        "' OR 1=1; DROP TABLE catalog_product; --",
        "<img src=x onerror=alert(1)>",
        "!!!&&&|||:::***",
        "(((((",
        '"',
        "\u202e\u0000\ufeff",
        "ß" * 500,
        "%",
        "_",
    ],
)
def test_search_survives_hostile_strings(client, q):
    ProductFactory(name="Tent")

    response = client.get("/search/", {"q": q})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<img src=x" not in html


def test_search_query_is_trimmed_to_the_maximum_length(client, settings):
    response = client.get("/search/", {"q": "tent " * 1000})
    assert len(response.context["query"]) <= settings.SHOP_SEARCH_MAX_LENGTH


@pytest.mark.parametrize("products", [2, 20])
def test_search_query_count_does_not_grow(client, django_assert_num_queries, products):
    category = CategoryFactory()
    for n in range(products):
        ProductImageFactory(product=ProductFactory(category=category, name=f"Tent {n}"))
    with django_assert_num_queries(SEARCH_QUERIES):
        response = client.get("/search/?q=tent")
    assert response.context["page_obj"].paginator.count == products


# --- Sitemap --------------------------------------------------------------------------------------


def test_sitemap_lists_visible_products_and_categories(client):
    CategoryFactory(slug="gear")
    ProductFactory(slug="tent")
    ProductFactory(slug="hidden", is_active=False)

    index = client.get("/sitemap.xml").content.decode()
    products = client.get("/sitemap-products.xml").content.decode()
    categories = client.get("/sitemap-categories.xml").content.decode()

    assert "http://testserver/sitemap-products.xml" in index
    assert "<loc>http://testserver/product/tent/</loc>" in products
    assert "/product/hidden/" not in products
    assert "<loc>http://testserver/category/gear/</loc>" in categories


@pytest.mark.parametrize("path", ["/", "/category/gear/", "/product/tent/", "/search/?q=tent"])
def test_pages_refuse_writes_with_405(client, path):
    ProductFactory(slug="tent", category=CategoryFactory(slug="gear"))
    assert client.post(path).status_code == 405
    assert client.head(path).status_code == 200
