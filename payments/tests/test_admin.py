"""The merchant's back office for payments, provider events and refunds (Django admin)."""

import re
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import services as order_services
from orders.models import Order
from orders.tests.factories import CartFactory, CartLineFactory, checkout_ready, place
from payments.models import Payment, Refund, WebhookEvent
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db

PAYMENTS = "/admin/payments/payment/"
EVENTS = "/admin/payments/webhookevent/"
REFUNDS = "/admin/payments/refund/"
CHANGELISTS = [PAYMENTS, EVENTS, REFUNDS]
P = Payment.Status
O = WebhookEvent.Outcome  # noqa: E741


# --- Fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _pipeline(test_provider):
    """The built-in test provider is the one provider (refunds go through it, no network)."""


@pytest.fixture
def merchant(django_user_model):
    """A staff user who holds every payments and orders permission, and nothing more."""
    user = django_user_model.objects.create_user("merchant@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["payments", "orders"])
    )
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
def payments_admin_client(request):
    return request.getfixturevalue(f"{request.param}_client")


@pytest.fixture
def viewer_client(client, django_user_model):
    """Support staff who may look at payments, events and refunds but not change them."""
    user = django_user_model.objects.create_user("support@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_payment", "view_webhookevent", "view_refund"])
    )
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, django_user_model):
    """Staff who may use the back office for other things, but hold no payments permission."""
    user = django_user_model.objects.create_user("clerk@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="orders"))
    client.force_login(user)
    return client


def _order(*, email: str = "ada@example.com", price: str = "25.00", paid: bool = True) -> Order:
    """Place an order through checkout (one line, standard shipping €4.95)."""
    cart = CartFactory(email=email)
    CartLineFactory(cart=cart, variant__price=Decimal(price), variant__stock=10, quantity=2)
    order = place(checkout_ready(cart))
    if paid:
        order_services.order_mark_paid(order_id=order.pk)
    order.refresh_from_db()
    return order


def _payment(
    *,
    order: Order | None = None,
    reference: str = "",
    status: str = P.SUCCEEDED,
    received: str | None = None,
    refunded: str = "0.00",
    provider: str = "test",
    **fields,
) -> Payment:
    """A payment of the order's total as the services leave it once the provider has spoken:
    succeeded (the whole total received) unless told otherwise."""
    order = order or _order(paid=status == P.SUCCEEDED)
    if received is None:
        received = order.total if status == P.SUCCEEDED else "0.00"
    payment = Payment.objects.create(
        order=order,
        provider=provider,
        amount=order.total,
        currency=order.currency,
        status=status,
        provider_reference=reference or f"{provider}_{order.number}",
        amount_received=Decimal(received),
        amount_refunded=Decimal(refunded),
        **fields,
    )
    return payment


def _event(*, event_id: str = "evt_1", payload=None, outcome: str = O.APPLIED, **fields):
    return WebhookEvent.objects.create(
        provider=fields.pop("provider", "test"),
        event_id=event_id,
        event_type=fields.pop("event_type", "payment.succeeded"),
        payload=payload if payload is not None else {"id": event_id},
        outcome=outcome,
        processed_at=None if outcome == O.PENDING else timezone.now(),
        **fields,
    )


def _act(client, action: str, *rows, path: str = PAYMENTS, **fields):
    """Choose an action for the selected rows in a list (the first step)."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(r.pk) for r in rows], "index": "0"}
    return client.post(path, {**data, **fields})


def _apply(client, action: str, *rows, path: str = PAYMENTS, **fields):
    """Submit an action's intermediate page (it posts back without 'index')."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(r.pk) for r in rows], "apply": "yes"}
    return client.post(path, {**data, **fields})


def _html(response) -> str:
    """Return the page without the indentation between tags."""
    return re.sub(r"\s*\n\s*", "", response.content.decode())


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def _state(payment: Payment) -> tuple:
    payment.refresh_from_db()
    order = Order.objects.get(pk=payment.order_id)
    return (
        payment.status,
        payment.amount,
        payment.amount_received,
        payment.amount_refunded,
        payment.needs_attention,
        payment.refunds.count(),
        order.status,
        order.events.count(),
    )


# --- Who may use the payments back office ----------------------------------------------------


@pytest.mark.parametrize("path", CHANGELISTS)
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_anonymous_visitors_cannot_reach_the_refund_page(client):
    payment = _payment()
    path = f"{PAYMENTS}{payment.pk}/refund/"

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


@pytest.mark.parametrize("path", CHANGELISTS)
def test_staff_without_payments_permissions_are_refused(staff_client, path):
    assert staff_client.get(path).status_code == 403


def test_staff_without_payments_permissions_cannot_see_a_payment_or_an_event(staff_client):
    payment = _payment()
    event = _event()

    assert staff_client.get(f"{PAYMENTS}{payment.pk}/change/").status_code == 403
    assert staff_client.get(f"{EVENTS}{event.pk}/change/").status_code == 403


def test_staff_without_payments_permissions_cannot_refund(staff_client):
    payment = _payment()
    before = _state(payment)

    from_list = _apply(staff_client, "refund", payment, **{f"amount-{payment.pk}": "5.00"})
    from_page = staff_client.post(
        f"{PAYMENTS}{payment.pk}/refund/",
        {f"amount-{payment.pk}": "5.00", "reason": "Damaged", "apply": "yes"},
    )

    assert from_list.status_code == 403
    assert from_page.status_code == 403
    assert _state(payment) == before


@pytest.mark.parametrize("path", CHANGELISTS)
def test_merchants_see_every_payments_list(payments_admin_client, path):
    _payment()
    _event()

    assert payments_admin_client.get(path).status_code == 200


def test_staff_who_may_only_view_payments_see_them_without_refunds(viewer_client):
    payment = _payment()
    before = _state(payment)

    listing = viewer_client.get(PAYMENTS)
    page = viewer_client.get(f"{PAYMENTS}{payment.pk}/change/")
    refund_page = viewer_client.get(f"{PAYMENTS}{payment.pk}/refund/")
    refund_post = viewer_client.post(
        f"{PAYMENTS}{payment.pk}/refund/",
        {f"amount-{payment.pk}": "5.00", "reason": "Damaged", "apply": "yes"},
    )
    action = _apply(
        viewer_client, "refund", payment, reason="Damaged", **{f"amount-{payment.pk}": "5"}
    )

    assert listing.status_code == 200
    assert listing.context["action_form"] is None
    assert page.status_code == 200
    assert "Refund…" not in page.content.decode()
    assert refund_page.status_code == 403
    assert refund_post.status_code == 403
    assert action.status_code == 200  # the list again: no action exists for this user
    assert _state(payment) == before


def test_payments_events_and_refunds_cannot_be_added_or_deleted(payments_admin_client):
    payment = _payment()
    event = _event()
    refund = Refund.objects.create(payment=payment, amount=Decimal("1.00"), reason="Test")

    for path, row in ((PAYMENTS, payment), (EVENTS, event), (REFUNDS, refund)):
        assert payments_admin_client.get(f"{path}add/").status_code == 403
        assert (
            payments_admin_client.post(f"{path}{row.pk}/delete/", {"post": "yes"}).status_code
            == 403
        )
        response = _act(payments_admin_client, "delete_selected", row, path=path, post="yes")
        assert response.status_code in (200, 302)

    assert (Payment.objects.count(), WebhookEvent.objects.count(), Refund.objects.count()) == (
        1,
        1,
        1,
    )


# --- The payment list ----------------------------------------------------------------------


def test_payment_list_shows_order_link_amounts_status_and_attention(payments_admin_client):
    paid = _payment()
    flagged = _payment(
        order=_order(email="bob@example.com", price="10.00"),
        refunded="5.00",
        needs_attention=True,
        attention_reason="Paid after the order was cancelled.",
    )

    response = payments_admin_client.get(PAYMENTS)

    assert response.status_code == 200
    assert [p.pk for p in response.context["cl"].result_list] == [flagged.pk, paid.pk]
    content = response.content.decode()
    assert (
        f'<a href="/admin/orders/order/{paid.order_id}/change/">{paid.order.number}</a>' in content
    )
    assert '<td class="field-amount_display">€54.95</td>' in content  # 2 × 25.00 + 4.95
    assert '<td class="field-received_display">€24.95</td>' in content  # 2 × 10.00 + 4.95
    assert '<td class="field-refunded_display">€5.00</td>' in content
    assert '<strong style="color:#15803d">Succeeded</strong>' in content
    assert '<td class="field-needs_attention"><img src="/static/admin/img/icon-yes.svg"' in content


def _add_payments(count: int) -> None:
    for _ in range(count):
        _payment(needs_attention=True)


def test_payment_list_queries_do_not_grow_with_the_number_of_payments(superuser_client):
    _add_payments(2)
    superuser_client.get(PAYMENTS)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get(PAYMENTS).status_code == 200

    _add_payments(8)
    with CaptureQueriesContext(connection) as many:
        response = superuser_client.get(PAYMENTS)

    assert response.context["cl"].result_count == 10
    assert len(many) == len(few), [query["sql"] for query in many]


@pytest.mark.parametrize("term", ["{number}", "{number_lower}", "{reference}", "ADA@example.COM"])
def test_payment_search_finds_a_payment_by_order_number_reference_or_email(
    payments_admin_client, term
):
    wanted = _payment(reference="pi_wanted")
    _payment(order=_order(email="bob@example.com"), reference="pi_other")
    term = term.format(
        number=wanted.order.number,
        number_lower=wanted.order.number.lower(),
        reference="pi_wanted",
    )

    response = payments_admin_client.get(PAYMENTS, {"q": term})

    assert response.status_code == 200
    assert [p.pk for p in response.context["cl"].result_list] == [wanted.pk]


@pytest.mark.parametrize(
    "query",
    [{"status__exact": "failed"}, {"provider__exact": "stripe"}, {"needs_attention__exact": "1"}],
)
def test_payment_list_filters_by_status_provider_and_attention(payments_admin_client, query):
    _payment()
    wanted = _payment(provider="stripe", status=P.FAILED, needs_attention=True)

    response = payments_admin_client.get(PAYMENTS, query)

    assert response.status_code == 200
    assert [p.pk for p in response.context["cl"].result_list] == [wanted.pk]


# --- One payment's page --------------------------------------------------------------------


def test_payment_page_shows_amounts_refunds_attention_and_the_events_about_it(
    merchant_client, merchant
):
    payment = _payment(
        reference="pi_123",
        refunded="4.95",
        needs_attention=True,
        attention_reason="Amount differs from the order's total.",
    )
    Refund.objects.create(
        payment=payment,
        amount=Decimal("4.95"),
        reason="Shipping refunded",
        status=Refund.Status.SUCCEEDED,
        provider_reference="re_1",
        created_by=merchant,
    )
    about = _event(event_id="evt_about", payment_reference="pi_123")
    _event(event_id="evt_another_payment", payment_reference="pi_1234")
    _event(event_id="evt_other_provider", provider="stripe", payment_reference="pi_123")

    response = merchant_client.get(f"{PAYMENTS}{payment.pk}/change/")

    assert response.status_code == 200
    content = _html(response)
    assert '<div class="readonly">€54.95</div>' in content  # amount and received
    assert '<div class="readonly">€4.95</div>' in content  # refunded
    assert '<div class="readonly">€50.00</div>' in content  # left to refund
    assert "Amount differs from the order&#x27;s total." in content
    assert '<td class="field-reason"><p>Shipping refunded</p></td>' in content
    assert '<td class="field-amount_display"><p>€4.95</p></td>' in content
    assert f'<a href="{EVENTS}{about.pk}/change/">evt_about</a>' in content
    assert "evt_another_payment" not in content
    assert "evt_other_provider" not in content
    assert f'href="{EVENTS}?provider__exact=test&amp;payment_reference=pi_123"' in content
    assert f'href="{PAYMENTS}{payment.pk}/refund/" class="refundlink">Refund…</a>' in content


def test_the_events_link_of_a_payment_lists_the_events_about_it(merchant_client):
    about = _event(event_id="evt_about", payment_reference="pi_9")
    _event(event_id="evt_another_payment", payment_reference="pi_99")
    _event(event_id="evt_other_provider", provider="stripe", payment_reference="pi_9")

    response = merchant_client.get(EVENTS, {"provider__exact": "test", "payment_reference": "pi_9"})

    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [about.pk]


def test_payment_page_has_no_inputs_for_the_books(merchant_client):
    payment = _payment()
    Refund.objects.create(payment=payment, amount=Decimal("1.00"), reason="Test")

    response = merchant_client.get(f"{PAYMENTS}{payment.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    for name in (
        "amount",
        "amount_received",
        "amount_refunded",
        "status",
        "provider_reference",
        "needs_attention",
        "attention_reason",
        "order",
        "refunds-0-amount",
        "refunds-0-DELETE",
    ):
        assert f'name="{name}"' not in content
    assert 'name="_save"' not in content


def test_posting_changed_amounts_changes_nothing(merchant_client, superuser_client):
    payment = _payment()
    before = _state(payment)

    for client in (merchant_client, superuser_client):
        response = client.post(
            f"{PAYMENTS}{payment.pk}/change/",
            {
                "amount": "0.01",
                "amount_received": "1000.00",
                "amount_refunded": "0",
                "status": "failed",
                "_save": "Save",
            },
        )
        assert response.status_code == 403

    assert _state(payment) == before


def test_nothing_left_to_refund_hides_the_refund_button(merchant_client):
    refunded = _payment(refunded="54.95")
    unpaid = _payment(status=P.PENDING)

    for payment in (refunded, unpaid):
        page = merchant_client.get(f"{PAYMENTS}{payment.pk}/change/")
        assert page.status_code == 200
        assert "Refund…" not in page.content.decode()


def test_payment_page_queries_do_not_grow_with_refunds_or_events(superuser_client, merchant):
    small = _payment(reference="pi_small")
    large = _payment(reference="pi_large")
    for n in range(5):
        Refund.objects.create(payment=large, amount=Decimal("1.00"), reason=f"R{n}")
        _event(event_id=f"evt_{n}", payment_reference="pi_large")
    superuser_client.get(f"{PAYMENTS}{small.pk}/change/")

    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get(f"{PAYMENTS}{small.pk}/change/").status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert superuser_client.get(f"{PAYMENTS}{large.pk}/change/").status_code == 200

    assert len(many) == len(few), [query["sql"] for query in many]


# --- Provider events -----------------------------------------------------------------------


def test_event_page_shows_the_payload_pretty_printed_and_escaped(viewer_client):
    event = _event(
        event_id="evt_xss",
        payload={"data": {"object": {"description": "<script>alert('x')</script>", "n": 1}}},
        outcome=O.ERROR,
        message="<b>boom</b>",
    )

    response = viewer_client.get(f"{EVENTS}{event.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "<script>alert" not in content
    assert "<b>boom</b>" not in content
    assert "&lt;b&gt;boom&lt;/b&gt;" in content
    assert (
        '<pre class="webhook-payload">{\n'
        "  &quot;data&quot;: {\n"
        "    &quot;object&quot;: {\n"
        "      &quot;description&quot;: &quot;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
        "&quot;,\n"
        "      &quot;n&quot;: 1\n"
        "    }\n"
        "  }\n"
        "}</pre>"
    ) in content
    assert 'name="payload"' not in content
    assert 'name="_save"' not in content


def test_event_list_filters_by_provider_type_and_outcome_and_finds_an_event_id(
    payments_admin_client,
):
    wanted = _event(event_id="evt_wanted", provider="stripe", event_type="charge.refunded")
    _event(event_id="evt_other", outcome=O.ERROR)

    by_provider = payments_admin_client.get(EVENTS, {"provider__exact": "stripe"})
    by_type = payments_admin_client.get(EVENTS, {"event_type__exact": "charge.refunded"})
    by_outcome = payments_admin_client.get(EVENTS, {"outcome__exact": "applied"})
    by_id = payments_admin_client.get(EVENTS, {"q": "evt_wanted"})

    for response in (by_provider, by_type, by_outcome, by_id):
        assert response.status_code == 200
        assert [e.pk for e in response.context["cl"].result_list] == [wanted.pk]


def test_event_changes_posted_change_nothing(superuser_client):
    event = _event(outcome=O.ERROR, message="Timed out")

    response = superuser_client.post(
        f"{EVENTS}{event.pk}/change/", {"outcome": "applied", "payload": "{}", "_save": "Save"}
    )

    assert response.status_code == 403
    event.refresh_from_db()
    assert (event.outcome, event.payload, event.message) == (O.ERROR, {"id": "evt_1"}, "Timed out")


# --- Refunds list --------------------------------------------------------------------------


def test_refund_list_shows_order_amount_status_and_who_and_edits_nothing(merchant_client, merchant):
    payment = _payment()
    refund = Refund.objects.create(
        payment=payment,
        amount=Decimal("12.50"),
        reason="Late delivery",
        status=Refund.Status.SUCCEEDED,
        provider_reference="re_42",
        created_by=merchant,
    )

    listing = merchant_client.get(REFUNDS)
    page = merchant_client.get(f"{REFUNDS}{refund.pk}/change/")
    post = merchant_client.post(
        f"{REFUNDS}{refund.pk}/change/", {"amount": "999", "status": "failed", "_save": "Save"}
    )

    assert listing.status_code == 200
    content = listing.content.decode()
    assert f">{payment.order.number}</a>" in content
    assert '<td class="field-amount_display">€12.50</td>' in content
    assert "Late delivery" in content
    assert listing.context["action_form"] is None
    assert page.status_code == 200
    assert 'name="amount"' not in page.content.decode()
    assert post.status_code == 403
    refund.refresh_from_db()
    assert (refund.amount, refund.status) == (Decimal("12.50"), Refund.Status.SUCCEEDED)


# --- Refunding -----------------------------------------------------------------------------


def test_refund_first_asks_for_amount_and_reason_and_changes_nothing(merchant_client):
    payment = _payment(refunded="4.95")
    before = _state(payment)

    response = _act(merchant_client, "refund", payment)

    assert response.status_code == 200
    assert response.templates[0].name == "admin/payments/payment/refund.html"
    content = _html(response)
    assert f"<td>{payment.order.number}</td>" in content
    assert "<td>€54.95</td><td>€4.95</td><td>€50.00</td>" in content  # received, refunded, left
    assert f'name="amount-{payment.pk}" value="50.00"' in content  # the rest, by default
    assert 'name="reason"' in content
    assert f'<input type="hidden" name="{ACTION_CHECKBOX_NAME}" value="{payment.pk}">' in content
    assert _state(payment) == before


def test_a_partial_refund_goes_through_the_provider_and_records_who_and_why(
    merchant_client, merchant
):
    payment = _payment()
    order_events = payment.order.events.count()

    response = _apply(
        merchant_client,
        "refund",
        payment,
        reason="One boot was damaged",
        **{f"amount-{payment.pk}": "20.00"},
    )

    assert response.status_code == 302
    assert response["Location"] == PAYMENTS
    assert _messages(response) == [
        (
            "success",
            f"Refunded €20.00 of {payment.order.number} (test {payment.provider_reference}).",
        )
    ]
    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.reason, refund.status, refund.created_by) == (
        Decimal("20.00"),
        "One boot was damaged",
        Refund.Status.SUCCEEDED,
        merchant,
    )
    assert refund.provider_reference.startswith("test_re_")
    payment.refresh_from_db()
    assert (payment.amount_received, payment.amount_refunded) == (Decimal("54.95"), Decimal("20"))
    order = Order.objects.get(pk=payment.order_id)
    assert order.status == Order.Status.PARTIALLY_REFUNDED
    assert order.events.count() == order_events + 1
    event = order.events.order_by("-created_at", "-id").first()
    assert (event.to_status, event.message, event.actor) == (
        Order.Status.PARTIALLY_REFUNDED,
        "Refunded €20.00: One boot was damaged",
        merchant,
    )


def test_refunding_more_than_is_left_shows_the_reason_and_writes_nothing(merchant_client):
    payment = _payment(refunded="50.00")
    before = _state(payment)

    response = _apply(
        merchant_client, "refund", payment, reason="Goodwill", **{f"amount-{payment.pk}": "5.00"}
    )

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "error",
            f"Not refunded €5.00 of {payment.order.number} (test {payment.provider_reference}): "
            "Cannot refund €5.00: that is more than was paid and not yet refunded (€4.95).",
        )
    ]
    assert _state(payment) == before
    assert Refund.objects.count() == 0


