"""Read the bench database after a run: what was ordered, paid, held, and whether it reconciles.

Run by bench/run.py as `python bench/db_report.py '<json from setup_sale.py>'` with the bench's
environment. Prints one JSON object. Reads only.
"""

import json
import sys
from datetime import datetime

import django

django.setup()

from django.db.models import Count, Max, Min, Q, Sum  # noqa: E402

from catalog import models as catalog_models  # noqa: E402
from orders.models import Order, OrderLine  # noqa: E402

PAID_STATUSES = {"paid", "fulfilled", "shipped", "delivered", "partially_refunded", "refunded"}


def _seconds_after(moment: datetime | None, t0: float) -> float | None:
    return None if moment is None else round(moment.timestamp() - t0, 3)


def main(setup: dict) -> dict:
    t0 = setup["t0"]
    variant = catalog_models.ProductVariant.objects.get(pk=setup["variant_id"])
    lines = OrderLine.objects.filter(variant_id=variant.pk)
    units_by_status = {
        row["order__status"]: {"orders": row["orders"], "units": row["units"]}
        for row in lines.values("order__status").annotate(
            orders=Count("order", distinct=True), units=Sum("quantity")
        )
    }
    live = lines.exclude(order__status="cancelled")
    units_live = live.aggregate(n=Sum("quantity"))["n"] or 0
    units_paid = sum(v["units"] for s, v in units_by_status.items() if s in PAID_STATUSES)
    orders_paid = sum(v["orders"] for s, v in units_by_status.items() if s in PAID_STATUSES)
    pending = units_by_status.get("pending_payment", {"orders": 0, "units": 0})
    times = Order.objects.filter(lines__variant_id=variant.pk).aggregate(
        first_placed=Min("placed_at"),
        last_placed_live=Max("placed_at", filter=~Q(status="cancelled")),
        last_paid=Max("paid_at"),
    )
    # Per-customer units over every non-cancelled order with the variant (guests by email).
    per_email = list(
        live.values("order__email").annotate(units=Sum("quantity")).order_by("-units")[:1]
    )
    report = {
        "initial_stock": setup["initial_stock"],
        "stock_after": variant.stock,
        "stock_received": getattr(variant, "stock_received", None),
        "orders_by_status": {s: v["orders"] for s, v in units_by_status.items()},
        "units_by_status": {s: v["units"] for s, v in units_by_status.items()},
        "orders_paid": orders_paid,
        "units_paid": units_paid,
        "orders_pending": pending["orders"],
        "units_pending": pending["units"],
        "units_in_live_orders": units_live,
        "units_oversold_vs_stock": max(0, units_live - setup["initial_stock"]),
        "max_units_one_customer": per_email[0]["units"] if per_email else 0,
        "first_order_s": _seconds_after(times["first_placed"], t0),
        "last_order_s": _seconds_after(times["last_placed_live"], t0),
        "last_payment_s": _seconds_after(times["last_paid"], t0),
        "stock_reconciles": variant.stock == setup["initial_stock"] - units_live,
    }
    if getattr(variant, "stock_received", None) is not None:
        report["stock_received_reconciles"] = variant.stock == variant.stock_received - units_live
    sale = setup.get("sale")
    if sale:
        item = catalog_models.SaleItem.objects.get(pk=sale["item_id"])
        holds = catalog_models.SaleHold.objects.filter(sale_item_id=item.pk)
        hold_units = {
            row["status"]: row["units"]
            for row in holds.values("status").annotate(units=Sum("quantity"))
        }
        active = holds.filter(status__in=["held", "sold"])
        units_active_holds = active.aggregate(n=Sum("quantity"))["n"] or 0
        sale_lines_live = live.filter(sale_hold__sale_item_id=item.pk)
        units_sale_orders = sale_lines_live.aggregate(n=Sum("quantity"))["n"] or 0
        # Sold out = the last unit allocated: the newest hold still counting towards `taken`.
        last_hold = active.aggregate(last=Max("created_at"))["last"]
        over_limit = 0
        if sale["per_customer_limit"]:
            over_limit = catalog_models.SaleCustomer.objects.filter(
                sale_id=sale["id"], units__gt=sale["per_customer_limit"]
            ).count()
        report["sale"] = {
            "allotment": item.allotment,
            "taken": item.taken,
            "holds_units_by_status": hold_units,
            "units_in_active_holds": units_active_holds,
            "units_in_live_sale_orders": units_sale_orders,
            "units_oversold_vs_allotment": max(0, units_sale_orders - item.allotment),
            "customers_over_limit": over_limit,
            "reconciles": item.taken == units_active_holds == units_sale_orders,
            "sold_out": item.taken >= item.allotment,
            "sold_out_s": (_seconds_after(last_hold, t0) if item.taken >= item.allotment else None),
            "lines_at_sale_price": sale_lines_live.count(),
        }
    else:
        sold_out = variant.stock == 0
        report["sold_out_s"] = _seconds_after(times["last_placed_live"], t0) if sold_out else None
    return report


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
