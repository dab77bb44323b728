"""Site-wide views: robots.txt, the health check, and the error pages' handlers."""

import sys

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from shop import admission


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


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler, with one exception: a "database busy" error that escaped outside a
    view (in a middleware, say the session's save) still gets the 503 busy page. Errors inside
    views are turned into it earlier, by AdmissionMiddleware.process_exception."""
    error = sys.exc_info()[1]
    reason = admission.db_busy_reason(error)
    if reason is None:
        return defaults.server_error(request)
    return admission.db_busy_response(request, reason=reason, error=error)
