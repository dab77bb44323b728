"""Clearing a payment's "needs attention" flag: who, when, why; reconciliation stops listing it."""

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from payments import services
from payments.exceptions import PaymentError
from payments.tests.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def test_resolving_records_who_when_and_why_and_clears_the_flag():
    payment = PaymentFactory(needs_attention=True, attention_reason="Amount mismatch.")
    merchant = UserFactory(is_staff=True)
    before = timezone.now()

    services.payment_attention_resolve(
        payment_id=payment.pk, note="  Refunded by hand\n at the provider. ", actor=merchant
    )

    payment.refresh_from_db()
    assert payment.needs_attention is False
    assert payment.attention_reason == "Amount mismatch."
    assert payment.attention_resolved_by == merchant
    assert payment.attention_resolved_at >= before
    assert payment.attention_resolution == "Refunded by hand at the provider."


@pytest.mark.parametrize("note", ["", "   ", None])
def test_resolving_needs_a_note_and_changes_nothing_without_one(note):
    payment = PaymentFactory(needs_attention=True)

    with pytest.raises(PaymentError, match="Say what was done about this payment."):
        services.payment_attention_resolve(payment_id=payment.pk, note=note)

    payment.refresh_from_db()
    assert payment.needs_attention is True
    assert payment.attention_resolved_at is None


def test_resolving_a_payment_that_needs_nothing_is_refused():
    payment = PaymentFactory(needs_attention=False)

    with pytest.raises(PaymentError, match="does not need attention"):
        services.payment_attention_resolve(payment_id=payment.pk, note="ok")


def test_resolved_payments_are_no_longer_listed_by_reconciliation(test_provider):
    from datetime import timedelta

    flagged = PaymentFactory(needs_attention=True)
    other = PaymentFactory(needs_attention=True)
    services.payment_attention_resolve(payment_id=flagged.pk, note="Checked.")

    report = services.payments_reconcile(older_than=timedelta(minutes=15), dry_run=True)

    assert other.pk in report.needs_human
    assert flagged.pk not in report.needs_human


def test_admin_action_clears_the_flag(admin_client):
    payment = PaymentFactory(needs_attention=True)

    response = admin_client.post(
        "/admin/payments/payment/",
        {"action": "attention_resolve", "_selected_action": [payment.pk]},
        follow=True,
    )

    payment.refresh_from_db()
    assert response.status_code == 200
    assert payment.needs_attention is False
    assert payment.attention_resolution.startswith("Checked in the back office by ")
