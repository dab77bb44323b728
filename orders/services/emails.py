"""The email outbox: record an email in the same transaction as the change it reports, send it
after commit, and sweep up any that no task sent.

Invariants owned here:
- An email is recorded at most once per order and kind (and per cart and kind): the database's
  unique constraints say so, and `outbox_record` treats a second record as already done.
- Nothing is sent for a change that rolls back: the send is scheduled with
  `transaction.on_commit`, and the record itself rolls back with the change.
- Nothing is lost when the broker is down: the record is committed with the change, and
  `outbox_sweep` (cron) sends whatever is still pending after a few minutes.
- A record is sent at most once: every sender (task or sweep) locks the row, re-checks that it is
  still pending, sends, and marks it sent before the lock is released. The one gap left is a
  process killed after the mail server accepted the message and before the commit; the copy sent
  again then carries the same Message-ID.
- A record that keeps failing is retried (by the task's backoff and by the sweep) and given up
  as failed after MAX_ATTEMPTS attempts, with the last error kept on the row.
- A cart gets at most one reminder: the unique constraint again, plus `reminder_sent_at` set under
  the cart's lock in the same transaction as the record.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum

from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import selectors
from orders.emails import EmailNotNeeded, email_message_build
from orders.models import Cart, Order, OutboxEmail

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# A sweep stops after this many transport failures in a row: the mail server is down, and every
# further record would cost a full connection timeout. The next run tries again.
SWEEP_STOP_AFTER_FAILURES = 3
LAST_ERROR_MAX_LENGTH = 2000


class OutboxSendError(OSError):
    """The mailer reported the message as not sent (an OSError, so the task retries it)."""


@dataclass
class SweepResult:
    pending: int = 0
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)
    not_needed: list[int] = field(default_factory=list)
    skipped: int = 0
    stopped_early: bool = False
    dry_run: bool = False


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
        # Runs after the commit: the change is saved and must not turn into an error page.
        logger.warning(
            "Could not enqueue outbox email %s; the sweep will send it.", outbox_id, exc_info=True
        )


# --- Sending -------------------------------------------------------------------------------------


class _Outcome(Enum):
    SENT = "sent"
    SKIPPED = "skipped"  # not pending any more, or locked by another sender
    FAILED = "failed"  # still pending: will be tried again
    GIVEN_UP = "given_up"  # marked failed after MAX_ATTEMPTS
    NOT_NEEDED = "not_needed"  # marked failed without sending: it no longer made sense


def outbox_send(*, outbox_id: int) -> bool:
    """Send one recorded email unless it was sent already; return whether this call sent it.

    Waits for another sender holding the row, then finds it sent and returns False. A failed
    send is recorded on the row (attempts, last error, failed after MAX_ATTEMPTS) and re-raised,
    so the task retries it with backoff.
    """
    outcome, error = _outbox_attempt(outbox_id=outbox_id, skip_locked=False)
    if error is not None:
        raise error
    return outcome is _Outcome.SENT


def outbox_sweep(*, older_than: timedelta, limit: int, dry_run: bool = False) -> SweepResult:
    """Send pending emails recorded more than `older_than` ago (those no task sent).

    The age keeps the sweep off the records whose task is about to run. Records are taken one by
    one under a skip-locked row lock, so two sweeps, or a sweep and a worker, never send one twice
    and never wait on each other.
    """
    cutoff = timezone.now() - older_than
    candidates = list(
        OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING, created_at__lt=cutoff)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    result = SweepResult(pending=len(candidates), dry_run=dry_run)
    if dry_run:
        return result
    failures_in_a_row = 0
    for outbox_id in candidates:
        outcome, error = _outbox_attempt(outbox_id=outbox_id, skip_locked=True)
        if outcome is _Outcome.SENT:
            result.sent.append(outbox_id)
        elif outcome is _Outcome.SKIPPED:
            result.skipped += 1
        elif outcome is _Outcome.GIVEN_UP:
            result.given_up.append(outbox_id)
        elif outcome is _Outcome.NOT_NEEDED:
            result.not_needed.append(outbox_id)
        else:
            result.failed.append(outbox_id)
        if isinstance(error, OSError):
            failures_in_a_row += 1
            if failures_in_a_row >= SWEEP_STOP_AFTER_FAILURES:
                result.stopped_early = True
                break
        elif outcome is _Outcome.SENT:
            failures_in_a_row = 0
    return result


def _outbox_attempt(*, outbox_id: int, skip_locked: bool) -> tuple[_Outcome, Exception | None]:
    """Lock the record, re-check it is pending, send it, and record what happened.

    The row stays locked while the mail server is talked to: that is what keeps a second sender
    from sending the same record. Returns the outcome and the error of a failed send (committed
    on the row before it is returned, so raising it cannot roll the bookkeeping back).
    """
    with transaction.atomic():
        outbox = (
            # Lock only the record's row ("self"): its order and cart are nullable outer joins,
            # which PostgreSQL refuses to lock, and the senders agree on the record's row.
            OutboxEmail.objects.select_for_update(skip_locked=skip_locked, of=("self",))
            .select_related("order", "cart")
            .filter(pk=outbox_id)
            .first()
        )
        if outbox is None or outbox.status != OutboxEmail.Status.PENDING:
            return _Outcome.SKIPPED, None
        outbox.attempts += 1
        try:
            # A savepoint: a database error while rendering leaves this transaction usable for
            # recording the failure.
            with transaction.atomic():
                message = email_message_build(outbox)
                if mail.mailers.default.send_messages([message]) != 1:
                    raise OutboxSendError("The mailer reported the message as not sent.")
        except EmailNotNeeded as exc:
            _outbox_close(outbox, status=OutboxEmail.Status.FAILED, error=f"Not sent: {exc}")
            logger.info("Outbox email %s not sent: %s", outbox.pk, exc)
            return _Outcome.NOT_NEEDED, None
        except Exception as exc:
            given_up = outbox.attempts >= MAX_ATTEMPTS
            status = OutboxEmail.Status.FAILED if given_up else OutboxEmail.Status.PENDING
            _outbox_close(outbox, status=status, error=f"{type(exc).__name__}: {exc}")
            logger.warning(
                "Outbox email %s (%s to %s) failed, attempt %s of %s%s.",
                outbox.pk, outbox.kind, outbox.to_email, outbox.attempts, MAX_ATTEMPTS,
                ": giving up" if given_up else "", exc_info=True,
            )  # fmt: skip
            return (_Outcome.GIVEN_UP if given_up else _Outcome.FAILED), exc
        outbox.sent_at = timezone.now()
        _outbox_close(outbox, status=OutboxEmail.Status.SENT, error="")
        return _Outcome.SENT, None


def _outbox_close(outbox: OutboxEmail, *, status: str, error: str) -> None:
    outbox.status = status
    if error:
        outbox.last_error = error[:LAST_ERROR_MAX_LENGTH]
    outbox.save(update_fields=["status", "attempts", "last_error", "sent_at"])


# --- Cart reminders ------------------------------------------------------------------------------


def carts_send_reminders(*, idle_for: timedelta, dry_run: bool = False) -> list[int]:
    """Record one reminder for each open cart with an email and lines, idle for `idle_for`;
    return the ids of the carts reminded (or, with dry_run, of those that would be).

    Each cart is locked (skipping a cart someone is changing right now), re-checked, stamped and
    given its reminder record in one transaction; the email goes out after the commit. A cart
    reminded once is never reminded again, even after it changes and idles again.
    """
    cutoff = timezone.now() - idle_for
    candidates = list(
        selectors.carts_idle_with_email(cutoff=cutoff)
        .order_by("updated_at", "id")
        .values_list("pk", flat=True)
    )
    if dry_run:
        return candidates
    reminded = []
    for cart_id in candidates:
        with transaction.atomic():
            cart = Cart.objects.select_for_update(skip_locked=True).filter(pk=cart_id).first()
            if cart is None:
                continue  # locked: being changed right now, so not idle
            if not selectors.carts_idle_with_email(cutoff=cutoff).filter(pk=cart_id).exists():
                continue  # changed, checked out or reminded since the candidates were read
            cart.reminder_sent_at = timezone.now()
            cart.save(update_fields=["reminder_sent_at"])
            record = outbox_record(
                kind=OutboxEmail.Kind.CART_REMINDER, cart=cart, to_email=cart.email
            )
            if record is not None:
                reminded.append(cart_id)
    return reminded
