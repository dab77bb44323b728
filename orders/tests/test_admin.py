"""The merchant's back office for orders, carts and checkout settings (Django admin)."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import ProductVariant
from catalog.tests.factories import ProductVariantFactory
from orders import services
from orders.admin import csv_cell, order_number_normalize
from orders.models import Cart, Order, OrderEvent, ShippingMethod, TaxRate, Voucher
from orders.tests.factories import (
    CartFactory,
    CartLineFactory,
    ShippingMethodFactory,
    TaxRateFactory,
    VoucherFactory,
    checkout_ready,
    place,
)

pytestmark = pytest.mark.django_db

ORDERS = "/admin/orders/order/"
CHANGELISTS = [
    ORDERS,
    "/admin/orders/cart/",
    "/admin/orders/shippingmethod/",
    "/admin/orders/taxrate/",
    "/admin/orders/voucher/",
]
S = Order.Status


# --- Fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def merchant(django_user_model):
    """A staff user who holds every orders permission, and nothing more."""
    user = django_user_model.objects.create_user("merchant@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="orders"))
    return user


@pytest.fixture
def merchant_client(client, merchant):
    client.force_login(merchant)
    return client


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner@example.com", "pw"))
    return client


@pytest.fixture(params=["superuser", "merchant"])
def orders_admin_client(request):
    return request.getfixturevalue(f"{request.param}_client")


@pytest.fixture
def viewer_client(client, django_user_model):
    """Support staff who may look at orders but not change them."""
    user = django_user_model.objects.create_user("support@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_order"))
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(
        django_user_model.objects.create_user("clerk@example.com", "pw", is_staff=True)
    )
    return client


def _order(
    *,
    email: str = "ada@example.com",
    lines=((None, "Trail Boot", "24.00", 2),),
    status: str = S.PENDING_PAYMENT,
    placed_at: datetime | None = None,
    stock: int = 10,
) -> Order:
    """Place an order through checkout (shipping €4.95, German VAT included), then move it to
    `status` through the services. A line is (SKU or None for a fresh one, name, price,
    quantity)."""
    TaxRateFactory(country="DE", rate=Decimal("19.00"))
    cart = CartFactory(email=email)
    for sku, name, price, quantity in lines:
        sku_kwargs = {"sku": sku} if sku else {}
        variant = ProductVariantFactory(
            **sku_kwargs, price=Decimal(price), stock=stock, product__name=name
        )
        CartLineFactory(cart=cart, variant=variant, quantity=quantity)
    cart = checkout_ready(cart, shipping_method=ShippingMethodFactory(name="Parcel"))
    order = place(cart)
    path = [S.PAID, S.FULFILLED, S.SHIPPED, S.DELIVERED]
    if status in path:
        for step in path[: path.index(status) + 1]:
            if step == S.PAID:
                services.order_mark_paid(order_id=order.pk)
            elif step == S.FULFILLED:
                services.order_mark_fulfilled(order_id=order.pk)
            elif step == S.SHIPPED:
                services.order_mark_shipped(
                    order_id=order.pk, carrier="DHL", tracking_number="JJD000111"
                )
            else:
                services.order_mark_delivered(order_id=order.pk)
    elif status == S.CANCELLED:
        services.order_cancel(order_id=order.pk, reason="test")
    if placed_at is not None:
        Order.objects.filter(pk=order.pk).update(placed_at=placed_at)
    order.refresh_from_db()
    return order


def _act(client, action: str, *orders: Order, path: str = ORDERS, **fields):
    """Choose an action for the selected orders in the order list (the first step)."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(o.pk) for o in orders], "index": "0"}
    return client.post(path, {**data, **fields})


