"""Carts, checkout settings (shipping, tax, vouchers), orders and their history, and the email
outbox.

Invariants held by the database: cart quantities are between 1 and the maximum, one open cart per
customer, a voucher is never used more often than its limit, order amounts are never negative,
order numbers and checkout tokens are unique, and an email of one kind is recorded at most once
per order (and per cart).
"""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

MAX_LINE_QUANTITY = 99


def _default_currency() -> str:
    return settings.SHOP_CURRENCY


def token_generate() -> str:
    """Return a new unguessable token (for links and idempotency keys)."""
    return secrets.token_urlsafe(24)


def _money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=12, decimal_places=2, **kwargs)


# --- Cart ----------------------------------------------------------------------------------------


class Cart(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MERGED = "merged", "Merged into another cart"
        ORDERED = "ordered", "Turned into an order"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
        related_name="carts",
    )  # fmt: skip
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN)
    # Known once the customer gives it at checkout (or from the account): used for reminders.
    email = models.EmailField(blank=True)
    # What the checkout form saved, replayed on the review step: address, shipping, voucher.
    checkout_data = models.JSONField(default=dict, blank=True)
    # Idempotency key of the review page's "place order" form: one order per token.
    checkout_token = models.CharField(max_length=64, default=token_generate)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["updated_at"], condition=Q(status="open"), name="cart_open_updated"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(status="open"), name="orders_one_open_cart_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"Cart {self.pk} ({self.get_status_display()})"


class CartLine(models.Model):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.CASCADE, related_name="cart_lines"
    )
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_LINE_QUANTITY)]
    )
    # The unit price the customer saw when adding: a later change is shown, never applied silently.
    unit_price_seen = _money()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "variant"], name="orders_cart_line_unique"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1, quantity__lte=MAX_LINE_QUANTITY),
                name="orders_cart_line_quantity_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.variant_id}"


# --- Checkout settings (managed by merchants) -----------------------------------------------------


class ShippingMethod(models.Model):
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=200, blank=True)
    price = _money(validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default=_default_currency, editable=False)
    free_above = _money(
        null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Orders whose goods total (after discount) reaches this ship free.",
    )  # fmt: skip
    countries = models.JSONField(
        default=list, blank=True,
        help_text='Country codes it ships to, e.g. ["DE", "FR"]; empty means every country.',
    )  # fmt: skip
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "price", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="orders_shipping_price_gte_0"),
        ]

    def __str__(self) -> str:
        return self.name

    def ships_to(self, country: str) -> bool:
        return not self.countries or country in self.countries


class TaxRate(models.Model):
    country = models.CharField(max_length=2, unique=True)
    name = models.CharField(max_length=60, default="VAT")
    rate = models.DecimalField(
        max_digits=5, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Percent, e.g. 19.00.",
    )  # fmt: skip

    class Meta:
        ordering = ["country"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate__gte=0, rate__lte=100), name="orders_tax_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.name} {self.rate}%"


class Voucher(models.Model):
    class Kind(models.TextChoices):
        PERCENTAGE = "percentage", "Percentage off"
        FIXED = "fixed", "Fixed amount off"

    code = models.CharField(max_length=40, unique=True, help_text="Stored upper-case.")
    kind = models.CharField(max_length=10, choices=Kind)
    value = _money(validators=[MinValueValidator(0)])
    min_spend = _money(default=0, validators=[MinValueValidator(0)])
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    usage_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uses in all; empty means unlimited."
    )
    per_customer_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uses per customer (account or email); empty: unlimited."
    )
    used_count = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(used_count__lte=F("usage_limit")),
                name="orders_voucher_within_usage_limit",
            ),
            models.CheckConstraint(
                condition=~Q(kind="percentage") | Q(value__lte=100),
                name="orders_voucher_percentage_at_most_100",
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="orders_voucher_value_gte_0"),
        ]

    def __str__(self) -> str:
        return self.code


