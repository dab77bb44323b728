"""Cart, checkout and order pages. Thin: parse, call one service or selector, render.

Every OrderError carries a sentence meant for the shopper: the views show it with the messages
framework and send the browser back to where it can be fixed. Placement problems the shopper
must look at (stock, prices, voucher) re-render the review page with status 409.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.addresses import country_name
from catalog import selectors as catalog_selectors
from orders import selectors, services
from orders.context_processors import (
    SESSION_CART_KEY,
    cart_for_request,
    cart_item_count_remember,
)
from orders.exceptions import CartEmpty, CartLineNotFound, CheckoutError, OrderError
from orders.forms import ADDRESS_FIELDS, NEW_ADDRESS, CheckoutForm
from orders.models import Cart, Order

# The last order this session placed: a repeated "place order" finds it after the cart is gone.
SESSION_LAST_ORDER_KEY = "last_order"
ORDERS_PER_PAGE = 20


def _customer(request: HttpRequest):
    return request.user if request.user.is_authenticated else None


def _next_url(request: HttpRequest, fallback: str) -> str:
    """Return the form's `next` if it is a path on this site, else the fallback."""
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else fallback


# --- Cart --------------------------------------------------------------------------------------


@require_safe
def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = cart_for_request(request)
    quote = selectors.checkout_quote(cart=cart, data={}) if cart is not None else None
    lines = quote.lines if quote is not None else []
    cart_item_count_remember(request, sum(q.line.quantity for q in lines))
    images = {}
    if lines:
        product_ids = {q.line.variant.product_id for q in lines}
        images = dict(
            catalog_selectors.product_cards()
            .filter(pk__in=product_ids)
            .values_list("pk", "card_image")
        )
    rows = [(q, images.get(q.line.variant.product_id)) for q in lines]
    return render(
        request, "orders/cart_detail.html", {"quote": quote if lines else None, "rows": rows}
    )


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    back = _next_url(request, reverse("orders:cart"))
    quantity = request.POST.get("quantity", "1")
    cart = cart_for_request(request)
    try:
        # A guest's new cart is kept only if the item goes in: nothing half-written.
        with transaction.atomic():
            if cart is None:
                cart = services.cart_create(user=request.user)
            line = services.cart_add(
                cart=cart, variant_id=request.POST.get("variant"), quantity=quantity
            )
    except OrderError as error:
        messages.error(request, str(error))
        return redirect(back)
    if _customer(request) is None:
        request.session[SESSION_CART_KEY] = cart.pk
    variant = line.variant
    name = f"{variant.product.name} ({variant.label})" if variant.label else variant.product.name
    added = services.quantity_parse(quantity)
    messages.success(request, f"Added {added} × {name} to your cart.")
    return redirect("orders:cart")


@require_POST
def cart_line_update(request: HttpRequest, line_id: int) -> HttpResponse:
    cart = cart_for_request(request)
    try:
        if cart is None:
            raise CartLineNotFound("That item is not in your cart.")
        services.cart_line_update(cart=cart, line_id=line_id, quantity=request.POST.get("quantity"))
    except OrderError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Quantity updated.")
    return redirect("orders:cart")


@require_POST
def cart_line_remove(request: HttpRequest, line_id: int) -> HttpResponse:
    cart = cart_for_request(request)
    try:
        if cart is None:
            raise CartLineNotFound("That item is not in your cart.")
        services.cart_line_remove(cart=cart, line_id=line_id)
    except OrderError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Removed from your cart.")
    return redirect("orders:cart")


# --- Checkout ----------------------------------------------------------------------------------


def _checkout_initial(cart: Cart, customer, addresses: list, methods: list) -> dict:
    """Prefill the form with what the cart remembers, else the customer's default address."""
    data = cart.checkout_data or {}
    address = data.get("address") if isinstance(data.get("address"), dict) else {}
    initial = {
        "email": cart.email or (customer.email if customer is not None else ""),
        "voucher_code": data.get("voucher_code") or "",
    }
    saved = next((a for a in addresses if address and a.as_snapshot() == address), None)
    if saved is not None:
        initial["address_choice"] = str(saved.pk)
    elif address or not addresses:
        initial["address_choice"] = NEW_ADDRESS
        initial.update({name: address.get(name, "") for name in ADDRESS_FIELDS})
    else:
        initial["address_choice"] = str(addresses[0].pk)  # the default comes first
    method_id = data.get("shipping_method_id")
    if method_id is not None:
        initial["shipping_method"] = str(method_id)
    elif len(methods) == 1:
        initial["shipping_method"] = str(methods[0].pk)
    return initial


