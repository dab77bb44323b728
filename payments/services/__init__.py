"""Writes of the payments app, one module per concern; import from here.

- payments: start a payment with a provider, refund it (also a payment for a cancelled order)
- webhooks: receive a provider's event (verify, store, enqueue) and process it
- reconcile: the cron safety net for unprocessed events and payments whose events never came
"""

from payments.services.payments import (
    payment_attention_resolve,
    payment_refund,
    payment_refund_flagged,
    payment_start,
)
from payments.services.reconcile import ReconcileReport, payments_reconcile
from payments.services.webhooks import (
    webhook_event_process,
    webhook_event_store,
    webhook_receive,
)

__all__ = [
    "payment_attention_resolve",
    "ReconcileReport",
    "payment_refund",
    "payment_refund_flagged",
    "payment_start",
    "payments_reconcile",
    "webhook_event_process",
    "webhook_event_store",
    "webhook_receive",
]
