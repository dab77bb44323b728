"""The merchant's back office for orders, carts and the checkout settings (shipping methods, tax
rates, vouchers).

Thin: every status change goes through `orders.services`, which checks the transition, locks the
order and writes its event; the admin only collects input, calls the service once per order and
reports what happened. An order is the books: its amounts, lines, address and status are shown,
never edited here, and orders are neither added nor deleted in the admin.
"""

import csv
from collections.abc import Callable, Iterator

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.addresses import COUNTRIES, COUNTRY_CHOICES, country_name
from orders import services
from orders.exceptions import OrderError
from orders.models import (
    Cart,
    CartLine,
    Order,
    OrderEvent,
    OrderLine,
    ShippingMethod,
    TaxRate,
    Voucher,
)
from orders.services.numbers import PREFIX as ORDER_NUMBER_PREFIX
from shop.money import money_format

S = Order.Status

BOTH_PLACES = [ActionLocation.CHANGE_LIST, ActionLocation.CHANGE_FORM]
# One message per failed order, up to this many; the rest are summed up in one line.
MAX_FAILURE_MESSAGES = 10
# Two inputs per order must stay well under DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000).
MAX_ORDERS_PER_SHIPMENT_PAGE = 100

STATUS_COLOURS = {
    S.PENDING_PAYMENT: "#b45309",
    S.PAID: "#1d4ed8",
    S.FULFILLED: "#7c3aed",
    S.SHIPPED: "#0f766e",
    S.DELIVERED: "#15803d",
    S.CANCELLED: "#6b7280",
    S.REFUNDED: "#b91c1c",
    S.PARTIALLY_REFUNDED: "#b91c1c",
}

CSV_HEADER = (
    "Order number",
    "Placed at",
    "Status",
    "Email",
    "Shipping country",
    "SKU",
    "Product name",
    "Quantity",
    "Unit price",
    "Line total",
    "Order total",
    "Currency",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _status_label(status: str) -> str:
    try:
        return S(status).label
    except ValueError:
        return status or "—"


def _status_badge(status: str) -> str:
    return format_html(
        '<strong style="color:{}">{}</strong>',
        STATUS_COLOURS.get(status, "inherit"),
        _status_label(status),
    )


def _plural(count: int, noun: str = "order") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _numbers(numbers: list[str], limit: int = 20) -> str:
    shown = ", ".join(numbers[:limit])
    return shown if len(numbers) <= limit else f"{shown} and {len(numbers) - limit} more"


def order_number_normalize(term: str) -> str:
    """Return the order number a merchant most likely means: 'nw ab23 cd45', 'AB23CD45' and
    'NW-AB23-CD45' are one number (it is read out on the phone, in any case, with or without
    dashes)."""
    compact = "".join(ch for ch in term.upper() if ch.isalnum())
    if len(compact) == len(ORDER_NUMBER_PREFIX) + 8 and compact.startswith(ORDER_NUMBER_PREFIX):
        compact = compact[len(ORDER_NUMBER_PREFIX) :]
    if len(compact) == 8:
        return f"{ORDER_NUMBER_PREFIX}-{compact[:4]}-{compact[4:]}"
    return term.strip().upper()


def csv_cell(value: object) -> str:
    """Return the value as CSV text a spreadsheet shows and never runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(CSV_FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose write() hands the line back, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def order_lines_csv(order_ids: QuerySet) -> Iterator[str]:
    """Yield the CSV header, then one row per line of the given orders, oldest order first;
    rows are read from the database in chunks, so a large export never sits in memory."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    rows = (
        OrderLine.objects.filter(order__in=order_ids)
        .order_by("order__placed_at", "order_id", "id")
        .values_list(
            "order__number",
            "order__placed_at",
            "order__status",
            "order__email",
            "order__shipping_address",
            "sku",
            "product_name",
            "quantity",
            "unit_price",
            "line_total",
            "order__total",
            "order__currency",
        )
    )
    for number, placed_at, status, email, address, *line, total, currency in rows.iterator(
        chunk_size=500
    ):
        country = address.get("country", "") if isinstance(address, dict) else ""
        placed = timezone.localtime(placed_at).isoformat(timespec="seconds")
        row = (number, placed, status, email, country, *line, total, currency)
        yield writer.writerow([csv_cell(value) for value in row])