@pytest.mark.parametrize(
    ("amount", "reason", "error"),
    [
        ("10.00", "", "Give the reason for the refund."),
        ("0", "Damaged", "Give an amount above zero."),
        ("-5", "Damaged", "Give an amount above zero."),
        ("ten", "Damaged", "Enter a number."),
        ("1.001", "Damaged", "Ensure that there are no more than 2 decimal places."),
    ],
)
def test_refund_needs_a_reason_and_an_amount_above_zero(merchant_client, amount, reason, error):
    payment = _payment()
    before = _state(payment)

    response = _apply(
        merchant_client, "refund", payment, reason=reason, **{f"amount-{payment.pk}": amount}
    )

    assert response.status_code == 200
    assert error in response.content.decode()
    assert _messages(response) == []
    assert _state(payment) == before


def test_a_refund_the_provider_refuses_is_reported_and_kept_as_failed(merchant_client, monkeypatch):
    from payments.exceptions import ProviderError
    from payments.providers.test import TestProvider

    def refuse(self, **kwargs):
        raise ProviderError("charge_already_refunded")

    monkeypatch.setattr(TestProvider, "refund", refuse)
    payment = _payment()

    response = _apply(
        merchant_client, "refund", payment, reason="Damaged", **{f"amount-{payment.pk}": "10.00"}
    )

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "error",
            f"Not refunded €10.00 of {payment.order.number} (test {payment.provider_reference}): "
            "The payment provider refused the refund: charge_already_refunded",
        )
    ]
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("0")
    assert list(Refund.objects.values_list("status", "error")) == [
        (Refund.Status.FAILED, "charge_already_refunded")
    ]


