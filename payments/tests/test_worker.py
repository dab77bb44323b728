"""The webhook pipeline with a real Celery worker: the request stores the event and enqueues its
task on Redis after the commit; a worker (in a thread of this process) picks it up and marks the
order paid. Needs PostgreSQL (the worker's own connection must see committed rows) and Redis."""

import os
import time

import pytest
from celery.signals import task_postrun
from django.db import connection

from orders.models import Order, OutboxEmail
from payments.models import WebhookEvent
from payments.providers import EventType
from payments.tests.factories import PaymentFactory, signed_event

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (set REDIS_URL)"),
]

WAIT_SECONDS = 10


@pytest.fixture
def worker(settings):
    """Start a worker consuming the shop's broker (Redis) in a thread; stop it afterwards."""
    from celery.contrib.testing.worker import start_worker

    from payments.tasks import webhook_event_process

    app = webhook_event_process.app  # the shop's Celery app (shop.celery.app)
    saved = {
        name: getattr(app.conf, name) for name in ("task_always_eager", "worker_hijack_root_logger")
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.worker_hijack_root_logger = False  # leave the test's logging alone
    app.control.purge()  # tasks other tests enqueued with no worker running

    def close_connection(**kwargs):
        # The worker thread's own connection: closed after each task so that none is left open
        # on the test database when it is dropped.
        connection.close()

    task_postrun.connect(close_connection, weak=False)
    try:
        with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=20):
            yield app
    finally:
        task_postrun.disconnect(close_connection)
        for name, value in saved.items():
            setattr(app.conf, name, value)


def _wait_for(condition) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_real_worker_processes_a_signed_webhook_and_marks_the_order_paid(
    client, test_provider, worker
):
    payment = PaymentFactory()
    body, headers = signed_event(payment, EventType.PAYMENT_SUCCEEDED)

    response = client.post(
        "/payments/webhooks/test/", data=body, content_type="application/json", headers=headers
    )

    assert response.status_code == 200
    assert _wait_for(lambda: Order.objects.get(pk=payment.order_id).status == Order.Status.PAID), (
        "the worker did not mark the order paid in time"
    )
    event = WebhookEvent.objects.get()
    assert (event.outcome, event.attempts) == ("applied", 1)
    assert _wait_for(
        lambda: OutboxEmail.objects.filter(
            order=payment.order, kind="order_paid", status="sent"
        ).exists()
    ), "the worker did not send the 'order paid' email in time"
    assert OutboxEmail.objects.filter(order=payment.order, kind="order_paid").count() == 1
