"""Celery tasks of the orders app: thin, take ids, safe to run twice."""

from celery import shared_task

from orders.services.emails import MAX_ATTEMPTS, outbox_send


# Transport failures (SMTP errors are OSErrors) are retried after 1, 2, 4, ... minutes (with
# jitter, at most 10 minutes apart: well below the broker's visibility timeout), each retry one of
# the record's MAX_ATTEMPTS. Other errors (a template bug) are left to the cron sweep.
@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=60,
             retry_backoff_max=600, max_retries=MAX_ATTEMPTS - 1)  # fmt: skip
def outbox_email_send(outbox_id: int) -> bool:
    """Send one recorded email (does nothing if it was sent already)."""
    return outbox_send(outbox_id=outbox_id)
