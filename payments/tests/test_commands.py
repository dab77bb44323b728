"""The cron command reconcile_payments: one summary line, one line per payment that needs a
person (and exit status 1 then), nothing changed with --dry-run, nothing more when run again."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from django.db import connections
from django.utils import timezone

from orders.models import Order, OrderEvent
from payments.models import Payment, WebhookEvent
from payments.providers import EventType, PaymentState, ProviderEvent
from payments.providers.test import TestProvider
from payments.services import webhook_event_store
from payments.tests.factories import PaymentFactory, order_placed

pytestmark = pytest.mark.django_db

S = Order.Status


@pytest.fixture(autouse=True)
def _pipeline(test_provider, celery_eager):
    """The test provider is the one provider; tasks run in the test's process."""


def run(*args: str) -> str:
    out = StringIO()
    call_command("reconcile_payments", *args, stdout=out)
    return out.getvalue()


def run_failing(*args: str) -> tuple[str, str]:
    """Run the command expecting it to fail; return its output and the error's message."""
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("reconcile_payments", *args, stdout=out)
    return out.getvalue(), str(error.value)


def aged(payment: Payment, *, minutes: int = 60) -> Payment:
    Payment.objects.filter(pk=payment.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )
    payment.refresh_from_db()
    return payment


def lost_event(payment: Payment, *, minutes: int, event_id: str = "evt_lost") -> WebhookEvent:
    """A verified "payment succeeded" event stored `minutes` ago whose task never ran."""
    event = ProviderEvent(
        event_id=event_id,
        event_type=EventType.PAYMENT_SUCCEEDED,
        payload={"id": event_id, "data": {"reference": payment.provider_reference}},
        payment_reference=payment.provider_reference,
        amount=payment.amount,
        currency=payment.currency,
    )
    stored, _ = webhook_event_store(provider_name="test", event=event, enqueue=False)
    WebhookEvent.objects.filter(pk=stored.pk).update(
        received_at=timezone.now() - timedelta(minutes=minutes)
    )
    return stored


def provider_says(monkeypatch, states: dict[int, PaymentState]) -> None:
    """Make the test provider report these states, by payment pk (its HTTP, were it real)."""

    def fetch(self, *, payment):
        return states.get(
            payment.pk, PaymentState(payment.status, payment.amount_received, Decimal("0"))
        )

    monkeypatch.setattr(TestProvider, "fetch", fetch)


def flagged(reason: str = "Received €1.00 but order NW-TEST is for €14.95: not marked paid."):
    return PaymentFactory(
        status=Payment.Status.SUCCEEDED,
        amount_received=Decimal("1.00"),
        needs_attention=True,
        attention_reason=reason,
    )


def snapshot() -> tuple:
    return (
        sorted(Payment.objects.values_list("pk", "status", "amount_refunded", "needs_attention")),
        sorted(WebhookEvent.objects.values_list("pk", "outcome", "processed_at", "attempts")),
        sorted(Order.objects.values_list("pk", "status")),
        OrderEvent.objects.count(),
    )


# --- What it fixes --------------------------------------------------------------------------


def test_an_event_whose_task_was_lost_is_processed_and_the_order_paid():
    payment = PaymentFactory()
    event = lost_event(payment, minutes=20)

    output = run()

    assert output == (
        "Requeued 1 unprocessed provider event(s) and updated 0 pending payment(s) from their "
        "provider (older than 15 minute(s)); 0 payment(s) need a person.\n"
    )
    event.refresh_from_db()
    assert (event.outcome, event.attempts) == (WebhookEvent.Outcome.APPLIED, 1)
    assert Order.objects.get(pk=payment.order_id).status == S.PAID


def test_a_payment_whose_event_never_came_is_updated_from_its_provider(monkeypatch):
    payment = aged(PaymentFactory())
    provider_says(
        monkeypatch, {payment.pk: PaymentState("succeeded", payment.amount, Decimal("0"))}
    )

    output = run()

    assert output == (
        "Requeued 0 unprocessed provider event(s) and updated 1 pending payment(s) from their "
        f"provider: {payment.order.number} (older than 15 minute(s)); 0 payment(s) need a "
        "person.\n"
    )
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    assert Order.objects.get(pk=payment.order_id).status == S.PAID


def test_young_events_and_payments_are_left_to_their_workers_and_customers(monkeypatch):
    young = PaymentFactory()
    event = lost_event(young, minutes=10)
    provider_says(monkeypatch, {young.pk: PaymentState("succeeded", young.amount, Decimal("0"))})
    before = snapshot()

    output = run("--older-than-minutes", "15")

    assert output.startswith("Requeued 0 unprocessed provider event(s) and updated 0 pending")
    assert snapshot() == before
    event.refresh_from_db()
    assert event.processed_at is None


