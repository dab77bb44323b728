from django.conf import settings
from django.contrib import admin
from django.contrib.sitemaps import views as sitemap_views
from django.urls import include, path, re_path
from django.views.decorators.cache import cache_page
from django.views.static import serve

from catalog.sitemaps import SITEMAPS
from shop import views

# A "database busy" error outside a view still gets the 503 busy page, not the 500 page.
handler500 = "shop.views.server_error"

admin.site.site_header = f"{settings.SHOP_NAME} back office"
admin.site.site_title = f"{settings.SHOP_NAME} back office"
admin.site.index_title = "Run the shop"
# The tables need the width more than the side menu does.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path(settings.ADMIN_URL, admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("account/", include("accounts.urls")),
    path(
        "sitemap.xml",
        cache_page(3600)(sitemap_views.index),
        {"sitemaps": SITEMAPS, "sitemap_url_name": "sitemap-section"},
        name="sitemap-index",
    ),
    path(
        "sitemap-<section>.xml",
        cache_page(3600)(sitemap_views.sitemap),
        {"sitemaps": SITEMAPS},
        name="sitemap-section",
    ),
    path("robots.txt", views.robots_txt, name="robots-txt"),
    path("healthz", views.healthz, name="healthz"),
    path("payments/", include("payments.urls")),
    path("", include("orders.urls")),
    path("", include("catalog.urls")),
]

if settings.SERVE_MEDIA:
    media_prefix = settings.MEDIA_URL.lstrip("/")
    urlpatterns += [
        re_path(rf"^{media_prefix}(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    ]