def test_refunding_several_payments_takes_an_amount_for_each(merchant_client):
    first = _payment()
    second = _payment(order=_order(price="10.00"))
    already = _payment(refunded="54.95")

    response = _apply(
        merchant_client,
        "refund",
        first,
        second,
        already,
        reason="Recall",
        **{f"amount-{first.pk}": "54.95", f"amount-{second.pk}": "60.00"},
    )

    assert response.status_code == 302
    name = "{p.order.number} (test {p.provider_reference})"
    assert _messages(response) == [
        (
            "warning",
            f"Skipped 1 payment with nothing left to refund: {name.format(p=already)}.",
        ),
        ("success", f"Refunded €54.95 of {name.format(p=first)}."),
        (
            "error",
            f"Not refunded €60.00 of {name.format(p=second)}: Cannot refund €60.00: that is more "
            "than was paid and not yet refunded (€24.95).",
        ),
    ]
    assert Order.objects.get(pk=first.order_id).status == Order.Status.REFUNDED
    assert Order.objects.get(pk=second.order_id).status == Order.Status.PAID
    assert list(Refund.objects.values_list("payment_id", "amount")) == [
        (first.pk, Decimal("54.95"))
    ]


def test_refunding_only_payments_with_nothing_left_is_refused(merchant_client):
    refunded = _payment(refunded="54.95")
    failed = _payment(status=P.FAILED)

    response = _act(merchant_client, "refund", refunded, failed)

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "error",
            "Nothing to refund: none of the selected payments has received money that is not "
            "refunded yet.",
        )
    ]
    assert Refund.objects.count() == 0


