"""The email outbox: record an email in the same transaction as the change it reports, send it
after commit, and sweep up any that no task sent.

Invariants owned here:
- An email is recorded at most once per order and kind (and per cart and kind): the database's
  unique constraints say so, and `outbox_record` treats a second record as already done.
- Nothing is sent for a change that rolls back: the send is scheduled with
  `transaction.on_commit`, and the record itself rolls back with the change.
- A record is sent at most once: the sender locks the row and re-checks that it is still pending.
"""

from django.db import IntegrityError, transaction

from orders.models import Cart, Order, OutboxEmail


def outbox_record(
    *, kind: str, to_email: str, order: Order | None = None, cart: Cart | None = None
) -> OutboxEmail | None:
    """Record an email to send once the current transaction commits; None if already recorded."""
    try:
        with transaction.atomic():
            email = OutboxEmail.objects.create(kind=kind, order=order, cart=cart, to_email=to_email)
    except IntegrityError:
        return None
    transaction.on_commit(lambda: _enqueue(email.pk))
    return email


def _enqueue(outbox_id: int) -> None:
    """Hand the email to a worker; if the broker is down the cron sweep sends it later."""
    from orders.tasks import outbox_email_send

    try:
        outbox_email_send.delay(outbox_id)
    except Exception:
        import logging

        logging.getLogger(__name__).warning(
            "Could not enqueue outbox email %s; the sweep will send it.", outbox_id, exc_info=True
        )
