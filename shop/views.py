"""Site-wide views: robots.txt, the health check, and the error pages' handlers."""

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    sitemap = request.build_absolute_uri(reverse("sitemap-index"))
    lines = [
        "User-agent: *",
        "Disallow: /accounts/",
        "Disallow: /account/",
        "Disallow: /search/",
        f"Sitemap: {sitemap}",
    ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Tell a load balancer whether this server can reach its database and cache."""
    status = {"database": "ok", "cache": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not healthy", reported as 503
        status["database"] = "error"
    try:
        cache.set("healthz", "ok", 5)
        if cache.get("healthz") != "ok":
            status["cache"] = "error"
    except Exception:  # noqa: BLE001
        status["cache"] = "error"
    healthy = all(value == "ok" for value in status.values())
    return JsonResponse(status, status=200 if healthy else 503)