def test_refund_from_the_payment_page_asks_then_refunds_and_returns_there(merchant_client):
    payment = _payment()
    page = f"{PAYMENTS}{payment.pk}/change/"
    refund_page = f"{PAYMENTS}{payment.pk}/refund/"

    asked = merchant_client.get(refund_page)
    done = merchant_client.post(
        refund_page, {f"amount-{payment.pk}": "54.95", "reason": "Returned", "apply": "yes"}
    )

    assert asked.status_code == 200
    content = _html(asked)
    assert f'<form method="post" action="{refund_page}" novalidate>' in content
    assert f'name="amount-{payment.pk}" value="54.95"' in content
    assert 'name="action"' not in content
    assert done.status_code == 302
    assert done["Location"] == page
    assert _messages(done) == [
        (
            "success",
            f"Refunded €54.95 of {payment.order.number} (test {payment.provider_reference}).",
        )
    ]
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.REFUNDED
    assert "Refund…" not in merchant_client.get(page).content.decode()  # nothing left


def test_the_refund_page_of_a_payment_with_nothing_left_says_so(merchant_client):
    payment = _payment(refunded="54.95")

    response = merchant_client.get(f"{PAYMENTS}{payment.pk}/refund/")

    assert response.status_code == 302
    assert response["Location"] == f"{PAYMENTS}{payment.pk}/change/"
    assert _messages(response)[0][0] == "error"