def _apply(client, action: str, *orders: Order, path: str = ORDERS, **fields):
    """Submit an action's intermediate page (it posts back without 'index')."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(o.pk) for o in orders], "apply": "yes"}
    return client.post(path, {**data, **fields})


def _html(response) -> str:
    """Return the page without the indentation between tags."""
    return re.sub(r"\s*\n\s*", "", response.content.decode())


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def _events(order: Order) -> list[tuple[str, str, str, str | None]]:
    return [
        (e.from_status, e.to_status, e.message, e.actor.email if e.actor else None)
        for e in OrderEvent.objects.filter(order=order).select_related("actor")
    ]


def _state(order: Order) -> tuple:
    order.refresh_from_db()
    return (order.status, order.total, order.carrier, order.tracking_number, order.events.count())


# --- Who may use the back office -----------------------------------------------------------


@pytest.mark.parametrize("path", CHANGELISTS)
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


@pytest.mark.parametrize("path", CHANGELISTS)
def test_staff_without_orders_permissions_are_refused(staff_client, path):
    assert staff_client.get(path).status_code == 403


def test_staff_without_orders_permissions_cannot_see_an_order(staff_client):
    order = _order()

    assert staff_client.get(f"{ORDERS}{order.pk}/change/").status_code == 403


def test_staff_without_orders_permissions_cannot_run_an_action(staff_client):
    order = _order(status=S.PAID)
    before = _state(order)

    response = _act(staff_client, "mark_fulfilled", order)

    assert response.status_code == 403
    assert _state(order) == before


@pytest.mark.parametrize("path", CHANGELISTS)
def test_merchants_see_every_orders_list(orders_admin_client, path):
    assert orders_admin_client.get(path).status_code == 200


def test_staff_who_may_only_view_orders_see_them_without_actions(viewer_client):
    order = _order(status=S.PAID)

    listing = viewer_client.get(ORDERS)
    page = viewer_client.get(f"{ORDERS}{order.pk}/change/")

    assert listing.status_code == 200
    assert listing.context["action_form"] is None
    assert 'name="action"' not in listing.content.decode()
    assert page.status_code == 200
    assert page.context["action_form"] is None
    # The lines and history are part of the order: whoever sees it sees them.
    assert "Trail Boot" in page.content.decode()
    assert [formset.opts.model.__name__ for formset in page.context["inline_admin_formsets"]] == [
        "OrderLine",
        "OrderEvent",
    ]


def test_staff_who_may_only_view_orders_cannot_run_an_action(viewer_client):
    order = _order(status=S.PAID)
    before = _state(order)

    from_list = _act(viewer_client, "mark_fulfilled", order)
    from_page = viewer_client.post(
        f"{ORDERS}{order.pk}/change/",
        {"CHANGE_FORM-action": "mark_fulfilled", ACTION_CHECKBOX_NAME: str(order.pk), "index": "0"},
    )

    assert from_list.status_code == 200  # the list again: no action exists for this user
    assert from_page.status_code == 403
    assert _state(order) == before


def test_orders_cannot_be_added_or_deleted(orders_admin_client):
    order = _order()

    assert orders_admin_client.get(f"{ORDERS}add/").status_code == 403
    assert (
        orders_admin_client.post(f"{ORDERS}{order.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    response = _act(orders_admin_client, "delete_selected", order, post="yes")
    assert response.status_code == 302
    assert _messages(response) == [("warning", "No action selected.")]
    assert Order.objects.filter(pk=order.pk).exists()


# --- The order list ------------------------------------------------------------------------


def test_order_list_shows_number_customer_status_items_total_and_payment(orders_admin_client):
    paid = _order(
        email="ada@example.com",
        lines=(("BOOT-42", "Trail Boot", "24.00", 2), ("MUG-1", "Camp Mug", "6.50", 3)),
        status=S.PAID,
        placed_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    )
    pending = _order(
        email="bob@example.com",
        lines=(("TENT-1", "Tent", "199.00", 1),),
        placed_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )

    response = orders_admin_client.get(ORDERS)

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert [order.number for order in changelist.result_list] == [paid.number, pending.number]
    assert [order._item_count for order in changelist.result_list] == [5, 1]
    content = response.content.decode()
    assert '<td class="field-total_display">€72.45</td>' in content  # 48 + 19.50 + 4.95
    assert '<td class="field-total_display">€203.95</td>' in content
    assert '<td class="field-item_count">5</td>' in content
    assert '<strong style="color:#1d4ed8">Paid</strong>' in content
    assert '<strong style="color:#b45309">Awaiting payment</strong>' in content
    assert "bob@example.com" in content


def _add_orders(count: int) -> None:
    for _ in range(count):
        _order(lines=[(None, f"Item {n}", "10.00", n + 1) for n in range(3)], status=S.PAID)


def test_order_list_queries_do_not_grow_with_the_number_of_orders(superuser_client):
    _add_orders(3)
    superuser_client.get(ORDERS)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get(ORDERS).status_code == 200

    _add_orders(12)
    with CaptureQueriesContext(connection) as many:
        response = superuser_client.get(ORDERS)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 15
    assert [order._item_count for order in response.context["cl"].result_list] == [6] * 15
    assert len(many) == len(few), [query["sql"] for query in many]


@pytest.mark.parametrize(
    "term",
    ["{number}", "{number_lower}", "{number_compact}", "  {body_spaced} ", "ADA@Example.com"],
)
def test_order_search_finds_an_order_by_number_or_email_in_any_case(orders_admin_client, term):
    wanted = _order(email="ada@example.com")
    _order(email="bob@example.com")
    number = wanted.number
    term = term.format(
        number=number,
        number_lower=number.lower(),
        number_compact=number.replace("-", ""),
        body_spaced=number[3:].replace("-", " ").lower(),
    )

    response = orders_admin_client.get(ORDERS, {"q": term})

    assert response.status_code == 200
    assert [order.number for order in response.context["cl"].result_list] == [number]


@pytest.mark.parametrize("term", ["ada", "example.com", "NW-"])
def test_order_search_does_not_match_fragments(orders_admin_client, term):
    _order(email="ada@example.com")

    response = orders_admin_client.get(ORDERS, {"q": term})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 0


def test_order_number_normalize_reads_what_a_customer_says_on_the_phone():
    assert order_number_normalize("nw-ab23-cd45") == "NW-AB23-CD45"
    assert order_number_normalize("ab23cd45") == "NW-AB23-CD45"
    assert order_number_normalize(" NW AB23 CD45 ") == "NW-AB23-CD45"
    assert order_number_normalize("ada@example.com") == "ADA@EXAMPLE.COM"


def test_order_list_filters_by_status(orders_admin_client):
    paid = _order(status=S.PAID)
    _order()

    response = orders_admin_client.get(ORDERS, {"status__exact": "paid"})

    assert response.status_code == 200
    assert [order.number for order in response.context["cl"].result_list] == [paid.number]


def test_order_list_filters_by_placing_date_and_drills_down_by_date(orders_admin_client):
    recent = _order(placed_at=timezone.now() - timedelta(days=1))
    _order(placed_at=timezone.now() - timedelta(days=40))
    last_year = _order(placed_at=datetime(2025, 3, 2, 9, 30, tzinfo=UTC))
    date_filter = orders_admin_client.get(ORDERS).context["cl"].filter_specs[1]
    past_7_days = next(link for title, link in date_filter.links if title == "Past 7 days")

    by_filter = orders_admin_client.get(ORDERS, past_7_days)
    by_hierarchy = orders_admin_client.get(
        ORDERS, {"placed_at__year": "2025", "placed_at__month": "3"}
    )

    assert by_filter.status_code == 200
    assert [order.number for order in by_filter.context["cl"].result_list] == [recent.number]
    assert by_hierarchy.status_code == 200
    assert [o.number for o in by_hierarchy.context["cl"].result_list] == [last_year.number]


# --- One order's page ------------------------------------------------------------------------


def test_order_page_shows_amounts_lines_address_and_history(merchant_client, merchant):
    order = _order(
        lines=(("BOOT-42", "Trail Boot", "24.00", 2), ("MUG-1", "Camp Mug", "6.50", 1)),
        status=S.PAID,
    )
    services.order_mark_fulfilled(order_id=order.pk, actor=merchant)

    response = merchant_client.get(f"{ORDERS}{order.pk}/change/")

    assert response.status_code == 200
    content = _html(response)
    assert '<div class="readonly">€54.50</div>' in content  # subtotal 48.00 + 6.50
    assert '<div class="readonly">€59.45</div>' in content  # total with €4.95 shipping
    assert '<div class="readonly">€4.95</div>' in content
    assert "(included)" in content
    assert "Ada Customer<br>Hauptstraße 1<br>10115 Berlin<br>Germany" in content
    assert '<td class="field-sku"><p>BOOT-42</p></td>' in content
    assert '<td class="field-unit_price_display"><p>€24.00</p></td>' in content
    assert '<td class="field-line_total_display"><p>€48.00</p></td>' in content
    assert '<td class="field-change"><p>Paid → Packed</p></td>' in content
    assert (
        f'<a href="/admin/accounts/user/{merchant.pk}/change/">merchant@example.com</a>' in content
    )
    assert '<td class="field-change"><p>→ Awaiting payment</p></td>' in content


def test_order_page_has_no_inputs_for_the_books(merchant_client):
    order = _order(status=S.PAID)

    response = merchant_client.get(f"{ORDERS}{order.pk}/change/")

    content = response.content.decode()
    for name in (
        "total",
        "subtotal",
        "discount_total",
        "shipping_total",
        "tax_total",
        "status",
        "email",
        "shipping_address",
        "voucher",
        "carrier",
        "tracking_number",
        "lines-0-quantity",
        "lines-0-unit_price",
        "lines-0-line_total",
        "lines-0-DELETE",
        "events-0-message",
        "events-0-to_status",
    ):
        assert f'name="{name}"' not in content
    assert 'name="_save"' not in content


def test_posting_a_changed_total_changes_nothing(merchant_client, superuser_client):
    order = _order(status=S.PAID)
    before = _state(order)

    for client in (merchant_client, superuser_client):
        response = client.post(
            f"{ORDERS}{order.pk}/change/",
            {"total": "0.01", "status": "refunded", "email": "evil@example.com", "_save": "Save"},
        )
        assert response.status_code == 403

    assert _state(order) == before
    assert order.email == "ada@example.com"


def test_order_page_queries_do_not_grow_with_lines_or_events(superuser_client):
    small = _order(lines=(("A-1", "One", "1.00", 1),), status=S.PAID)
    large = _order(
        lines=tuple((f"B-{n}", f"Item {n}", "2.00", 1) for n in range(8)), status=S.SHIPPED
    )
    superuser_client.get(f"{ORDERS}{small.pk}/change/")

    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get(f"{ORDERS}{small.pk}/change/").status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert superuser_client.get(f"{ORDERS}{large.pk}/change/").status_code == 200

    assert len(many) == len(few), [query["sql"] for query in many]


# --- Status actions ------------------------------------------------------------------------


def test_marking_paid_orders_as_packed_records_who_did_it(orders_admin_client):
    first = _order(status=S.PAID, placed_at=datetime(2026, 3, 1, tzinfo=UTC))
    second = _order(status=S.PAID, placed_at=datetime(2026, 3, 2, tzinfo=UTC))
    user = orders_admin_client.get(ORDERS).wsgi_request.user

    response = _act(orders_admin_client, "mark_fulfilled", first, second)

    assert response.status_code == 302
    assert response["Location"] == ORDERS
    assert _messages(response) == [
        ("success", f"Marked 2 orders as packed: {first.number}, {second.number}.")
    ]
    for order in (first, second):
        order.refresh_from_db()
        assert order.status == S.FULFILLED
        assert _events(order)[-1] == ("paid", "fulfilled", "Packed and ready to ship.", user.email)


def test_an_invalid_transition_is_reported_and_changes_nothing(merchant_client):
    pending = _order()
    before = _state(pending)

    response = _act(merchant_client, "mark_fulfilled", pending)

    assert response.status_code == 302
    assert _messages(response) == [
        ("error", f"Order {pending.number} is awaiting payment and cannot become packed.")
    ]
    assert _state(pending) == before


def test_a_mixed_selection_changes_what_it_can_and_reports_each_refusal(merchant_client):
    paid = _order(status=S.PAID, placed_at=datetime(2026, 3, 1, tzinfo=UTC))
    shipped = _order(status=S.SHIPPED, placed_at=datetime(2026, 3, 2, tzinfo=UTC))
    cancelled = _order(status=S.CANCELLED, placed_at=datetime(2026, 3, 3, tzinfo=UTC))
    untouched = (_state(shipped), _state(cancelled))

    response = _act(merchant_client, "mark_fulfilled", paid, shipped, cancelled)

    assert response.status_code == 302
    assert _messages(response) == [
        ("success", f"Marked 1 order as packed: {paid.number}."),
        ("error", f"Order {shipped.number} is shipped and cannot become packed."),
        ("error", f"Order {cancelled.number} is cancelled and cannot become packed."),
    ]
    assert _state(paid)[0] == S.FULFILLED
    assert (_state(shipped), _state(cancelled)) == untouched


def test_marking_shipped_orders_as_delivered(merchant_client, merchant):
    order = _order(status=S.SHIPPED)

    response = _act(merchant_client, "mark_delivered", order)

    assert response.status_code == 302
    assert _messages(response) == [("success", f"Marked 1 order as delivered: {order.number}.")]
    order.refresh_from_db()
    assert order.status == S.DELIVERED
    assert _events(order)[-1] == ("shipped", "delivered", "Delivered.", merchant.email)


def test_an_action_runs_from_the_order_page_and_returns_there(merchant_client, merchant):
    order = _order(status=S.SHIPPED)
    page = f"{ORDERS}{order.pk}/change/"

    response = merchant_client.post(
        page,
        {"CHANGE_FORM-action": "mark_delivered", ACTION_CHECKBOX_NAME: str(order.pk), "index": "0"},
    )

    assert response.status_code == 302
    assert response["Location"] == page
    order.refresh_from_db()
    assert order.status == S.DELIVERED
    assert _events(order)[-1][3] == merchant.email


def test_the_order_page_offers_the_actions(merchant_client):
    order = _order(status=S.PAID)

    response = merchant_client.get(f"{ORDERS}{order.pk}/change/")

    choices = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert choices == [
        "",
        "mark_fulfilled",
        "mark_shipped",
        "mark_delivered",
        "cancel",
        "export_csv",
    ]


# --- Shipping (with tracking) ---------------------------------------------------------------


def test_shipping_first_asks_for_carrier_and_tracking_of_each_order(merchant_client):
    paid = _order(status=S.PAID, placed_at=datetime(2026, 3, 1, tzinfo=UTC))
    packed = _order(status=S.FULFILLED, placed_at=datetime(2026, 3, 2, tzinfo=UTC))
    pending = _order(placed_at=datetime(2026, 3, 3, tzinfo=UTC))
    before = [_state(order) for order in (paid, packed, pending)]

    response = _act(merchant_client, "mark_shipped", paid, packed, pending)

    assert response.status_code == 200
    assert [template.name for template in response.templates][0] == (
        "admin/orders/order/mark_shipped_selected.html"
    )
    content = response.content.decode()
    for order in (paid, packed):
        assert f'name="carrier-{order.pk}"' in content
        assert f'name="tracking-{order.pk}"' in content
        assert f'<input type="hidden" name="_selected_action" value="{order.pk}">' in content
    assert f'name="carrier-{pending.pk}"' not in content
    assert f"<li>{pending.number} (Awaiting payment)</li>" in content
    assert '<input type="hidden" name="action" value="mark_shipped">' in content
    assert [_state(order) for order in (paid, packed, pending)] == before


def test_shipping_stores_carrier_and_tracking_and_records_the_events(merchant_client, merchant):
    paid = _order(status=S.PAID, placed_at=datetime(2026, 3, 1, tzinfo=UTC))
    packed = _order(status=S.FULFILLED, placed_at=datetime(2026, 3, 2, tzinfo=UTC))

    response = _apply(
        merchant_client,
        "mark_shipped",
        paid,
        packed,
        **{
            f"carrier-{paid.pk}": " DHL ",
            f"tracking-{paid.pk}": "JJD0001",
            f"carrier-{packed.pk}": "UPS",
            f"tracking-{packed.pk}": "1Z999",
        },
    )

    assert response.status_code == 302
    assert _messages(response) == [
        ("success", f"Marked 2 orders as shipped: {paid.number}, {packed.number}.")
    ]
    paid.refresh_from_db()
    packed.refresh_from_db()
    assert (paid.status, paid.carrier, paid.tracking_number) == (S.SHIPPED, "DHL", "JJD0001")
    assert (packed.status, packed.carrier, packed.tracking_number) == (S.SHIPPED, "UPS", "1Z999")
    assert paid.shipped_at is not None
    # A paid order is packed on the way.
    assert _events(paid)[-2:] == [
        ("paid", "fulfilled", "Packed and ready to ship.", merchant.email),
        ("fulfilled", "shipped", "Shipped with DHL, tracking JJD0001.", merchant.email),
    ]
    assert _events(packed)[-1] == (
        "fulfilled",
        "shipped",
        "Shipped with UPS, tracking 1Z999.",
        merchant.email,
    )
    assert paid.emails.filter(kind="order_shipped").count() == 1


@pytest.mark.parametrize(
    ("carrier", "tracking", "errors"),
    [
        ("", "", {"carrier": ["Give the carrier."], "tracking": ["Give the tracking number."]}),
        ("DHL", "   ", {"tracking": ["Give the tracking number."]}),
        ("  ", "JJD0001", {"carrier": ["Give the carrier."]}),
    ],
)
def test_shipping_refuses_missing_carrier_or_tracking_and_changes_nothing(
    merchant_client, carrier, tracking, errors
):
    order = _order(status=S.FULFILLED)
    other = _order(status=S.FULFILLED)
    before = (_state(order), _state(other))

    response = _apply(
        merchant_client,
        "mark_shipped",
        order,
        other,
        **{
            f"carrier-{order.pk}": carrier,
            f"tracking-{order.pk}": tracking,
            f"carrier-{other.pk}": "UPS",
            f"tracking-{other.pk}": "1Z999",
        },
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert {key.split("-")[0]: value for key, value in form.errors.items()} == errors
    assert "Please correct the errors below." in response.content.decode()
    assert _messages(response) == []
    assert (_state(order), _state(other)) == before


def test_shipping_suggests_the_carrier_used_last(merchant_client):
    _order(status=S.SHIPPED)  # shipped with DHL
    order = _order(status=S.FULFILLED)

    response = _act(merchant_client, "mark_shipped", order)

    assert response.status_code == 200
    assert response.context["form"][f"carrier-{order.pk}"].value() == "DHL"
    assert '<datalist id="carriers"><option value="DHL"></datalist>' in response.content.decode()


def test_shipping_orders_that_cannot_ship_is_refused_with_a_message(merchant_client):
    pending = _order()
    delivered = _order(status=S.DELIVERED)
    before = (_state(pending), _state(delivered))

    response = _act(merchant_client, "mark_shipped", pending, delivered)

    assert response.status_code == 302
    assert _messages(response) == [
        ("error", "None of the selected orders can be shipped: only paid or packed orders ship.")
    ]
    assert (_state(pending), _state(delivered)) == before


def test_shipping_an_order_that_shipped_meanwhile_is_reported_not_repeated(merchant_client):
    order = _order(status=S.FULFILLED)
    other = _order(status=S.FULFILLED)
    page = _act(merchant_client, "mark_shipped", order, other)
    assert page.status_code == 200
    # Someone else ships one of them before this form is sent.
    services.order_mark_shipped(order_id=order.pk, carrier="GLS", tracking_number="G1")
    events = order.events.count()

    response = _apply(
        merchant_client,
        "mark_shipped",
        order,
        other,
        **{
            f"carrier-{order.pk}": "DHL",
            f"tracking-{order.pk}": "JJD0001",
            f"carrier-{other.pk}": "DHL",
            f"tracking-{other.pk}": "JJD0002",
        },
    )

    assert response.status_code == 302
    assert _messages(response) == [
        ("warning", f"Skipped 1 order that cannot be shipped: {order.number}."),
        ("success", f"Marked 1 order as shipped: {other.number}."),
    ]
    order.refresh_from_db()
    assert (order.carrier, order.tracking_number, order.events.count()) == ("GLS", "G1", events)


def test_shipping_from_the_order_page_posts_back_to_it(merchant_client):
    order = _order(status=S.FULFILLED)
    page = f"{ORDERS}{order.pk}/change/"
    chosen = {"CHANGE_FORM-action": "mark_shipped", ACTION_CHECKBOX_NAME: str(order.pk)}

    form_page = merchant_client.post(page, {**chosen, "index": "0"})
    response = merchant_client.post(
        page,
        {**chosen, "apply": "yes", f"carrier-{order.pk}": "DHL", f"tracking-{order.pk}": "JJD9"},
    )

    assert form_page.status_code == 200
    content = form_page.content.decode()
    assert f'<form method="post" action="{page}" novalidate>' in content
    assert '<input type="hidden" name="CHANGE_FORM-action" value="mark_shipped">' in content
    assert response.status_code == 302
    assert response["Location"] == page
    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number) == (S.SHIPPED, "DHL", "JJD9")


# --- Cancelling ----------------------------------------------------------------------------


def test_cancelling_first_asks_for_confirmation_and_changes_nothing(merchant_client):
    order = _order(lines=(("BOOT-42", "Trail Boot", "24.00", 2),), stock=10)
    before = _state(order)

    response = _act(merchant_client, "cancel", order)

    assert response.status_code == 200
    content = response.content.decode()
    assert f"<td>{order.number}</td>" in content
    assert "<td>€52.95</td>" in content
    assert 'name="reason"' in content
    assert _state(order) == before
    assert ProductVariant.objects.get(sku="BOOT-42").stock == 8


def test_cancelling_returns_the_stock_and_records_the_reason_and_the_merchant(
    merchant_client, merchant
):
    order = _order(lines=(("BOOT-42", "Trail Boot", "24.00", 2),), stock=10)
    paid = _order(lines=(("MUG-1", "Camp Mug", "6.50", 1),), status=S.PAID, stock=5)
    assert ProductVariant.objects.get(sku="BOOT-42").stock == 8

    response = _apply(merchant_client, "cancel", order, paid, reason="Customer asked by phone")

    assert response.status_code == 302
    assert _messages(response) == [
        ("warning", f"Skipped 1 order that cannot be cancelled: {paid.number}."),
        ("success", f"Cancelled 1 order (stock returned): {order.number}."),
    ]
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert order.cancelled_at is not None
    assert _events(order)[-1] == (
        "pending_payment",
        "cancelled",
        "Cancelled: Customer asked by phone",
        merchant.email,
    )
    assert dict(ProductVariant.objects.values_list("sku", "stock")) == {"BOOT-42": 10, "MUG-1": 4}
    assert _state(paid)[0] == S.PAID


def test_cancelling_without_a_reason_says_the_merchant_did_it(merchant_client):
    order = _order()

    _apply(merchant_client, "cancel", order, reason="")

    assert _events(order)[-1][2] == "Cancelled: by the merchant"


def test_cancelling_only_orders_that_cannot_be_cancelled_is_refused(merchant_client):
    paid = _order(status=S.PAID)
    before = _state(paid)

    response = _act(merchant_client, "cancel", paid)

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "error",
            "None of the selected orders can be cancelled: only orders awaiting payment can; "
            "paid orders are refunded instead.",
        )
    ]
    assert _state(paid) == before


def test_cancelling_twice_returns_the_stock_once(merchant_client):
    order = _order(lines=(("BOOT-42", "Trail Boot", "24.00", 2),), stock=10)

    _apply(merchant_client, "cancel", order)
    merchant_client.get(ORDERS)  # shows (and so clears) the first cancellation's messages
    second = _apply(merchant_client, "cancel", order)

    assert second.status_code == 302
    assert _messages(second) == [
        (
            "error",
            "None of the selected orders can be cancelled: only orders awaiting payment can; "
            "paid orders are refunded instead.",
        )
    ]
    assert ProductVariant.objects.get(sku="BOOT-42").stock == 10
    assert order.events.filter(to_status="cancelled").count() == 1


# --- Export to CSV -------------------------------------------------------------------------


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body)))


def test_export_streams_one_row_per_line_of_the_selected_orders(merchant_client, settings):
    settings.TIME_ZONE = "UTC"
    first = _order(
        email="ada@example.com",
        lines=(("BOOT-42", "Trail Boot", "24.00", 2), ("MUG-1", "Camp Mug", "6.50", 1)),
        status=S.PAID,
        placed_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )
    second = _order(
        email="bob@example.com",
        lines=(("TENT-1", "Tent", "199.00", 1),),
        placed_at=datetime(2026, 3, 2, 18, 5, 7, tzinfo=UTC),
    )
    _order(email="not-selected@example.com")

    response = _act(merchant_client, "export_csv", second, first)

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    assert response["Content-Disposition"].endswith('.csv"')
    assert _csv(response) == [
        [
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
        ],
        [first.number, "2026-03-01T09:30:00+00:00", "paid", "ada@example.com", "DE"]
        + ["BOOT-42", "Trail Boot", "2", "24.00", "48.00", "59.45", "EUR"],
        [first.number, "2026-03-01T09:30:00+00:00", "paid", "ada@example.com", "DE"]
        + ["MUG-1", "Camp Mug", "1", "6.50", "6.50", "59.45", "EUR"],
        [second.number, "2026-03-02T18:05:07+00:00", "pending_payment", "bob@example.com"]
        + ["DE", "TENT-1", "Tent", "1", "199.00", "199.00", "203.95", "EUR"],
    ]


def test_export_shows_times_in_the_shops_time_zone(merchant_client, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    order = _order(placed_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))

    rows = _csv(_act(merchant_client, "export_csv", order))

    assert rows[1][1] == "2026-03-02T00:30:00+01:00"


def test_export_cannot_be_turned_into_spreadsheet_formulas(merchant_client):
    order = _order(
        email="+1@example.com",
        lines=(
            ("=1+2", '=HYPERLINK("http://evil.example","click")', "1.00", 1),
            ("@SUM(A1)", "-2+3 Boot", "2.00", 1),
            ("PLAIN", "+ Plus Boot", "3.00", 1),
        ),
    )

    rows = _csv(_act(merchant_client, "export_csv", order))

    assert [row[3:7] for row in rows[1:]] == [
        ["'+1@example.com", "DE", "'=1+2", '\'=HYPERLINK("http://evil.example","click")'],
        ["'+1@example.com", "DE", "'@SUM(A1)", "'-2+3 Boot"],
        ["'+1@example.com", "DE", "PLAIN", "'+ Plus Boot"],
    ]


def test_csv_cell_neutralises_every_formula_prefix():
    assert [csv_cell(v) for v in ["=A1", "+A1", "-A1", "@A1", "\tA1", "\rA1"]] == [
        "'=A1",
        "'+A1",
        "'-A1",
        "'@A1",
        "'\tA1",
        "'\rA1",
    ]
    assert [csv_cell(v) for v in ["Boot", Decimal("1.50"), 3, None, "a=b"]] == [
        "Boot",
        "1.50",
        "3",
        "",
        "a=b",
    ]


def test_export_of_every_order_in_a_filtered_list(merchant_client):
    paid = _order(status=S.PAID, lines=(("A-1", "One", "1.00", 1),))
    _order(lines=(("B-1", "Two", "1.00", 1),))

    response = merchant_client.post(
        f"{ORDERS}?status__exact=paid",
        {"action": "export_csv", ACTION_CHECKBOX_NAME: [str(paid.pk)], "index": "0"}
        | {"select_across": "1"},
    )

    rows = _csv(response)
    assert [row[0] for row in rows[1:]] == [paid.number]


def test_export_runs_from_the_order_page(merchant_client):
    order = _order(lines=((None, "Trail Boot", "24.00", 2),))

    response = merchant_client.post(
        f"{ORDERS}{order.pk}/change/",
        {"CHANGE_FORM-action": "export_csv", ACTION_CHECKBOX_NAME: str(order.pk), "index": "0"},
    )

    assert response.status_code == 200
    assert [(row[0], row[7], row[10]) for row in _csv(response)[1:]] == [
        (order.number, "2", "52.95")
    ]


def test_export_queries_do_not_grow_with_the_number_of_orders(merchant_client):
    _add_orders(2)
    with CaptureQueriesContext(connection) as few:
        _csv(
            merchant_client.post(
                ORDERS,
                {
                    "action": "export_csv",
                    "select_across": "1",
                    ACTION_CHECKBOX_NAME: ["0"],
                    "index": "0",
                },
            )
        )
    _add_orders(6)
    with CaptureQueriesContext(connection) as many:
        rows = _csv(
            merchant_client.post(
                ORDERS,
                {
                    "action": "export_csv",
                    "select_across": "1",
                    ACTION_CHECKBOX_NAME: ["0"],
                    "index": "0",
                },
            )
        )

    assert len(rows) == 1 + 8 * 3
    assert len(many) == len(few), [query["sql"] for query in many]


# --- Carts (read-only, for support) ------------------------------------------------------------


def test_cart_page_shows_lines_and_offers_no_edits(superuser_client):
    cart = CartFactory(email="ada@example.com")
    variant = ProductVariantFactory(sku="BOOT-42", price=Decimal("24.00"), product__name="Boot")
    CartLineFactory(cart=cart, variant=variant, quantity=2)

    listing = superuser_client.get("/admin/orders/cart/")
    page = superuser_client.get(f"/admin/orders/cart/{cart.pk}/change/")

    assert listing.status_code == 200
    assert [c._item_count for c in listing.context["cl"].result_list] == [2]
    assert page.status_code == 200
    content = page.content.decode()
    assert "BOOT-42" in content
    assert "€24.00" in content
    assert 'name="_save"' not in content
    assert 'name="email"' not in content
    assert 'name="lines-0-quantity"' not in content
    assert superuser_client.get("/admin/orders/cart/add/").status_code == 403
    assert (
        superuser_client.post(
            f"/admin/orders/cart/{cart.pk}/change/", {"email": "x@example.com"}
        ).status_code
        == 403
    )
    cart.refresh_from_db()
    assert cart.email == "ada@example.com"
    assert Cart.objects.count() == 1


# --- Checkout settings ---------------------------------------------------------------------


def _voucher_form(**fields) -> dict:
    return {
        "code": "spring10",
        "kind": "percentage",
        "value": "10",
        "min_spend": "0",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "usage_limit": "",
        "per_customer_limit": "",
        "is_active": "on",
        "_save": "Save",
        **fields,
    }


def test_a_new_voucher_code_is_stored_upper_case(orders_admin_client):
    response = orders_admin_client.post(
        "/admin/orders/voucher/add/", _voucher_form(code="  spring10 ")
    )

    assert response.status_code == 302
    assert list(Voucher.objects.values_list("code", flat=True)) == ["SPRING10"]


def test_a_voucher_code_differing_only_in_case_is_refused(orders_admin_client):
    VoucherFactory(code="SPRING10")

    response = orders_admin_client.post("/admin/orders/voucher/add/", _voucher_form())

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "code": ["Voucher with this Code already exists."]
    }
    assert Voucher.objects.count() == 1


def test_a_percentage_above_100_is_refused_in_words(orders_admin_client):
    response = orders_admin_client.post("/admin/orders/voucher/add/", _voucher_form(value="150"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "value": ["A percentage cannot be more than 100."]
    }
    assert Voucher.objects.count() == 0


def test_a_voucher_must_end_after_it_starts(orders_admin_client):
    response = orders_admin_client.post(
        "/admin/orders/voucher/add/",
        _voucher_form(
            starts_at_0="2026-03-10", starts_at_1="00:00", ends_at_0="2026-03-01", ends_at_1="00:00"
        ),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "ends_at": ["The end must come after the start."]
    }


def test_a_voucher_limit_below_its_uses_is_refused_not_a_crash(orders_admin_client):
    voucher = VoucherFactory(code="SPRING10", usage_limit=10)
    Voucher.objects.filter(pk=voucher.pk).update(used_count=4)

    response = orders_admin_client.post(
        f"/admin/orders/voucher/{voucher.pk}/change/", _voucher_form(usage_limit="3")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "usage_limit": ["It has been used 4 times already; the limit cannot be lower."]
    }
    voucher.refresh_from_db()
    assert (voucher.usage_limit, voucher.used_count) == (10, 4)


def test_voucher_list_shows_value_usage_and_validity_and_used_count_is_read_only(
    orders_admin_client,
):
    voucher = VoucherFactory(
        code="SPRING10",
        value=Decimal("10.00"),
        usage_limit=100,
        starts_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    VoucherFactory(code="FIVE", kind=Voucher.Kind.FIXED, value=Decimal("5.00"))
    Voucher.objects.filter(pk=voucher.pk).update(used_count=3)

    listing = orders_admin_client.get("/admin/orders/voucher/", {"is_active__exact": "1"})
    page = orders_admin_client.get(f"/admin/orders/voucher/{voucher.pk}/change/")

    content = listing.content.decode()
    assert '<td class="field-value_display">10 %</td>' in content
    assert '<td class="field-value_display">€5.00</td>' in content
    assert '<td class="field-usage">3 / 100</td>' in content
    assert '<td class="field-usage">0 / ∞</td>' in content
    assert "from 2026-03-01 00:00" in content
    assert page.status_code == 200
    assert 'name="used_count"' not in page.content.decode()
    assert '<div class="readonly">3</div>' in page.content.decode()


def test_editing_a_voucher_keeps_its_use_count(orders_admin_client):
    voucher = VoucherFactory(code="SPRING10")
    Voucher.objects.filter(pk=voucher.pk).update(used_count=3)

    response = orders_admin_client.post(
        f"/admin/orders/voucher/{voucher.pk}/change/",
        _voucher_form(value="15", used_count="0"),
    )

    assert response.status_code == 302
    voucher.refresh_from_db()
    assert (voucher.value, voucher.used_count) == (Decimal("15.00"), 3)


def _shipping_form(**fields) -> dict:
    return {
        "name": "Parcel",
        "description": "",
        "price": "4.95",
        "free_above": "",
        "is_active": "on",
        "position": "0",
        "_save": "Save",
        **fields,
    }


def test_shipping_method_countries_are_stored_as_known_codes(orders_admin_client):
    response = orders_admin_client.post(
        "/admin/orders/shippingmethod/add/", _shipping_form(countries=["FR", "DE", "AT"])
    )

    assert response.status_code == 302
    method = ShippingMethod.objects.get()
    assert method.countries == ["AT", "DE", "FR"]
    assert method.currency == "EUR"


def test_shipping_method_refuses_an_unknown_country(orders_admin_client):
    response = orders_admin_client.post(
        "/admin/orders/shippingmethod/add/", _shipping_form(countries=["DE", "XX"])
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "countries": ["Select a valid choice. XX is not one of the available choices."]
    }
    assert ShippingMethod.objects.count() == 0


def test_shipping_method_without_countries_ships_everywhere(orders_admin_client):
    response = orders_admin_client.post("/admin/orders/shippingmethod/add/", _shipping_form())

    assert response.status_code == 302
    assert ShippingMethod.objects.get().countries == []


def test_shipping_method_list_shows_prices_with_currency_and_countries(orders_admin_client):
    ShippingMethodFactory(name="Parcel", price=Decimal("4.95"), free_above=Decimal("50"))
    ShippingMethodFactory(name="Express", price=Decimal("12.00"), countries=["AT", "DE"])

    response = orders_admin_client.get("/admin/orders/shippingmethod/")

    content = response.content.decode()
    assert '<td class="field-price_display">€4.95</td>' in content
    assert '<td class="field-free_above_display">€50.00</td>' in content
    assert '<td class="field-countries_display">every country</td>' in content
    assert '<td class="field-countries_display">AT, DE</td>' in content


def test_tax_rate_country_must_be_a_known_country(orders_admin_client):
    refused = orders_admin_client.post(
        "/admin/orders/taxrate/add/", {"country": "XX", "name": "VAT", "rate": "20.00"}
    )
    added = orders_admin_client.post(
        "/admin/orders/taxrate/add/", {"country": "FR", "name": "TVA", "rate": "20.00"}
    )

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "country": ["Select a valid choice. XX is not one of the available choices."]
    }
    assert added.status_code == 302
    assert list(TaxRate.objects.values_list("country", "name", "rate")) == [
        ("FR", "TVA", Decimal("20.00"))
    ]


def test_tax_rate_above_100_percent_is_refused(orders_admin_client):
    response = orders_admin_client.post(
        "/admin/orders/taxrate/add/", {"country": "FR", "name": "TVA", "rate": "120"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["rate"] == [
        "Ensure this value is less than or equal to 100."
    ]
    assert TaxRate.objects.count() == 0


def test_tax_rate_list_shows_country_name_and_percent(orders_admin_client):
    TaxRateFactory(country="DE", rate=Decimal("19.00"))

    response = orders_admin_client.get("/admin/orders/taxrate/")

    content = response.content.decode()
    assert '<th class="field-country_display"><a href="/admin/orders/taxrate/' in content
    assert "DE · Germany</a></th>" in content
    assert '<td class="field-rate_display">19.00 %</td>' in content
