"""The merchant's back office for payments, provider events and refunds.

Payments, events and refunds are the books: they are shown, never added, edited or deleted here.
Two things can be done, one call per row, and every outcome is reported: refunding a payment
(`services.payment_refund`, which talks to the provider outside any database transaction, so
the refund page is a view of its own and not an action of the change form, which Django runs
inside one) and handing a provider event not processed yet to a worker again
(`tasks.webhook_event_process`).
"""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.timezone import template_localtime

from payments import selectors, services
from payments.exceptions import PaymentError
from payments.models import Payment, Refund, WebhookEvent
from payments.tasks import webhook_event_process
from shop.money import money_format

P = Payment.Status
E = WebhookEvent.Outcome

# One message per refused payment or event, up to this many; the rest are summed up in one line.
MAX_FAILURE_MESSAGES = 10
# One input per payment must stay well under DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000).
MAX_PAYMENTS_PER_REFUND_PAGE = 50
# Provider events listed on a payment's page; the link below the list shows all of them.
EVENTS_ON_PAYMENT_PAGE = 20

PAYMENT_COLOURS = {
    P.PENDING: "#b45309",
    P.SUCCEEDED: "#15803d",
    P.FAILED: "#b91c1c",
    P.CANCELED: "#6b7280",
}
REFUND_COLOURS = {
    Refund.Status.PENDING: "#b45309",
    Refund.Status.SUCCEEDED: "#15803d",
    Refund.Status.FAILED: "#b91c1c",
}
OUTCOME_COLOURS = {
    E.PENDING: "#b45309",
    E.APPLIED: "#15803d",
    E.IGNORED: "#6b7280",
    E.FLAGGED: "#b91c1c",
    E.ERROR: "#b91c1c",
}