def test_the_refund_page_of_an_unknown_payment_is_not_found(merchant_client):
    assert merchant_client.get(f"{PAYMENTS}999999/refund/").status_code == 404
    assert merchant_client.get(f"{PAYMENTS}abc/refund/").status_code == 404


# --- Processing events again ---------------------------------------------------------------


def _stored_event(payment: Payment, *, event_id: str) -> WebhookEvent:
    """A verified "payment succeeded" event stored as the webhook stores it, whose task was lost."""
    from payments.providers import EventType, ProviderEvent
    from payments.services import webhook_event_store

    event = ProviderEvent(
        event_id=event_id,
        event_type=EventType.PAYMENT_SUCCEEDED,
        payload={"id": event_id, "data": {"reference": payment.provider_reference}},
        payment_reference=payment.provider_reference,
        amount=payment.amount,
        currency=payment.currency,
    )
    stored, created = webhook_event_store(provider_name="test", event=event, enqueue=False)
    assert created
    return stored


def test_processing_again_applies_events_not_applied_yet_and_leaves_the_rest(
    merchant_client, celery_eager
):
    payment = _payment(status=P.PENDING)
    lost = _stored_event(payment, event_id="evt_lost")
    done = _event(event_id="evt_done", outcome=O.APPLIED, message="Payment received.")

    response = _act(merchant_client, "process_again", lost, done, path=EVENTS)

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "warning",
            "Left 1 event alone, as only events not processed yet or failed are processed "
            "again: evt_done.",
        ),
        (
            "success",
            "Handed 1 event to a worker to process again: evt_lost. The outcome shows here once "
            "it is processed.",
        ),
    ]
    lost.refresh_from_db()
    assert (lost.outcome, lost.attempts) == (O.APPLIED, 1)
    assert lost.processed_at is not None
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PAID
    done.refresh_from_db()
    assert (done.outcome, done.message, done.attempts) == (O.APPLIED, "Payment received.", 0)


