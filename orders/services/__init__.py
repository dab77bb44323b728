"""Writes of the orders app, one module per concern; import from here.

- cart: add, change, remove, merge on sign-in, remember checkout details
- checkout: place an order (stock, voucher, amounts, one order per checkout)
- orders: the state machine and every status change, cancellation and expiry
- emails: the outbox (record after a change, send after commit, sweep, cart reminders)
"""

from orders.services.cart import (
    cart_add,
    cart_checkout_save,
    cart_create,
    cart_line_remove,
    cart_line_update,
    cart_merge,
    quantity_parse,
)
from orders.services.checkout import order_place
from orders.services.emails import outbox_record
from orders.services.orders import (
    TRANSITIONS,
    order_can_ship,
    order_cancel,
    order_cancel_by_customer,
    order_mark_delivered,
    order_mark_fulfilled,
    order_mark_paid,
    order_mark_refunded,
    order_mark_shipped,
    orders_expire_unpaid,
    transition_allowed,
)

__all__ = [
    "TRANSITIONS",
    "cart_add",
    "cart_checkout_save",
    "cart_create",
    "cart_line_remove",
    "cart_line_update",
    "cart_merge",
    "order_cancel",
    "order_can_ship",
    "order_cancel_by_customer",
    "order_mark_delivered",
    "order_mark_fulfilled",
    "order_mark_paid",
    "order_mark_refunded",
    "order_mark_shipped",
    "order_place",
    "orders_expire_unpaid",
    "outbox_record",
    "quantity_parse",
    "transition_allowed",
]
