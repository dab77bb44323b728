from django.urls import path, register_converter

from orders import views


class TokenConverter:
    """An order number or an access token: letters, digits, '-' and '_' (what the shop makes).
    Anything else never reaches a lookup."""

    regex = r"[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TokenConverter, "token")

app_name = "orders"

urlpatterns = [
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/", views.cart_add, name="cart-add"),
    path("cart/lines/<int:line_id>/", views.cart_line_update, name="cart-line-update"),
    path("cart/lines/<int:line_id>/remove/", views.cart_line_remove, name="cart-line-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/review/", views.checkout_review, name="checkout-review"),
    path("checkout/place/", views.checkout_place, name="checkout-place"),
    path("orders/<token:number>/<token:token>/", views.order_detail, name="order-detail"),
    path("orders/<token:number>/<token:token>/cancel/", views.order_cancel, name="order-cancel"),
    path("account/orders/", views.account_orders, name="account-orders"),
    path("account/orders/<token:number>/", views.account_order_detail, name="account-order-detail"),
]