# --- Orders ---------------------------------------------------------------------------------------


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", "Awaiting payment"
        PAID = "paid", "Paid"
        FULFILLED = "fulfilled", "Packed"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"

    number = models.CharField(max_length=20, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="orders",
    )  # fmt: skip
    email = models.EmailField()
    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING_PAYMENT)
    # The secret in a guest's order link.
    access_token = models.CharField(max_length=64, default=token_generate, editable=False)
    # The cart's checkout token: a second submission of the same checkout finds this order.
    checkout_token = models.CharField(max_length=64, unique=True, editable=False)
    cart = models.ForeignKey(
        Cart, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    currency = models.CharField(max_length=3)
    prices_include_tax = models.BooleanField()
    subtotal = _money()
    discount_total = _money(default=0)
    shipping_total = _money(default=0)
    tax_total = _money(default=0)
    total = _money()
    shipping_address = models.JSONField()
    shipping_method_name = models.CharField(max_length=100)
    voucher = models.ForeignKey(
        Voucher, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    voucher_code = models.CharField(max_length=40, blank=True)
    carrier = models.CharField(max_length=60, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    placed_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # When an unpaid order gives its stock back: placed_at + SHOP_ORDER_PAYMENT_MINUTES, or
    # sooner when it holds sale units (the sale's hold_minutes). Empty on older orders.
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-placed_at"], name="order_status_placed"),
            models.Index(fields=["user", "-placed_at"], name="order_user_placed"),
            models.Index(fields=["email"], name="order_email"),
            models.Index(
                fields=["placed_at"], condition=Q(status="pending_payment"), name="order_pending"
            ),
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending_payment"),
                name="order_pending_expires",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    subtotal__gte=0,
                    discount_total__gte=0,
                    shipping_total__gte=0,
                    tax_total__gte=0,
                    total__gte=0,
                ),
                name="orders_order_amounts_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        """The order's page through its unguessable link (works for guests and customers)."""
        return reverse(
            "orders:order-detail", kwargs={"number": self.number, "token": self.access_token}
        )

    @property
    def is_pending_payment(self) -> bool:
        return self.status == self.Status.PENDING_PAYMENT


class OrderLine(models.Model):
    """A snapshot of what was bought, at the price it was bought for."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(
        "catalog.ProductVariant", on_delete=models.PROTECT, related_name="order_lines"
    )
    product_name = models.CharField(max_length=200)
    variant_label = models.CharField(max_length=200, blank=True)
    sku = models.CharField(max_length=64)
    unit_price = _money()
    quantity = models.PositiveIntegerField()
    line_total = _money()
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2)
    tax_amount = _money()
    # The sale units this line took (its unit_price is then the sale price).
    sale_hold = models.OneToOneField(
        "catalog.SaleHold",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="order_line",
        editable=False,
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orders_line_quantity_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"


class OrderEvent(models.Model):
    """One row per change a merchant may ask about later: status changes, notes, emails."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    message = models.CharField(max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.message


class VoucherRedemption(models.Model):
    voucher = models.ForeignKey(Voucher, on_delete=models.CASCADE, related_name="redemptions")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="redemption")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    email = models.EmailField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["voucher", "email"], name="redemption_voucher_email")]

    def __str__(self) -> str:
        return f"{self.voucher_id} on {self.order_id}"


# --- Email outbox ---------------------------------------------------------------------------------


class OutboxEmail(models.Model):
    """An email the shop owes someone, written in the same transaction as the change it reports
    and sent after commit by a task (or by the cron sweep if the task never ran)."""

    class Kind(models.TextChoices):
        ORDER_RECEIVED = "order_received", "Order received"
        ORDER_PAID = "order_paid", "Order paid"
        ORDER_SHIPPED = "order_shipped", "Order shipped"
        ORDER_CANCELLED = "order_cancelled", "Order cancelled"
        CART_REMINDER = "cart_reminder", "Cart reminder"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"

    kind = models.CharField(max_length=20, choices=Kind)
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.CASCADE, related_name="emails"
    )
    cart = models.ForeignKey(
        Cart, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails"
    )
    to_email = models.EmailField()
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(status="pending"), name="outbox_pending"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind"], condition=Q(order__isnull=False),
                name="orders_one_email_per_order_and_kind",
            ),
            models.UniqueConstraint(
                fields=["cart", "kind"], condition=Q(cart__isnull=False),
                name="orders_one_email_per_cart_and_kind",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to_email}"