def test_a_second_run_does_nothing_more(monkeypatch):
    by_event = PaymentFactory()
    lost_event(by_event, minutes=30)
    by_provider = aged(PaymentFactory())
    provider_says(
        monkeypatch,
        {by_provider.pk: PaymentState("succeeded", by_provider.amount, Decimal("0"))},
    )
    run()
    after_first = snapshot()

    output = run()

    assert output == (
        "Requeued 0 unprocessed provider event(s) and updated 0 pending payment(s) from their "
        "provider (older than 15 minute(s)); 0 payment(s) need a person.\n"
    )
    assert snapshot() == after_first
    assert OrderEvent.objects.filter(to_status=S.PAID).count() == 2


# --- What needs a person --------------------------------------------------------------------


def test_payments_that_need_a_person_get_a_line_each_and_the_command_fails():
    first = flagged()
    second = flagged("Paid after order NW-X was cancelled: refunding in full.")
    PaymentFactory()  # pending and fine

    output, error = run_failing()

    lines = output.splitlines()
    assert lines[0] == (
        "Requeued 0 unprocessed provider event(s) and updated 0 pending payment(s) from their "
        "provider (older than 15 minute(s)); 2 payment(s) need a person."
    )
    assert lines[1:] == [
        f"Needs a person: order {p.order.number}, payment {p.pk} (test {p.provider_reference}, "
        f"Succeeded, received €1.00, refunded €0.00): {p.attention_reason}"
        for p in (first, second)
    ]
    assert error == (
        "2 payment(s) need a person: see the lines above, or the payments filtered by "
        "“needs attention” in the back office."
    )


def test_the_exit_status_is_1_when_a_payment_needs_a_person_and_0_otherwise(capsys, monkeypatch):
    # As cron runs it (manage.py), minus closing the connection the test's transaction is on.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    execute_from_command_line(["manage.py", "reconcile_payments"])  # returns: exit status 0
    flagged()
    with pytest.raises(SystemExit) as failing:
        execute_from_command_line(["manage.py", "reconcile_payments"])

    assert failing.value.code == 1
    assert "CommandError: 1 payment(s) need a person" in capsys.readouterr().err


def test_a_refund_left_unsettled_is_flagged_for_a_person():
    payment = PaymentFactory(status=Payment.Status.SUCCEEDED, amount_received=order_placed().total)
    refund = payment.refunds.create(amount=Decimal("5.00"), reason="Damaged")
    payment.refunds.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(hours=1))

    output, _ = run_failing()

    assert output.splitlines()[1].endswith(
        f"Refund {refund.pk} is still pending: check it with the provider."
    )
    payment.refresh_from_db()
    assert payment.needs_attention is True


# --- Dry run and options --------------------------------------------------------------------


def test_a_dry_run_reports_and_changes_nothing(monkeypatch):
    by_event = PaymentFactory()
    lost_event(by_event, minutes=30)
    by_provider = aged(PaymentFactory())
    provider_says(
        monkeypatch,
        {by_provider.pk: PaymentState("succeeded", by_provider.amount, Decimal("0"))},
    )
    problem = flagged()
    before = snapshot()

    output, error = run_failing("--dry-run")

    assert output.splitlines() == [
        "Dry run, nothing changed. Would requeue 1 unprocessed provider event(s) and update 1 "
        f"pending payment(s) from their provider: {by_provider.order.number} (older than 15 "
        "minute(s)); 1 payment(s) need a person.",
        f"Needs a person: order {problem.order.number}, payment {problem.pk} (test "
        f"{problem.provider_reference}, Succeeded, received €1.00, refunded €0.00): "
        f"{problem.attention_reason}",
    ]
    assert error.startswith("1 payment(s) need a person")
    assert snapshot() == before


def test_a_dry_run_with_nothing_to_do_succeeds():
    assert run("--dry-run", "--older-than-minutes", "60") == (
        "Dry run, nothing changed. Would requeue 0 unprocessed provider event(s) and update 0 "
        "pending payment(s) from their provider (older than 60 minute(s)); 0 payment(s) need a "
        "person.\n"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--older-than-minutes must be at least 1, not 0."),
        ("-5", "--older-than-minutes must be at least 1, not -5."),
        ("soon", "argument --older-than-minutes: invalid int value: 'soon'"),
    ],
)
def test_a_bad_age_is_refused_and_changes_nothing(value, message):
    lost_event(PaymentFactory(), minutes=30)
    before = snapshot()

    output, error = run_failing(f"--older-than-minutes={value}")

    assert output == ""
    assert message in error
    assert snapshot() == before


def test_a_database_failure_is_reported_as_a_command_error(monkeypatch):
    from django.db import OperationalError

    def database_down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(
        "payments.management.commands.reconcile_payments.payments_reconcile", database_down
    )

    output, error = run_failing()

    assert output == ""
    assert error == "Reconciling payments failed: server closed the connection unexpectedly"