# --- Intermediate action forms --------------------------------------------------------------------


class ShipmentForm(forms.Form):
    """A carrier and a tracking number for each order being shipped, both required."""

    def __init__(self, *args, orders: list[Order], carrier: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.orders = orders
        for order in orders:
            self.fields[f"carrier-{order.pk}"] = forms.CharField(
                label=f"Carrier of {order.number}",
                max_length=60,
                initial=carrier,
                error_messages={"required": "Give the carrier."},
                widget=forms.TextInput(attrs={"list": "carriers", "size": 16}),
            )
            self.fields[f"tracking-{order.pk}"] = forms.CharField(
                label=f"Tracking number of {order.number}",
                max_length=100,
                error_messages={"required": "Give the tracking number."},
                widget=forms.TextInput(attrs={"size": 28}),
            )

    def rows(self) -> list[tuple[Order, forms.BoundField, forms.BoundField]]:
        return [(o, self[f"carrier-{o.pk}"], self[f"tracking-{o.pk}"]) for o in self.orders]

    def shipments(self) -> list[tuple[Order, str, str]]:
        data = self.cleaned_data
        return [(o, data[f"carrier-{o.pk}"], data[f"tracking-{o.pk}"]) for o in self.orders]


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        required=False,
        help_text="Kept in each order's history. Empty: “by the merchant”.",
        widget=forms.TextInput(attrs={"size": 60}),
    )


# --- Orders ---------------------------------------------------------------------------------------


def _can_see_orders(request: HttpRequest) -> bool:
    user = request.user
    return user.has_perm("orders.view_order") or user.has_perm("orders.change_order")


class _ReadOnlyInline(admin.TabularInline):
    """Part of the record it sits in: shown to whoever may see that record, never edited."""

    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class OrderLineInline(_ReadOnlyInline):
    model = OrderLine
    fields = (
        "sku",
        "product_name",
        "variant_label",
        "quantity",
        "unit_price_display",
        "line_total_display",
        "tax_rate_display",
        "tax_amount_display",
    )
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _can_see_orders(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderLine]:
        # The order is joined so each line's currency costs no query of its own.
        return super().get_queryset(request).select_related("order")

    @admin.display(description="unit price")
    def unit_price_display(self, line: OrderLine) -> str:
        return money_format(line.unit_price, line.order.currency)

    @admin.display(description="line total")
    def line_total_display(self, line: OrderLine) -> str:
        return money_format(line.line_total, line.order.currency)

    @admin.display(description="tax rate")
    def tax_rate_display(self, line: OrderLine) -> str:
        return f"{line.tax_rate} %"

    @admin.display(description="tax")
    def tax_amount_display(self, line: OrderLine) -> str:
        return money_format(line.tax_amount, line.order.currency)


