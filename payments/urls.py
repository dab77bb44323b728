from django.urls import path, register_converter

from payments import views


class ReferenceConverter:
    """An order number, an access token or a test-provider reference: letters, digits, '-' and
    '_' (what the shop makes). Anything else never reaches a lookup."""

    regex = r"[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReferenceConverter, "payment_ref")

app_name = "payments"

urlpatterns = [
    path("start/<payment_ref:number>/<payment_ref:token>/", views.payment_start, name="start"),
    path("return/<payment_ref:number>/<payment_ref:token>/", views.payment_return, name="return"),
    path("test/<payment_ref:reference>/", views.test_page, name="test-page"),
    path("webhooks/stripe/", views.webhook, {"provider_name": "stripe"}, name="webhook-stripe"),
    path("webhooks/test/", views.webhook, {"provider_name": "test"}, name="webhook-test"),
]
