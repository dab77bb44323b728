from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from catalog import selectors
from catalog.models import Product
from catalog.tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _names(products) -> list[str]:
    return [product.name for product in products]


def test_category_tree_links_children_and_hides_inactive_branches():
    clothing = CategoryFactory(name="Clothing", slug="clothing")
    jackets = CategoryFactory(name="Jackets", slug="jackets", parent=clothing)
    rain = CategoryFactory(name="Rain", slug="rain", parent=jackets)
    hidden = CategoryFactory(name="Hidden", slug="hidden", is_active=False)
    CategoryFactory(name="Under hidden", slug="under-hidden", parent=hidden)

    tree = selectors.category_tree()

    assert [c.slug for c in tree.roots] == ["clothing"]
    assert tree.get("under-hidden") is None
    assert tree.ancestors(tree.get("rain")) == [tree.get("clothing"), tree.get("jackets")]
    assert set(tree.descendant_ids(tree.get("clothing"))) == {clothing.pk, jackets.pk, rain.pk}


def test_list_includes_subcategories_and_only_visible_products():
    parent = CategoryFactory()
    child = CategoryFactory(parent=parent)
    ProductFactory(name="In parent", category=parent)
    ProductFactory(name="In child", category=child)
    ProductFactory(name="Hidden", category=child, is_active=False)
    ProductFactory(name="No variant", category=child, variants=[])
    ProductFactory(name="Elsewhere")

    products = selectors.product_list(category_ids=[parent.pk, child.pk])

    assert _names(products) == ["In child", "In parent"]


def test_list_sorts_by_price_name_and_newest():
    now = timezone.now()
    cheap = ProductFactory(name="B cheap", variants=[{"price": Decimal("5.00")}])
    dear = ProductFactory(name="A dear", variants=[{"price": Decimal("50.00")}])
    mid = ProductFactory(name="C mid", variants=[{"price": Decimal("20.00")}])
    for age, product in enumerate([mid, dear, cheap]):
        Product.objects.filter(pk=product.pk).update(created_at=now - timedelta(days=age))

    assert _names(selectors.product_list(sort="price")) == ["B cheap", "C mid", "A dear"]
    assert _names(selectors.product_list(sort="-price")) == ["A dear", "C mid", "B cheap"]
    assert _names(selectors.product_list(sort="name")) == ["A dear", "B cheap", "C mid"]
    assert _names(selectors.product_list(sort="newest")) == ["C mid", "A dear", "B cheap"]
    assert _names(selectors.product_list(sort="bogus")) == ["A dear", "B cheap", "C mid"]


def test_list_filters_by_price_range_and_stock():
    ProductFactory(name="Cheap", variants=[{"price": Decimal("5.00"), "stock": 0}])
    ProductFactory(name="Mid", variants=[{"price": Decimal("20.00")}])
    ProductFactory(name="Dear", variants=[{"price": Decimal("50.00")}])
    ProductFactory(
        name="Mixed", variants=[{"price": Decimal("21.00"), "stock": 0}, {"price": Decimal("30")}]
    )

    in_range = selectors.product_list(min_price=Decimal("10"), max_price=Decimal("25"))
    in_stock = selectors.product_list(in_stock_only=True)

    assert _names(in_range) == ["Mid", "Mixed"]
    assert _names(in_stock) == ["Dear", "Mid", "Mixed"]
    assert {p.name: p.in_stock for p in selectors.product_list()} == {
        "Cheap": False,
        "Dear": True,
        "Mid": True,
        "Mixed": True,
    }


def test_search_finds_by_name_brand_and_description_best_first():
    ProductFactory(name="Trail runner shoe", brand="Fleet", description="Light and fast.")
    ProductFactory(name="Camp mug", brand="Runner & Co", description="Enamel.")
    ProductFactory(name="Wool socks", brand="Knit", description="Warm socks for a runner.")
    ProductFactory(name="Tent", brand="Dome", description="Sleeps two.")

    results = _names(selectors.product_search(query="runner"))

    assert results[0] == "Trail runner shoe"
    assert sorted(results) == ["Camp mug", "Trail runner shoe", "Wool socks"]


def test_search_needs_every_word():
    ProductFactory(name="Blue rain jacket")
    ProductFactory(name="Red rain jacket")

    assert _names(selectors.product_search(query="blue jacket")) == ["Blue rain jacket"]


def test_search_of_hostile_text_finds_nothing_and_does_not_fail():
    ProductFactory(name="Tent")
    for text in ["' OR 1=1 --", "<script>", '"unclosed', "a & | ! ( ) : *", "%_%", "-tent -"]:
        assert _names(selectors.product_search(query=text)) == []


@pytest.mark.postgres
def test_postgres_search_stems_words_and_ranks_the_name_first():
    ProductFactory(name="Hiking boots", description="For long walks.")
    ProductFactory(name="Walking poles", description="Light poles for hiking trips.")

    results = _names(selectors.product_search(query="hike"))

    assert results == ["Hiking boots", "Walking poles"]


@pytest.mark.postgres
def test_postgres_search_understands_web_search_syntax():
    ProductFactory(name="Rain jacket")
    ProductFactory(name="Ski jacket")

    assert _names(selectors.product_search(query="jacket -ski")) == ["Rain jacket"]
    assert _names(selectors.product_search(query='"ski jacket"')) == ["Ski jacket"]


@pytest.mark.postgres
def test_postgres_search_uses_the_gin_index():
    # Given a catalog large enough for the planner to care, with fresh statistics
    category = CategoryFactory()
    Product.objects.bulk_create(
        Product(
            category=category,
            name=f"Filler product {n}",
            slug=f"filler-{n}",
            description="Nothing to see here.",
            price_from=Decimal("10.00"),
        )
        for n in range(3000)
    )
    ProductFactory(name="Dome tent", category=category)
    products = selectors.product_search(query="tent")
    sql, params = products.query.sql_with_params()

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_product")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    # Then the match is found through the full-text index, not by reading every row
    assert "product_search_gin" in plan, plan
    assert [p.name for p in products] == ["Dome tent"]