@require_http_methods(["GET", "HEAD", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    cart = cart_for_request(request)
    lines = selectors.cart_lines(cart) if cart is not None else []
    if not lines:
        messages.info(request, "Your cart is empty: add something before checking out.")
        return redirect("orders:cart")
    customer = _customer(request)
    addresses = list(account_selectors.address_list_for_user(user=customer)) if customer else []
    methods = selectors.shipping_methods_for(None)
    form = CheckoutForm(
        request.POST if request.method == "POST" else None,
        initial=_checkout_initial(cart, customer, addresses, methods),
        addresses=addresses,
        methods=methods,
        can_save_address=customer is not None,
    )
    if request.method == "POST" and form.is_valid():
        email, data = form.cleaned_data["email"], form.checkout_data()
        quote = selectors.checkout_quote(
            cart=cart, email=email, user=customer, data=data, lines=lines
        )
        if quote.voucher_error:
            form.add_error("voucher_code", quote.voucher_error)
        else:
            address = data["address"]
            try:
                with transaction.atomic():
                    services.cart_checkout_save(cart=cart, email=email, data=data)
                    if form.cleaned_data.get("save_address") and not any(
                        saved.as_snapshot() == address for saved in addresses
                    ):
                        account_services.address_create(user=customer, **address)
            except OrderError as error:  # e.g. the cart was ordered in another tab meanwhile
                messages.error(request, str(error))
                return redirect("orders:cart")
            return redirect("orders:checkout-review")
    # The page's order summary (without the details: those are what the form asks for).
    summary = selectors.checkout_quote(cart=cart, data={}, lines=lines)
    cart_item_count_remember(request, sum(q.line.quantity for q in summary.lines))
    return render(
        request,
        "orders/checkout_form.html",
        {"form": form, "summary": summary, "addresses": addresses, "methods": methods},
    )


def _review_page(request: HttpRequest, cart: Cart, *, status: int = 200) -> HttpResponse:
    try:
        selectors.checkout_details_require(cart.checkout_data)
    except CheckoutError as error:
        messages.info(request, str(error))
        return redirect("orders:checkout")
    quote = selectors.checkout_quote(cart=cart, email=cart.email, user=_customer(request))
    if not quote.lines:
        messages.info(request, "Your cart is empty: add something before checking out.")
        return redirect("orders:cart")
    cart_item_count_remember(request, sum(q.line.quantity for q in quote.lines))
    address = cart.checkout_data["address"]
    return render(
        request,
        "orders/checkout_review.html",
        {
            "cart": cart,
            "quote": quote,
            "address": address,
            "country": country_name(address.get("country", "")),
            "price_changes": [q for q in quote.lines if q.price_changed],
            "payment_minutes": settings.SHOP_ORDER_PAYMENT_MINUTES,
        },
        status=status,
    )


@require_safe
def checkout_review(request: HttpRequest) -> HttpResponse:
    cart = cart_for_request(request)
    if cart is None:
        messages.info(request, "Your cart is empty: add something before checking out.")
        return redirect("orders:cart")
    return _review_page(request, cart)


def _already_placed(request: HttpRequest, token: str) -> str | None:
    """Return the page of the order this session placed with `token`, if it did."""
    placed = request.session.get(SESSION_LAST_ORDER_KEY)
    if token and isinstance(placed, dict) and placed.get("checkout_token") == token:
        return reverse(
            "orders:order-detail",
            kwargs={"number": placed["number"], "token": placed["access_token"]},
        )
    return None


@require_POST
def checkout_place(request: HttpRequest) -> HttpResponse:
    token = request.POST.get("checkout_token", "")
    fingerprint = request.POST.get("fingerprint", "")
    placed_url = _already_placed(request, token)
    if placed_url is not None:
        # A second click after the first one went through: show the order it made.
        messages.info(request, "This order has been placed already.")
        return redirect(placed_url)
    cart = cart_for_request(request)
    if cart is None:
        messages.error(request, "Your cart is empty: add something before checking out.")
        return redirect("orders:cart")
    try:
        order = services.order_place(
            cart=cart, checkout_token=token, fingerprint=fingerprint, user=_customer(request)
        )
    except CartEmpty as error:
        messages.error(request, str(error))
        return redirect("orders:cart")
    except OrderError as error:
        messages.error(request, str(error))
        return _review_page(request, cart, status=409)
    request.session.pop(SESSION_CART_KEY, None)
    request.session[SESSION_LAST_ORDER_KEY] = {
        "checkout_token": token,
        "number": order.number,
        "access_token": order.access_token,
    }
    messages.success(
        request,
        f"Thank you! We have your order {order.number}. "
        f"A confirmation is on its way to {order.email}.",
    )
    return redirect(order.get_absolute_url())


# --- Orders ------------------------------------------------------------------------------------


def _order_page(request: HttpRequest, order: Order) -> HttpResponse:
    lines = list(order.lines.all())
    address = order.shipping_address if isinstance(order.shipping_address, dict) else {}
    return render(
        request,
        "orders/order_detail.html",
        {
            "order": order,
            "lines": lines,
            "address": address,
            "country": country_name(address.get("country", "")),
            "tax_rate": lines[0].tax_rate if lines else None,
            "pay_by": (
                order.placed_at + timedelta(minutes=settings.SHOP_ORDER_PAYMENT_MINUTES)
                if order.is_pending_payment
                else None
            ),
        },
    )


@require_safe
def order_detail(request: HttpRequest, number: str, token: str) -> HttpResponse:
    try:
        order = selectors.order_get_by_token(number=number, token=token)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None
    return _order_page(request, order)


@require_POST
def order_cancel(request: HttpRequest, number: str, token: str) -> HttpResponse:
    try:
        order = selectors.order_get_by_token(number=number, token=token)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None
    try:
        services.order_cancel_by_customer(order=order, user=request.user)
    except OrderError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Order {order.number} is cancelled.")
    return redirect(_next_url(request, order.get_absolute_url()))


@require_safe
@login_required
def account_orders(request: HttpRequest) -> HttpResponse:
    orders = selectors.order_list_for_customer(user=request.user)
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "orders/order_list.html", {"page_obj": page, "query_string": ""})


@require_safe
@login_required
def account_order_detail(request: HttpRequest, number: str) -> HttpResponse:
    try:
        order = selectors.order_get_for_customer(user=request.user, number=number)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None
    return _order_page(request, order)