class OrderEventInline(_ReadOnlyInline):
    model = OrderEvent
    verbose_name = "history entry"
    verbose_name_plural = "history"
    fields = ("created_at", "change", "message", "actor")
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _can_see_orders(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderEvent]:
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="status")
    def change(self, event: OrderEvent) -> str:
        if not event.to_status:
            return "—"
        if not event.from_status:
            return f"→ {_status_label(event.to_status)}"
        return f"{_status_label(event.from_status)} → {_status_label(event.to_status)}"


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "placed_at",
        "email",
        "status_badge",
        "item_count",
        "total_display",
        "paid_at",
    )
    list_filter = ("status", "placed_at")
    date_hierarchy = "placed_at"
    # get_search_results does the matching; search_fields only turns the search box on.
    search_fields = ("=number", "=email")
    search_help_text = (
        "Search by order number (any case, with or without dashes) or the customer's full email."
    )
    list_per_page = 50
    ordering = ("-placed_at", "-id")
    fieldsets = (
        (None, {"fields": ("number", "status_badge", "placed_at", "email", "user")}),
        (
            "Amounts",
            {
                "fields": (
                    "subtotal_display",
                    "discount_display",
                    "shipping_display",
                    "tax_display",
                    "total_display",
                    "prices_include_tax",
                    "voucher_code",
                )
            },
        ),
        (
            "Delivery",
            {
                "fields": (
                    "address_display",
                    "shipping_method_name",
                    "carrier",
                    "tracking_number",
                    "shipped_at",
                )
            },
        ),
        ("Dates", {"fields": ("paid_at", "cancelled_at", "updated_at")}),
        ("Payments", {"fields": ("payments_link",)}),
    )
    # Everything on the page is the books; the page is view-only as well (has_change_permission).
    readonly_fields = tuple(field for _, options in fieldsets for field in options["fields"])
    inlines = (OrderLineInline, OrderEventInline)
    actions = ("mark_fulfilled", "mark_shipped", "mark_delivered", "cancel", "export_csv")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        # A subquery, not Sum("lines__quantity"): a join would repeat each order per line.
        items = (
            OrderLine.objects.filter(order=OuterRef("pk"))
            .values("order")
            .annotate(total=Sum("quantity"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(_item_count=Coalesce(Subquery(items, output_field=IntegerField()), 0))
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(number=order_number_normalize(term)) | Q(email__iexact=term)
        return queryset.filter(matches), False

    # Orders come from checkouts and stay: no adding, no deleting, and the page of one order is
    # read-only. The change permission (checked without an order) is what allows the actions.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    # --- Columns and fields ---

    @admin.display(description="status", ordering="status")
    def status_badge(self, order: Order) -> str:
        return _status_badge(order.status)

    @admin.display(description="items", ordering="_item_count")
    def item_count(self, order: Order) -> int:
        return order._item_count

    @admin.display(description="total", ordering="total")
    def total_display(self, order: Order) -> str:
        return money_format(order.total, order.currency)

    @admin.display(description="subtotal")
    def subtotal_display(self, order: Order) -> str:
        return money_format(order.subtotal, order.currency)

    @admin.display(description="discount")
    def discount_display(self, order: Order) -> str:
        return money_format(-order.discount_total, order.currency)

    @admin.display(description="shipping")
    def shipping_display(self, order: Order) -> str:
        return money_format(order.shipping_total, order.currency)

    @admin.display(description="tax")
    def tax_display(self, order: Order) -> str:
        included = "included" if order.prices_include_tax else "added"
        return f"{money_format(order.tax_total, order.currency)} ({included})"

    @admin.display(description="ship to")
    @admin.display(description="payments")
    def payments_link(self, order: Order) -> str:
        # Handed over by URL name: the orders app never imports payments. Each payment's page
        # shows the provider's events about it.
        try:
            payments = reverse("admin:payments_payment_changelist")
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}?q={}">Payments of this order</a>', payments, order.number)

    def address_display(self, order: Order) -> str:
        address = order.shipping_address if isinstance(order.shipping_address, dict) else {}
        parts = [
            address.get("full_name"),
            address.get("line1"),
            address.get("line2"),
            " ".join(filter(None, [address.get("postal_code"), address.get("city")])),
            country_name(address["country"]) if address.get("country") else "",
            address.get("phone"),
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts if part))

    # --- Actions: one service call per order, each in its own transaction ---

    def _orders_in(self, queryset: QuerySet[Order]) -> list[Order]:
        return list(queryset.order_by("placed_at", "pk"))

    def _change_each(
        self,
        request: HttpRequest,
        orders: list[Order],
        change: Callable[[Order], object],
        done: str,
    ) -> None:
        """Apply `change` to each order, then report the successes and every refusal. `done`
        reads like "Marked {orders} as packed"."""
        changed, refusals = [], []
        for order in orders:
            try:
                change(order)
            except OrderError as exc:  # InvalidTransition included: the order is unchanged
                refusals.append(str(exc))
            else:
                changed.append(order.number)
        if changed:
            self.message_user(
                request,
                f"{done.format(orders=_plural(len(changed)))}: {_numbers(changed)}.",
                messages.SUCCESS,
            )
        for refusal in refusals[:MAX_FAILURE_MESSAGES]:
            self.message_user(request, refusal, messages.ERROR)
        if len(refusals) > MAX_FAILURE_MESSAGES:
            more = len(refusals) - MAX_FAILURE_MESSAGES
            self.message_user(
                request, f"{_plural(more)} more could not be changed.", messages.ERROR
            )

    def _action_page(
        self,
        request: HttpRequest,
        action: str,
        title: str,
        orders: list[Order],
        **context,
    ) -> TemplateResponse:
        """Render an intermediate page whose form posts the same action back (from the list or
        from one order's page, whichever it started from)."""
        change_form_field = f"{ActionLocation.CHANGE_FORM.value}-action"
        action_field = change_form_field if change_form_field in request.POST else "action"
        return TemplateResponse(
            request,
            f"admin/orders/order/{action}_selected.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.opts,
                "orders": orders,
                "action_field": action_field,
                "action_name": action,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "back_url": request.get_full_path(),
                **context,
            },
        )

    @admin.action(
        description="Mark as packed (fulfilled)", permissions=["change"], location=BOTH_PLACES
    )
    def mark_fulfilled(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._change_each(
            request,
            self._orders_in(queryset),
            lambda order: services.order_mark_fulfilled(order_id=order.pk, actor=request.user),
            "Marked {orders} as packed",
        )

    @admin.action(description="Mark as shipped…", permissions=["change"], location=BOTH_PLACES)
    def mark_shipped(self, request: HttpRequest, queryset: QuerySet[Order]):
        orders = self._orders_in(queryset)
        shippable = [order for order in orders if services.order_can_ship(order.status)]
        skipped = [order for order in orders if order not in shippable]
        if not shippable:
            self.message_user(
                request,
                "None of the selected orders can be shipped: only paid or packed orders ship.",
                messages.ERROR,
            )
            return None
        if len(shippable) > MAX_ORDERS_PER_SHIPMENT_PAGE:
            self.message_user(
                request,
                f"Ship at most {MAX_ORDERS_PER_SHIPMENT_PAGE} orders at a time.",
                messages.ERROR,
            )
            return None
        last_carrier = (
            Order.objects.exclude(carrier="")
            .order_by("-shipped_at", "-id")
            .values_list("carrier", flat=True)
            .first()
        )
        form = ShipmentForm(
            request.POST if "apply" in request.POST else None,
            orders=shippable,
            carrier=last_carrier or "",
        )
        if form.is_valid():
            if skipped:
                self.message_user(
                    request,
                    f"Skipped {_plural(len(skipped))} that cannot be shipped: "
                    f"{_numbers([order.number for order in skipped])}.",
                    messages.WARNING,
                )
            shipments = {
                order.pk: (carrier, tracking) for order, carrier, tracking in form.shipments()
            }
            self._change_each(
                request,
                shippable,
                lambda order: services.order_mark_shipped(
                    order_id=order.pk,
                    carrier=shipments[order.pk][0],
                    tracking_number=shipments[order.pk][1],
                    actor=request.user,
                ),
                "Marked {orders} as shipped",
            )
            return None
        carriers = (
            Order.objects.exclude(carrier="")
            .order_by("carrier")
            .values_list("carrier", flat=True)
            .distinct()[:30]
        )
        return self._action_page(
            request,
            "mark_shipped",
            f"Ship {_plural(len(shippable))}",
            shippable,
            form=form,
            skipped=skipped,
            carriers=list(carriers),
        )

    @admin.action(description="Mark as delivered", permissions=["change"], location=BOTH_PLACES)
    def mark_delivered(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        self._change_each(
            request,
            self._orders_in(queryset),
            lambda order: services.order_mark_delivered(order_id=order.pk, actor=request.user),
            "Marked {orders} as delivered",
        )

    @admin.action(
        description="Cancel (returns stock)…", permissions=["change"], location=BOTH_PLACES
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[Order]):
        orders = self._orders_in(queryset)
        cancellable = [o for o in orders if services.transition_allowed(o.status, S.CANCELLED)]
        skipped = [order for order in orders if order not in cancellable]
        if not cancellable:
            self.message_user(
                request,
                "None of the selected orders can be cancelled: only orders awaiting payment can; "
                "paid orders are refunded instead.",
                messages.ERROR,
            )
            return None
        form = CancelForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"] or "by the merchant"
            if skipped:
                self.message_user(
                    request,
                    f"Skipped {_plural(len(skipped))} that cannot be cancelled: "
                    f"{_numbers([order.number for order in skipped])}.",
                    messages.WARNING,
                )
            self._change_each(
                request,
                cancellable,
                lambda order: services.order_cancel(
                    order_id=order.pk, reason=reason, actor=request.user
                ),
                "Cancelled {orders} (stock returned)",
            )
            return None
        return self._action_page(
            request,
            "cancel",
            f"Cancel {_plural(len(cancellable))}",
            cancellable,
            form=form,
            skipped=skipped,
            rows=[
                (order, order._item_count, money_format(order.total, order.currency))
                for order in cancellable
            ],
        )

    @admin.action(description="Export to CSV", permissions=["change"], location=BOTH_PLACES)
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Order]) -> StreamingHttpResponse:
        filename = f"orders-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
        response = StreamingHttpResponse(
            order_lines_csv(queryset.values("pk")), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


# --- Carts (for support: see what a customer had, change nothing) --------------------------------


class CartLineInline(_ReadOnlyInline):
    model = CartLine
    fields = ("sku", "product", "quantity", "unit_price_seen_display", "created_at")
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        user = request.user
        return user.has_perm("orders.view_cart") or user.has_perm("orders.change_cart")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CartLine]:
        return super().get_queryset(request).select_related("variant__product")

    @admin.display(description="SKU")
    def sku(self, line: CartLine) -> str:
        return line.variant.sku

    @admin.display(description="product")
    def product(self, line: CartLine) -> str:
        label = line.variant.label
        return f"{line.variant.product.name} ({label})" if label else line.variant.product.name

    @admin.display(description="unit price seen")
    def unit_price_seen_display(self, line: CartLine) -> str:
        return money_format(line.unit_price_seen, line.variant.currency)


