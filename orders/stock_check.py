"""A read that reconciles stock, sales, holds and orders (for `check_stock`).

Every unit is accounted for in exactly one place, so these must hold at any moment:

- variant:   stock == stock_received - units in order lines whose order is not cancelled
- sale item: taken == units of its holds that are held or sold
             == units in its order lines whose order is not cancelled
- hold:      held <=> its order awaits payment; sold <=> its order was paid (whatever came
             after); released <=> its order was cancelled; same quantity as its order line;
             no hold without an order line
- customer:  SaleCustomer.units == units of that customer's held or sold holds in the sale

All checks read one snapshot (a REPEATABLE READ, read-only transaction on PostgreSQL), so
checkouts running meanwhile never show up as drift. Holds past their time that are still held
are not drift: they are reported as due for release.
"""

from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import ProductVariant, SaleCustomer, SaleHold, SaleItem
from orders.models import Order, OrderLine

S = Order.Status
LIVE_HOLD = [SaleHold.Status.HELD, SaleHold.Status.SOLD]


@dataclass
class StockReport:
    variants_checked: int = 0
    sale_items_checked: int = 0
    holds_open: int = 0
    holds_due_for_release: int = 0
    units_held: int = 0
    units_sold_in_sales: int = 0
    drift: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift


def _units(queryset, group: str) -> Subquery:
    return Coalesce(
        Subquery(queryset.values(group).annotate(units=Sum("quantity")).values("units")), 0
    )


def stock_check(*, now=None) -> StockReport:
    """Reconcile every variant, sale item, hold and per-customer counter; return the report."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _check(now or timezone.now())


def _check(now) -> StockReport:
    report = StockReport()
    not_cancelled = ~Q(order__status=S.CANCELLED)

    ordered = _units(OrderLine.objects.filter(not_cancelled, variant=OuterRef("pk")), "variant")
    variants = ProductVariant.objects.annotate(ordered=ordered)
    report.variants_checked = ProductVariant.objects.count()
    for pk, sku, stock, received, units in (
        variants.exclude(stock=F("stock_received") - F("ordered"))
        .order_by("pk")
        .values_list("pk", "sku", "stock", "stock_received", "ordered")
    ):
        report.drift.append(
            f"variant {pk} ({sku}): stock {stock}, but received {received} - ordered {units} "
            f"= {received - units}"
        )

    items = SaleItem.objects.annotate(
        in_holds=_units(
            SaleHold.objects.filter(sale_item=OuterRef("pk"), status__in=LIVE_HOLD), "sale_item"
        ),
        ordered=_units(
            OrderLine.objects.filter(not_cancelled, sale_hold__sale_item=OuterRef("pk")),
            "sale_hold__sale_item",
        ),
    )
    report.sale_items_checked = SaleItem.objects.count()
    for pk, sku, sale_id, allotment, taken, in_holds, units in (
        items.filter(~Q(taken=F("in_holds")) | ~Q(taken=F("ordered")) | Q(taken__gt=F("allotment")))
        .order_by("pk")
        .values_list("pk", "variant__sku", "sale_id", "allotment", "taken", "in_holds", "ordered")
    ):  # fmt: skip
        report.drift.append(
            f"sale item {pk} (sale {sale_id}, {sku}): taken {taken} of {allotment}, but holds "
            f"have {in_holds} and orders {units}"
        )

    expected = (
        (Q(order__status=S.PENDING_PAYMENT) & ~Q(sale_hold__status=SaleHold.Status.HELD))
        | (Q(order__status=S.CANCELLED) & ~Q(sale_hold__status=SaleHold.Status.RELEASED))
        | (
            ~Q(order__status__in=[S.PENDING_PAYMENT, S.CANCELLED])
            & ~Q(sale_hold__status=SaleHold.Status.SOLD)
        )
        | ~Q(sale_hold__quantity=F("quantity"))
    )
    for number, status, hold_id, hold_status, hold_units, units in (
        OrderLine.objects.filter(sale_hold__isnull=False)
        .filter(expected)
        .order_by("pk")
        .values_list(
            "order__number",
            "order__status",
            "sale_hold_id",
            "sale_hold__status",
            "sale_hold__quantity",
            "quantity",
        )  # fmt: skip
    ):
        report.drift.append(
            f"hold {hold_id} ({hold_status}, {hold_units} unit(s)) of order {number} "
            f"({status}, {units} unit(s)) does not match it"
        )
    for hold_id, reference, hold_status in (
        SaleHold.objects.filter(order_line__isnull=True)
        .order_by("pk")
        .values_list("pk", "reference", "status")
    ):
        report.drift.append(f"hold {hold_id} ({hold_status}, {reference}) has no order line")

    customers = SaleCustomer.objects.annotate(
        expected=_units(
            SaleHold.objects.filter(
                sale_item__sale=OuterRef("sale"),
                customer_key=OuterRef("customer_key"),
                status__in=LIVE_HOLD,
            ),
            "customer_key",
        )
    )
    for sale_id, key, units, expected_units in (
        customers.exclude(units=F("expected"))
        .order_by("pk")
        .values_list("sale_id", "customer_key", "units", "expected")
    ):
        report.drift.append(
            f"sale {sale_id} customer {key}: counted {units} unit(s), holds have {expected_units}"
        )

    held = SaleHold.objects.filter(status=SaleHold.Status.HELD)
    report.holds_open = held.count()
    report.holds_due_for_release = held.filter(expires_at__lte=now).count()
    report.units_held = held.aggregate(units=Coalesce(Sum("quantity"), 0))["units"]
    report.units_sold_in_sales = SaleHold.objects.filter(status=SaleHold.Status.SOLD).aggregate(
        units=Coalesce(Sum("quantity"), 0)
    )["units"]
    return report
