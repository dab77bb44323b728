from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from orders import receivers

        user_logged_in.connect(
            receivers.cart_merge_on_login, dispatch_uid="orders.cart_merge_on_login"
        )