@admin.register(Cart)
class CartAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "email", "user", "item_count", "updated_at", "created_at")
    list_filter = ("status", "updated_at")
    search_fields = ("=email", "=user__email")
    search_help_text = "Search by the full email address."
    list_select_related = ("user",)
    list_per_page = 50
    ordering = ("-updated_at", "-id")
    fields = ("status", "email", "user", "reminder_sent_at", "created_at", "updated_at")
    readonly_fields = fields
    inlines = (CartLineInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cart]:
        lines = (
            CartLine.objects.filter(cart=OuterRef("pk"))
            .values("cart")
            .annotate(total=Sum("quantity"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(_item_count=Coalesce(Subquery(lines, output_field=IntegerField()), 0))
        )

    @admin.display(description="items", ordering="_item_count")
    def item_count(self, cart: Cart) -> int:
        return cart._item_count

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# --- Checkout settings ----------------------------------------------------------------------------


class ShippingMethodForm(forms.ModelForm):
    countries = forms.MultipleChoiceField(
        choices=COUNTRY_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to ship to every country.",
    )

    class Meta:
        model = ShippingMethod
        fields = (
            "name",
            "description",
            "price",
            "free_above",
            "countries",
            "is_active",
            "position",
        )

    def clean_countries(self) -> list[str]:
        # The choices already refuse unknown codes; keep one stable order in the database.
        codes = self.cleaned_data["countries"]
        return sorted(code for code in set(codes) if code in COUNTRIES)


@admin.register(ShippingMethod)
class ShippingMethodAdmin(admin.ModelAdmin):
    form = ShippingMethodForm
    list_display = (
        "name",
        "price_display",
        "free_above_display",
        "countries_display",
        "is_active",
        "position",
    )
    list_editable = ("is_active", "position")
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("currency",)
    fields = (
        "name",
        "description",
        ("price", "currency"),
        "free_above",
        "countries",
        "is_active",
        "position",
    )

    @admin.display(description="price", ordering="price")
    def price_display(self, method: ShippingMethod) -> str:
        return money_format(method.price, method.currency)

    @admin.display(description="free above", ordering="free_above")
    def free_above_display(self, method: ShippingMethod) -> str:
        if method.free_above is None:
            return "—"
        return money_format(method.free_above, method.currency)

    @admin.display(description="countries")
    def countries_display(self, method: ShippingMethod) -> str:
        return ", ".join(method.countries) if method.countries else "every country"


class TaxRateForm(forms.ModelForm):
    country = forms.ChoiceField(choices=[("", "---------"), *COUNTRY_CHOICES])

    class Meta:
        model = TaxRate
        fields = ("country", "name", "rate")


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
    form = TaxRateForm
    list_display = ("country_display", "name", "rate_display")
    search_fields = ("=country", "name")
    ordering = ("country",)

    @admin.display(description="country", ordering="country")
    def country_display(self, rate: TaxRate) -> str:
        return f"{rate.country} · {country_name(rate.country)}"

    @admin.display(description="rate", ordering="rate")
    def rate_display(self, rate: TaxRate) -> str:
        return f"{rate.rate} %"


class VoucherForm(forms.ModelForm):
    class Meta:
        model = Voucher
        fields = (
            "code",
            "kind",
            "value",
            "min_spend",
            "starts_at",
            "ends_at",
            "usage_limit",
            "per_customer_limit",
            "is_active",
        )

    def clean_code(self) -> str:
        # Customers type codes in any case; checkout looks them up upper-cased.
        return self.cleaned_data["code"].strip().upper()

    def clean(self) -> dict:
        data = super().clean()
        kind, value = data.get("kind"), data.get("value")
        if kind == Voucher.Kind.PERCENTAGE and value is not None and value > 100:
            self.add_error("value", "A percentage cannot be more than 100.")
        starts_at, ends_at = data.get("starts_at"), data.get("ends_at")
        if starts_at and ends_at and ends_at <= starts_at:
            self.add_error("ends_at", "The end must come after the start.")
        usage_limit = data.get("usage_limit")
        used = self.instance.used_count if self.instance.pk else 0
        # The database refuses this too, but used_count is not on the form, so the form alone
        # would not check the constraint before saving.
        if usage_limit is not None and usage_limit < used:
            self.add_error(
                "usage_limit", f"It has been used {used} times already; the limit cannot be lower."
            )
        return data

    def validate_constraints(self) -> None:
        # clean() says the same about percentages in words a merchant understands.
        if not self.has_error("value"):
            super().validate_constraints()


@admin.register(Voucher)
class VoucherAdmin(admin.ModelAdmin):
    form = VoucherForm
    list_display = ("code", "kind", "value_display", "usage", "validity", "is_active")
    list_filter = ("is_active", "kind")
    search_fields = ("code",)
    readonly_fields = ("used_count", "created_at")
    fieldsets = (
        (None, {"fields": ("code", "kind", "value", "min_spend", "is_active")}),
        ("Validity", {"fields": ("starts_at", "ends_at")}),
        ("Limits", {"fields": ("usage_limit", "per_customer_limit", "used_count")}),
        ("Record", {"fields": ("created_at",)}),
    )

    @admin.display(description="value", ordering="value")
    def value_display(self, voucher: Voucher) -> str:
        if voucher.kind == Voucher.Kind.PERCENTAGE:
            return f"{voucher.value.normalize():f} %"
        return money_format(voucher.value, settings.SHOP_CURRENCY)

    @admin.display(description="used", ordering="used_count")
    def usage(self, voucher: Voucher) -> str:
        limit = "∞" if voucher.usage_limit is None else voucher.usage_limit
        return f"{voucher.used_count} / {limit}"

    @admin.display(description="valid")
    def validity(self, voucher: Voucher) -> str:
        def day(moment) -> str:
            return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"

        if voucher.starts_at and voucher.ends_at:
            return f"{day(voucher.starts_at)} – {day(voucher.ends_at)}"
        if voucher.starts_at:
            return f"from {day(voucher.starts_at)}"
        if voucher.ends_at:
            return f"until {day(voucher.ends_at)}"
        return "always"