def _badge(colours: dict, value: str, label: str) -> str:
    return format_html('<strong style="color:{}">{}</strong>', colours.get(value, "inherit"), label)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _listed(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _order_link(payment: Payment) -> str:
    url = reverse("admin:orders_order_change", args=[payment.order_id])
    return format_html('<a href="{}">{}</a>', url, payment.order.number)


def _payment_name(payment: Payment) -> str:
    """How a payment is named in messages: by its order, which the merchant knows it by."""
    return f"{payment.order.number} ({payment.provider} {payment.provider_reference or payment.pk})"


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


class _BooksAdmin(admin.ModelAdmin):
    """Rows written only by the payment services: no adding, no deleting, and one row's page is
    read-only. The change permission (checked without a row) is what allows the actions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)


# --- The refund page ------------------------------------------------------------------------------


class RefundForm(forms.Form):
    """An amount for each payment (the rest left to refund, unless changed) and one reason.
    Whether an amount may be refunded is the service's decision, not the form's."""

    reason = forms.CharField(
        max_length=200,
        help_text="Kept with each refund and in the order's history.",
        error_messages={"required": "Give the reason for the refund."},
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def __init__(
        self, *args, payments: list[Payment], available: dict[int, Decimal], **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.payments = payments
        for payment in payments:
            self.fields[f"amount-{payment.pk}"] = forms.DecimalField(
                label=f"Amount to refund of {payment.order.number}",
                max_digits=12,
                decimal_places=2,
                min_value=Decimal("0.01"),
                initial=available[payment.pk],
                error_messages={
                    "required": "Give the amount to refund.",
                    "min_value": "Give an amount above zero.",
                },
                widget=forms.NumberInput(attrs={"step": "0.01", "min": "0.01", "size": 10}),
            )

    def rows(self) -> list[tuple[Payment, forms.BoundField]]:
        return [(payment, self[f"amount-{payment.pk}"]) for payment in self.payments]

    def refunds(self) -> list[tuple[Payment, Decimal]]:
        return [(p, self.cleaned_data[f"amount-{p.pk}"]) for p in self.payments]


# --- Payments -------------------------------------------------------------------------------------


def _can_see_payments(request: HttpRequest) -> bool:
    user = request.user
    return user.has_perm("payments.view_payment") or user.has_perm("payments.change_payment")


class RefundInline(_ReadOnlyInline):
    model = Refund
    fields = (
        "created_at",
        "amount_display",
        "status_badge",
        "reason",
        "created_by",
        "provider_reference",
        "error",
    )
    readonly_fields = fields

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return _can_see_payments(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return super().get_queryset(request).select_related("payment", "created_by")

    @admin.display(description="amount")
    def amount_display(self, refund: Refund) -> str:
        return money_format(refund.amount, refund.payment.currency)

    @admin.display(description="status")
    def status_badge(self, refund: Refund) -> str:
        return _badge(REFUND_COLOURS, refund.status, refund.get_status_display())


@admin.register(Payment)
class PaymentAdmin(_BooksAdmin):
    list_display = (
        "order_link",
        "provider",
        "amount_display",
        "received_display",
        "refunded_display",
        "status_badge",
        "needs_attention",
        "created_at",
    )
    list_filter = ("status", "provider", "needs_attention")
    search_fields = ("=order__number", "=provider_reference", "=order__email")
    search_help_text = (
        "Search by the full order number, the provider's payment reference or the customer's email."
    )
    list_select_related = ("order",)
    list_per_page = 50
    ordering = ("-created_at", "-id")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "order_link",
                    "provider",
                    "provider_reference",
                    "status_badge",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            "Amounts",
            {
                "fields": (
                    "amount_display",
                    "received_display",
                    "refunded_display",
                    "refundable_display",
                )
            },
        ),
        (
            "Attention",
            {
                "fields": (
                    "needs_attention",
                    "attention_reason",
                    "attention_resolved_at",
                    "attention_resolved_by",
                    "attention_resolution",
                )
            },
        ),
        ("Provider events", {"fields": ("provider_events",)}),
    )
    readonly_fields = tuple(field for _, options in fieldsets for field in options["fields"])
    inlines = (RefundInline,)
    actions = ("refund", "attention_resolve")

    def get_urls(self):
        refund = self.admin_site.admin_view(self.refund_view)
        return [
            path("<path:object_id>/refund/", refund, name="payments_payment_refund"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, object_id)
        can_refund = (
            payment is not None
            and payment.status == P.SUCCEEDED
            and payment.refundable > 0
            and self.has_change_permission(request)
        )
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "can_refund": can_refund}
        )

    # --- Columns and fields ---

    @admin.display(description="order", ordering="order__number")
    def order_link(self, payment: Payment) -> str:
        return _order_link(payment)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payment: Payment) -> str:
        return money_format(payment.amount, payment.currency)

    @admin.display(description="received", ordering="amount_received")
    def received_display(self, payment: Payment) -> str:
        return money_format(payment.amount_received, payment.currency)

    @admin.display(description="refunded", ordering="amount_refunded")
    def refunded_display(self, payment: Payment) -> str:
        return money_format(payment.amount_refunded, payment.currency)

    @admin.display(description="left to refund")
    def refundable_display(self, payment: Payment) -> str:
        return money_format(payment.refundable, payment.currency)

    @admin.display(description="status", ordering="status")
    def status_badge(self, payment: Payment) -> str:
        return _badge(PAYMENT_COLOURS, payment.status, payment.get_status_display())

    @admin.display(description="events about this payment")
    def provider_events(self, payment: Payment) -> str:
        if not payment.provider_reference:
            return "None: the provider has not given this payment a reference."
        events = list(
            WebhookEvent.objects.filter(
                provider=payment.provider, payment_reference=payment.provider_reference
            ).order_by("-received_at", "-id")[: EVENTS_ON_PAYMENT_PAGE + 1]
        )
        if not events:
            return "None received."
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:payments_webhookevent_change", args=[event.pk]),
                    event.event_id,
                    event.event_type,
                    localize(template_localtime(event.received_at)),
                    _badge(OUTCOME_COLOURS, event.outcome, event.get_outcome_display()),
                )
                for event in events[:EVENTS_ON_PAYMENT_PAGE]
            ),
        )
        all_url = reverse("admin:payments_webhookevent_changelist")
        more = "All of them" if len(events) > EVENTS_ON_PAYMENT_PAGE else "As a list"
        return format_html(
            '<table class="payment-events"><thead><tr><th>Event</th><th>Type</th>'
            "<th>Received</th><th>Outcome</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}?provider__exact={}&amp;payment_reference={}">{}</a></p>',
            rows,
            all_url,
            payment.provider,
            payment.provider_reference,
            more,
        )

    @admin.action(
        description="Mark as dealt with (clears 'needs attention')", permissions=["change"]
    )
    def attention_resolve(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        note = f"Checked in the back office by {request.user}."
        for payment in queryset.order_by("pk"):
            try:
                services.payment_attention_resolve(
                    payment_id=payment.pk, note=note, actor=request.user
                )
            except PaymentError as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                self.message_user(request, f"Payment {payment.pk} no longer needs attention.")

    # --- Refunds: one service call per payment ---

    @admin.action(description="Refund…", permissions=["change"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Payment]):
        payments = list(queryset.select_related("order").order_by("created_at", "pk"))
        return self._refund_page(request, payments, back_url=request.get_full_path(), action=True)

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One payment's refund page, reached by the "Refund…" button on the payment's page."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        payment = self.get_object(request, unquote(object_id))  # None for a bad id too
        if payment is None:
            raise Http404("No such payment.")
        back_url = reverse("admin:payments_payment_change", args=[payment.pk])
        response = self._refund_page(request, [payment], back_url=back_url, action=False)
        return response or HttpResponseRedirect(back_url)

    def _refund_page(
        self, request: HttpRequest, payments: list[Payment], *, back_url: str, action: bool
    ) -> TemplateResponse | None:
        # What the service would allow: received, not refunded, not asked for already.
        available = {
            payment.pk: payment.refundable
            - selectors.payment_refunds_in_flight(payment_id=payment.pk)
            for payment in payments
            if payment.status == P.SUCCEEDED
        }
        refundable = [payment for payment in payments if available.get(payment.pk, 0) > 0]
        skipped = [payment for payment in payments if payment not in refundable]
        if not refundable:
            self.message_user(
                request,
                "Nothing to refund: none of the selected payments has received money that is "
                "not refunded yet.",
                messages.ERROR,
            )
            return None
        if len(refundable) > MAX_PAYMENTS_PER_REFUND_PAGE:
            self.message_user(
                request,
                f"Refund at most {MAX_PAYMENTS_PER_REFUND_PAGE} payments at a time.",
                messages.ERROR,
            )
            return None
        form = RefundForm(
            request.POST if "apply" in request.POST else None,
            payments=refundable,
            available=available,
        )
        if form.is_valid():
            if skipped:
                self.message_user(
                    request,
                    f"Skipped {_plural(len(skipped), 'payment')} with nothing left to refund: "
                    f"{_listed([_payment_name(p) for p in skipped])}.",
                    messages.WARNING,
                )
            self._refund_each(request, form.refunds(), form.cleaned_data["reason"])
            return None
        title = (
            f"Refund {_plural(len(refundable), 'payment')}"
            if len(refundable) > 1
            else f"Refund the payment of order {refundable[0].order.number}"
        )
        return TemplateResponse(
            request,
            "admin/payments/payment/refund.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.opts,
                "form": form,
                "rows": [
                    (
                        payment,
                        amount,
                        money_format(payment.amount_received, payment.currency),
                        money_format(payment.amount_refunded, payment.currency),
                        money_format(available[payment.pk], payment.currency),
                    )
                    for payment, amount in form.rows()
                ],
                "payments": refundable,
                "skipped": skipped,
                # From the list, the form posts the action back; from a payment's page, to itself.
                "action_name": "refund" if action else "",
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "back_url": back_url,
                "post_url": request.get_full_path(),
            },
        )

    def _refund_each(
        self, request: HttpRequest, refunds: list[tuple[Payment, Decimal]], reason: str
    ) -> None:
        refusals = 0
        for payment, amount in refunds:
            amount_text = money_format(amount, payment.currency)
            try:
                refund = services.payment_refund(
                    payment_id=payment.pk, amount=amount, reason=reason, actor=request.user
                )
            except PaymentError as exc:  # RefundRefused: too much, or the provider said no
                refusals += 1
                if refusals <= MAX_FAILURE_MESSAGES:
                    self.message_user(
                        request,
                        f"Not refunded {amount_text} of {_payment_name(payment)}: {exc}",
                        messages.ERROR,
                    )
                continue
            if refund.status == Refund.Status.SUCCEEDED:
                self.message_user(
                    request,
                    f"Refunded {amount_text} of {_payment_name(payment)}.",
                    messages.SUCCESS,
                )
            else:  # settled by someone else meanwhile; the refund's row says how
                self.message_user(
                    request,
                    f"The refund of {amount_text} of {_payment_name(payment)} is "
                    f"{refund.get_status_display().lower()}: see the payment's refunds.",
                    messages.WARNING,
                )
        if refusals > MAX_FAILURE_MESSAGES:
            more = refusals - MAX_FAILURE_MESSAGES
            self.message_user(
                request, f"{_plural(more, 'more payment')} could not be refunded.", messages.ERROR
            )


# --- Provider events ------------------------------------------------------------------------------


class PaymentReferenceFilter(admin.SimpleListFilter):
    """The events about one payment, reached from the payment's page (shown only when used)."""

    title = "payment reference"
    parameter_name = "payment_reference"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]):
        reference = self.value()
        return queryset.filter(payment_reference=reference) if reference else queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(_BooksAdmin):
    list_display = (
        "event_id",
        "provider",
        "event_type",
        "payment_reference",
        "outcome_badge",
        "attempts",
        "received_at",
        "processed_at",
    )
    list_filter = ("provider", "event_type", "outcome", PaymentReferenceFilter)
    search_fields = ("=event_id", "=payment_reference")
    search_help_text = "Search by the provider's full event id or payment reference."
    list_per_page = 50
    ordering = ("-received_at", "-id")
    fields = (
        "provider",
        "event_id",
        "event_type",
        "payment_reference",
        "reported_display",
        "outcome_badge",
        "message",
        "attempts",
        "received_at",
        "processed_at",
        "payload_display",
    )
    readonly_fields = fields
    actions = ("process_again",)

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, event: WebhookEvent) -> str:
        return _badge(OUTCOME_COLOURS, event.outcome, event.get_outcome_display())

    @admin.display(description="reported")
    def reported_display(self, event: WebhookEvent) -> str:
        """What the event says, as the services read it (the raw event is the payload)."""

        def amount(value: Decimal) -> str:
            return money_format(value, event.currency) if event.currency else str(value)

        parts = []
        if event.amount is not None:
            parts.append(f"received {amount(event.amount)}")
        if event.amount_refunded is not None:
            parts.append(f"refunded in all {amount(event.amount_refunded)}")
        return ", ".join(parts) or "—"

    @admin.display(description="payload")
    def payload_display(self, event: WebhookEvent) -> str:
        text = json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="webhook-payload">{}</pre>', text)

    @admin.action(description="Process again (events not applied yet)", permissions=["change"])
    def process_again(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        """Hand events not processed yet (or failed) to a worker again. A processed event is
        left alone: processing it again would change nothing (the service re-checks under the
        event's lock), and the button must not suggest otherwise."""
        events = list(queryset.order_by("received_at", "pk"))
        again = [event for event in events if event.processed_at is None]
        skipped = [event for event in events if event.processed_at is not None]
        if skipped:
            self.message_user(
                request,
                f"Left {_plural(len(skipped), 'event')} alone, as only events not processed yet "
                f"or failed are processed again: {_listed([e.event_id for e in skipped])}.",
                messages.WARNING,
            )
        queued, failures = [], []
        for event in again:
            try:
                webhook_event_process.delay(event.pk)
            except Exception as exc:  # noqa: BLE001 - a broker outage is reported, not raised
                failures.append(f"{event.event_id} was not processed again: {exc}")
            else:
                queued.append(event.event_id)
        if queued:
            self.message_user(
                request,
                f"Handed {_plural(len(queued), 'event')} to a worker to process again: "
                f"{_listed(queued)}. The outcome shows here once it is processed.",
                messages.SUCCESS,
            )
        for failure in failures[:MAX_FAILURE_MESSAGES]:
            self.message_user(request, failure, messages.ERROR)
        if len(failures) > MAX_FAILURE_MESSAGES:
            more = len(failures) - MAX_FAILURE_MESSAGES
            self.message_user(
                request, f"{_plural(more, 'more event')} could not be handed over.", messages.ERROR
            )


# --- Refunds --------------------------------------------------------------------------------------


@admin.register(Refund)
class RefundAdmin(_BooksAdmin):
    list_display = (
        "created_at",
        "order_link",
        "amount_display",
        "status_badge",
        "reason",
        "created_by",
        "provider_reference",
    )
    list_filter = ("status",)
    search_fields = ("=payment__order__number", "=provider_reference")
    search_help_text = "Search by the full order number or the provider's refund reference."
    list_select_related = ("payment__order", "created_by")
    list_per_page = 50
    ordering = ("-created_at", "-id")
    fields = (
        "order_link",
        "payment_link",
        "amount_display",
        "status_badge",
        "reason",
        "provider_reference",
        "error",
        "created_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = None

    @admin.display(description="order", ordering="payment__order__number")
    def order_link(self, refund: Refund) -> str:
        return _order_link(refund.payment)

    @admin.display(description="payment")
    def payment_link(self, refund: Refund) -> str:
        url = reverse("admin:payments_payment_change", args=[refund.payment_id])
        return format_html('<a href="{}">{}</a>', url, refund.payment)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, refund: Refund) -> str:
        return money_format(refund.amount, refund.payment.currency)

    @admin.display(description="status", ordering="status")
    def status_badge(self, refund: Refund) -> str:
        return _badge(REFUND_COLOURS, refund.status, refund.get_status_display())
