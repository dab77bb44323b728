"""Celery tasks of the orders app: thin, take ids, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True, autoretry_for=(ConnectionError, TimeoutError, OSError),
             retry_backoff=True, retry_backoff_max=600, max_retries=8)  # fmt: skip
def outbox_email_send(outbox_id: int) -> bool:
    """Send one recorded email (does nothing if it was sent already)."""
    from orders.services.emails import outbox_send

    return outbox_send(outbox_id=outbox_id)