def test_processing_again_with_the_broker_down_is_reported_and_changes_nothing(
    merchant_client, monkeypatch
):
    from django.db import OperationalError

    class BrokerDown:
        def delay(self, *args, **kwargs):
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("payments.admin.webhook_event_process", BrokerDown())
    payment = _payment(status=P.PENDING)
    lost = _stored_event(payment, event_id="evt_lost")

    response = _act(merchant_client, "process_again", lost, path=EVENTS)

    assert response.status_code == 302
    assert _messages(response) == [
        (
            "error",
            "evt_lost was not processed again: Error 111 connecting to 127.0.0.1:6379. "
            "Connection refused.",
        )
    ]
    lost.refresh_from_db()
    assert (lost.outcome, lost.processed_at) == (O.PENDING, None)
    assert Order.objects.get(pk=payment.order_id).status == Order.Status.PENDING_PAYMENT


def test_staff_who_may_only_view_events_cannot_process_them_again(viewer_client, celery_eager):
    payment = _payment(status=P.PENDING)
    lost = _stored_event(payment, event_id="evt_lost")

    response = _act(viewer_client, "process_again", lost, path=EVENTS)

    assert response.status_code == 200  # the list again: no action exists for this user
    lost.refresh_from_db()
    assert (lost.outcome, lost.processed_at) == (O.PENDING, None)


def test_the_order_page_in_the_back_office_links_to_the_orders_payments(admin_client):
    payment = PaymentFactory()
    order = payment.order

    html = admin_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    listing = admin_client.get(f"/admin/payments/payment/?q={order.number}").content.decode()

    assert f'href="/admin/payments/payment/?q={order.number}"' in html
    assert f"/admin/payments/payment/{payment.pk}/change/" in listing
