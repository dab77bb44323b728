from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from catalog.models import Category, Product
from catalog.selectors import category_tree, product_list_for_sitemap


class HomeSitemap(Sitemap):
    changefreq = "daily"
    priority = 1.0

    def items(self) -> list[str]:
        return ["catalog:home"]

    def location(self, item: str) -> str:
        return reverse(item)


class CategorySitemap(Sitemap):
    changefreq = "daily"
    priority = 0.7

    def items(self) -> list[Category]:
        return list(category_tree().by_id.values())

    def lastmod(self, item: Category):
        return None


class ProductSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.8
    limit = 10000

    def items(self):
        return product_list_for_sitemap()

    def lastmod(self, item: Product):
        return item.updated_at


SITEMAPS = {"pages": HomeSitemap, "categories": CategorySitemap, "products": ProductSitemap}
