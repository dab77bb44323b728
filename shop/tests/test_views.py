"""Site-wide pages: robots.txt, the health check, the error pages and the sitemaps."""

import re

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error

from catalog.tests.factories import CategoryFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _locations(content: bytes) -> list[str]:
    return re.findall(r"<loc>([^<]+)</loc>", content.decode())


# --- robots.txt ----------------------------------------------------------------------------


def test_robots_txt_is_plain_text_and_points_at_the_absolute_sitemap_url(client):
    response = client.get("/robots.txt")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain"
    assert response.content.decode() == (
        "User-agent: *\n"
        "Disallow: /accounts/\n"
        "Disallow: /account/\n"
        "Disallow: /search/\n"
        "Sitemap: http://testserver/sitemap.xml\n"
    )


def test_robots_txt_uses_the_host_it_was_asked_on(client, settings):
    settings.ALLOWED_HOSTS = ["shop.example.com"]

    response = client.get("/robots.txt", headers={"host": "shop.example.com"}, secure=True)

    assert response.status_code == 200
    assert "Sitemap: https://shop.example.com/sitemap.xml\n" in response.content.decode()


def test_robots_txt_refuses_post(client):
    response = client.post("/robots.txt")

    assert response.status_code == 405


# --- Health check --------------------------------------------------------------------------


def test_healthz_reports_database_and_cache_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"database": "ok", "cache": "ok"}
    # A load balancer must never see a cached answer.
    assert "no-cache" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_healthz_reports_a_cache_that_does_not_keep_values_as_unhealthy(client, settings):
    # Given a cache that accepts writes but never returns them
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "cache": "error"}


def test_healthz_refuses_post(client):
    response = client.post("/healthz")

    assert response.status_code == 405


# --- Error pages ---------------------------------------------------------------------------


def test_unknown_url_gets_the_shops_404_page(client, settings):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    content = response.content.decode()
    assert "We couldn’t find that page" in content
    assert f"<title>Page not found | {settings.SHOP_NAME}</title>" in content
    assert '<meta name="robots" content="noindex">' in content
    # It sits inside the site's layout, search box included.
    assert 'id="site-search"' in content


def test_404_page_never_reflects_a_hostile_path_unescaped(client):
    response = client.get("/<script>alert(1)</script>/")

    assert response.status_code == 404
    content = response.content.decode()
    assert "We couldn’t find that page" in content
    assert "<script>alert(1)</script>" not in content


def test_unknown_product_gets_the_shops_404_page(client):
    response = client.get("/product/no-such-product/")

    assert response.status_code == 404
    assert "We couldn’t find that page" in response.content.decode()


def test_500_page_is_the_shops_own_and_needs_no_database():
    request = RequestFactory().get("/broken/")

    response = server_error(request)

    assert response.status_code == 500
    content = response.content.decode()
    assert "<title>Something went wrong</title>" in content
    assert "Something went wrong on our side" in content
    assert '<meta name="robots" content="noindex">' in content


# --- Sitemaps ------------------------------------------------------------------------------


def test_sitemap_index_lists_every_section(client):
    response = client.get("/sitemap.xml")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert _locations(response.content) == [
        "http://testserver/sitemap-pages.xml",
        "http://testserver/sitemap-categories.xml",
        "http://testserver/sitemap-products.xml",
    ]


def test_pages_sitemap_lists_the_home_page(client):
    response = client.get("/sitemap-pages.xml")

    assert response.status_code == 200
    assert _locations(response.content) == ["http://testserver/"]


def test_products_sitemap_lists_only_products_shown_in_the_shop(client):
    # Given two visible products, a hidden one, and one with no active variant (no price)
    first = ProductFactory(slug="first-boot")
    second = ProductFactory(slug="second-boot")
    ProductFactory(slug="hidden-boot", is_active=False)
    ProductFactory(slug="unpriced-boot", variants=[{"is_active": False}])

    response = client.get("/sitemap-products.xml")

    assert response.status_code == 200
    assert _locations(response.content) == [
        f"http://testserver/product/{first.slug}/",
        f"http://testserver/product/{second.slug}/",
    ]
    assert f"<lastmod>{first.updated_at.date().isoformat()}</lastmod>" in (
        response.content.decode()
    )


def test_products_sitemap_reads_a_fixed_number_of_queries(client, django_assert_num_queries):
    ProductFactory.create_batch(5)

    # One to count the products (pagination), one to read them.
    with django_assert_num_queries(2):
        response = client.get("/sitemap-products.xml")

    assert response.status_code == 200
    assert len(_locations(response.content)) == 5


def test_categories_sitemap_lists_only_visible_categories(client):
    # Given a visible branch, a hidden category, and a visible child under a hidden parent
    boots = CategoryFactory(slug="boots", position=1)
    hiking = CategoryFactory(slug="hiking-boots", parent=boots, position=2)
    hidden = CategoryFactory(slug="hidden", is_active=False, position=3)
    CategoryFactory(slug="under-hidden", parent=hidden, position=4)

    response = client.get("/sitemap-categories.xml")

    assert response.status_code == 200
    assert sorted(_locations(response.content)) == sorted(
        [
            f"http://testserver/category/{boots.slug}/",
            f"http://testserver/category/{hiking.slug}/",
        ]
    )


def test_unknown_sitemap_section_is_404(client):
    response = client.get("/sitemap-nothing.xml")

    assert response.status_code == 404
