"""Flash sales in the back office: creating and checking sales, never writing `taken`, holds."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.db.models import F
from django.db.models.signals import pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Sale, SaleCustomer, SaleHold, SaleItem
from catalog.services import sale_units_take
from catalog.tests.factories import ProductVariantFactory, SaleFactory, SaleItemFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
START = (NOW + timedelta(days=1)).replace(microsecond=0)


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("owner@example.com", "pw"))
    return client


def _split(moment: datetime) -> tuple[str, str]:
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")


def _sale_form(*, items=(), initial_items=0, starts_at=START, ends_at=None, **fields) -> dict:
    """Return the POST data of the sale page, with its items inline."""
    ends_at = ends_at or starts_at + timedelta(hours=2)
    (start_date, start_time), (end_date, end_time) = _split(starts_at), _split(ends_at)
    data = {
        "name": "Summer drop",
        "starts_at_0": start_date, "starts_at_1": start_time,
        "ends_at_0": end_date, "ends_at_1": end_time,
        "per_customer_limit": "2",
        "hold_minutes": "10",
        "is_active": "on",
        "items-TOTAL_FORMS": str(len(items)),
        "items-INITIAL_FORMS": str(initial_items),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
        "_save": "Save",
        **fields,
    }  # fmt: skip
    for index, item in enumerate(items):
        data.update({f"items-{index}-{key}": value for key, value in item.items()})
    return data


def _item_row(item: SaleItem, **changes) -> dict:
    return {
        "id": str(item.pk), "sale": str(item.sale_id), "variant": str(item.variant_id),
        "sale_price": str(item.sale_price), "allotment": str(item.allotment), **changes,
    }  # fmt: skip


# --- Creating a sale ---------------------------------------------------------------------------


def test_a_merchant_creates_a_sale_with_its_items(superuser_client):
    boot = ProductVariantFactory(sku="BOOT-42", price=Decimal("40.00"))
    tee = ProductVariantFactory(sku="TEE-M", price=Decimal("20.00"))
    data = _sale_form(
        items=[
            {"variant": str(boot.pk), "sale_price": "29.00", "allotment": "8"},
            {"variant": str(tee.pk), "sale_price": "15.50", "allotment": "30"},
        ]
    )

    response = superuser_client.post("/admin/catalog/sale/add/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    sale = Sale.objects.get()
    assert (sale.name, sale.starts_at, sale.ends_at) == (
        "Summer drop", START, START + timedelta(hours=2),
    )  # fmt: skip
    assert (sale.per_customer_limit, sale.hold_minutes, sale.is_active) == (2, 10, True)
    assert sorted(sale.items.values_list("variant__sku", "sale_price", "allotment", "taken")) == [
        ("BOOT-42", Decimal("29.00"), 8, 0),
        ("TEE-M", Decimal("15.50"), 30, 0),
    ]


def test_the_variant_is_chosen_by_autocomplete(superuser_client):
    ProductVariantFactory(sku="BOOT-42")

    page = superuser_client.get("/admin/catalog/sale/add/").content.decode()
    found = superuser_client.get(
        "/admin/autocomplete/",
        {"term": "BOOT", "app_label": "catalog", "model_name": "saleitem", "field_name": "variant"},
    )

    assert 'data-model-name="productvariant"' in page or "admin-autocomplete" in page
    assert [r["text"] for r in found.json()["results"]][0].startswith("Product ")


def test_a_sale_must_end_after_it_starts(superuser_client):
    data = _sale_form(ends_at=START - timedelta(minutes=1))

    response = superuser_client.post("/admin/catalog/sale/add/", data)

    assert response.status_code == 200
    assert "The sale must end after it starts." in response.content.decode()
    assert not Sale.objects.exists()


@pytest.mark.parametrize("price", ["40.00", "45.00"])
def test_a_sale_price_must_be_lower_than_the_regular_price(superuser_client, price):
    boot = ProductVariantFactory(price=Decimal("40.00"))
    data = _sale_form(items=[{"variant": str(boot.pk), "sale_price": price, "allotment": "8"}])

    response = superuser_client.post("/admin/catalog/sale/add/", data)

    assert response.status_code == 200
    assert "A sale price must be lower than the regular price (€40.00)." in (
        response.content.decode()
    )
    assert not Sale.objects.exists()


def test_a_variant_cannot_be_in_two_sales_whose_dates_overlap(superuser_client):
    boot = ProductVariantFactory(sku="BOOT-42", price=Decimal("40.00"))
    SaleItemFactory(
        variant=boot,
        sale=SaleFactory(name="Early bird", starts_at=START - timedelta(hours=1),
                         ends_at=START + timedelta(minutes=1)),
    )  # fmt: skip
    data = _sale_form(items=[{"variant": str(boot.pk), "sale_price": "29.00", "allotment": "8"}])

    response = superuser_client.post("/admin/catalog/sale/add/", data)

    html = response.content.decode()
    assert response.status_code == 200
    assert "BOOT-42 is already in the sale “Early bird”" in html
    assert "whose dates overlap this one&#x27;s" in html
    assert Sale.objects.count() == 1


def test_a_variant_may_be_in_back_to_back_sales(superuser_client):
    boot = ProductVariantFactory(price=Decimal("40.00"))
    SaleItemFactory(
        variant=boot, sale=SaleFactory(starts_at=START - timedelta(hours=1), ends_at=START)
    )
    data = _sale_form(items=[{"variant": str(boot.pk), "sale_price": "29.00", "allotment": "8"}])

    response = superuser_client.post("/admin/catalog/sale/add/", data)

    assert response.status_code == 302
    assert SaleItem.objects.filter(variant=boot).count() == 2


def test_moving_a_sales_dates_onto_another_sale_of_its_variant_is_refused(superuser_client):
    boot = ProductVariantFactory(sku="BOOT-42", price=Decimal("40.00"))
    SaleItemFactory(
        variant=boot, sale=SaleFactory(name="Later", starts_at=START + timedelta(days=3))
    )
    item = SaleItemFactory(variant=boot, sale=SaleFactory(starts_at=START))
    data = _sale_form(
        items=[_item_row(item)], initial_items=1, starts_at=START,
        ends_at=START + timedelta(days=3, hours=1),
    )  # fmt: skip

    response = superuser_client.post(f"/admin/catalog/sale/{item.sale_id}/change/", data)

    assert response.status_code == 200
    assert "BOOT-42 is already in the sale “Later”" in response.content.decode()


# --- Never writing `taken` ---------------------------------------------------------------------


def test_the_allotment_cannot_go_below_the_units_taken(superuser_client):
    item = SaleItemFactory(allotment=10, taken=6)
    data = _sale_form(items=[_item_row(item, allotment="5")], initial_items=1)

    response = superuser_client.post(f"/admin/catalog/sale/{item.sale_id}/change/", data)

    assert response.status_code == 200
    assert "6 units are already in orders: the allotment cannot go below that." in (
        response.content.decode()
    )
    item.refresh_from_db()
    assert (item.allotment, item.taken) == (10, 6)


def test_a_stale_sale_page_does_not_undo_units_taken_meanwhile(superuser_client):
    # Given the page showed 2 units taken, and checkouts took 3 more before the merchant saved
    item = SaleItemFactory(allotment=10, taken=2, sale_price=Decimal("15.00"))
    data = _sale_form(items=[_item_row(item, sale_price="14.00", allotment="12")], initial_items=1)
    data.update({f"initial-items-0-{k}": v for k, v in _item_row(item).items() if k != "id"})
    SaleItem.objects.filter(pk=item.pk).update(taken=F("taken") + 3)

    # When the merchant saves a new price and allotment
    response = superuser_client.post(f"/admin/catalog/sale/{item.sale_id}/change/", data)

    # Then the merchant's fields change and the 5 units taken stay taken
    assert response.status_code == 302, response.content.decode()[:3000]
    item.refresh_from_db()
    assert (item.sale_price, item.allotment, item.taken) == (Decimal("14.00"), 12, 5)


def test_units_taken_while_the_admin_saves_are_never_overwritten(superuser_client):
    # Given a checkout takes 3 units after the admin read the item and before it writes it
    item = SaleItemFactory(allotment=10, taken=2, sale_price=Decimal("15.00"))
    data = _sale_form(items=[_item_row(item, sale_price="14.00", allotment="12")], initial_items=1)

    def checkout_meanwhile(sender, instance, **kwargs):
        if instance.pk == item.pk and not checkouts:
            checkouts.append(SaleItem.objects.filter(pk=item.pk).update(taken=F("taken") + 3))

    checkouts: list[int] = []

    pre_save.connect(checkout_meanwhile, sender=SaleItem)
    try:
        response = superuser_client.post(f"/admin/catalog/sale/{item.sale_id}/change/", data)
    finally:
        pre_save.disconnect(checkout_meanwhile, sender=SaleItem)

    # Then the admin wrote its price and allotment and left `taken` to the checkouts
    assert response.status_code == 302, response.content.decode()[:3000]
    item.refresh_from_db()
    assert (item.sale_price, item.allotment, item.taken) == (Decimal("14.00"), 12, 5)


def test_saving_the_sale_alone_writes_nothing_to_its_items(superuser_client):
    item = SaleItemFactory(allotment=10, taken=2)
    data = _sale_form(items=[_item_row(item)], initial_items=1, name="Renamed")

    with CaptureQueriesContext(connection) as queries:
        response = superuser_client.post(f"/admin/catalog/sale/{item.sale_id}/change/", data)

    assert response.status_code == 302
    assert not [q for q in queries if q["sql"].startswith('UPDATE "catalog_saleitem"')]
    assert Sale.objects.get().name == "Renamed"


def test_an_item_orders_hold_units_of_cannot_be_removed_or_change_variant(superuser_client):
    item = SaleItemFactory(sale=SaleFactory(starts_at=NOW - timedelta(hours=1)), allotment=10)
    sale_units_take(sale_item_id=item.pk, quantity=1, customer_key="user:1", reference="N-1")
    other = ProductVariantFactory(sku="OTHER")
    url = f"/admin/catalog/sale/{item.sale_id}/change/"
    starts = {"starts_at": item.sale.starts_at, "ends_at": item.sale.ends_at}

    removed = superuser_client.post(
        url, _sale_form(items=[_item_row(item, DELETE="on")], initial_items=1, **starts)
    )
    moved = superuser_client.post(
        url, _sale_form(items=[_item_row(item, variant=str(other.pk))], initial_items=1, **starts)
    )

    assert "would require deleting the following protected related objects: sale hold N-1" in (
        removed.content.decode()
    )
    assert "Orders hold units of this item: keep its variant" in moved.content.decode()
    assert SaleItem.objects.get().variant_id == item.variant_id


# --- Deleting ------------------------------------------------------------------------------------


def test_deleting_a_sale_with_holds_is_refused_with_a_message(superuser_client):
    item = SaleItemFactory(sale=SaleFactory(starts_at=NOW - timedelta(hours=1)))
    sale_units_take(sale_item_id=item.pk, quantity=2, customer_key="user:1", reference="N-1")
    url = f"/admin/catalog/sale/{item.sale_id}/delete/"

    shown = superuser_client.get(url, follow=True)
    posted = superuser_client.post(url, {"post": "yes"}, follow=True)

    for response in (shown, posted):
        assert response.status_code == 200
        assert "This sale cannot be deleted: orders hold or bought its units (1 hold)." in (
            response.content.decode()
        )
    assert Sale.objects.count() == 1


def test_bulk_deleting_sales_with_holds_explains_instead_of_failing(superuser_client):
    item = SaleItemFactory(sale=SaleFactory(starts_at=NOW - timedelta(hours=1)))
    sale_units_take(sale_item_id=item.pk, quantity=2, customer_key="user:1", reference="N-1")

    response = superuser_client.post(
        "/admin/catalog/sale/",
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [str(item.sale_id)], "post": "yes"},
    )

    assert response.status_code == 200
    html = " ".join(response.content.decode().split())
    assert "would require deleting the following protected related objects:" in html
    assert "N-1: 2 × " in html
    assert Sale.objects.count() == 1


def test_a_sale_without_holds_can_be_deleted(superuser_client):
    item = SaleItemFactory()

    response = superuser_client.post(f"/admin/catalog/sale/{item.sale_id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Sale.objects.exists()


# --- The list ------------------------------------------------------------------------------------


def _sales_in_every_state() -> None:
    hour = timedelta(hours=1)
    SaleFactory(name="Upcoming", starts_at=NOW + hour, ends_at=NOW + 2 * hour)
    live = SaleFactory(name="Live", starts_at=NOW - hour, ends_at=NOW + hour)
    SaleFactory(name="Ended", starts_at=NOW - 2 * hour, ends_at=NOW - hour)
    SaleFactory(name="Off", starts_at=NOW - hour, ends_at=NOW + hour, is_active=False)
    SaleItemFactory(sale=live, allotment=10, taken=4)
    SaleItemFactory(sale=live, allotment=5, taken=5)


def test_the_sale_list_shows_status_and_unit_totals(superuser_client):
    _sales_in_every_state()

    response = superuser_client.get("/admin/catalog/sale/")

    rows = {sale.name: sale for sale in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert {name: admin.status(sale) for name, sale in rows.items()} == {
        "Upcoming": "upcoming", "Live": "live", "Ended": "ended", "Off": "switched off",
    }  # fmt: skip
    live = rows["Live"]
    assert (admin.item_count(live), admin.units_allotted(live), admin.units_taken(live),
            admin.units_left(live)) == (2, 15, 9, 6)  # fmt: skip
    assert admin.units_allotted(rows["Ended"]) == 0


@pytest.mark.parametrize(
    ("status", "names"),
    [("upcoming", ["Upcoming"]), ("live", ["Live"]), ("ended", ["Ended"]), ("off", ["Off"])],
)
def test_the_sale_list_filters_by_status(superuser_client, status, names):
    _sales_in_every_state()

    response = superuser_client.get("/admin/catalog/sale/", {"status": status})

    assert [sale.name for sale in response.context["cl"].result_list] == names


def test_searching_sales_by_sku_keeps_the_true_totals(superuser_client):
    item = SaleItemFactory(variant=ProductVariantFactory(sku="BOOT-42"), allotment=8, taken=3)
    SaleItemFactory(sale=item.sale, allotment=2)

    response = superuser_client.get("/admin/catalog/sale/", {"q": "BOOT-42"})

    (sale,) = response.context["cl"].result_list
    assert (sale._allotted, sale._taken, sale._left) == (10, 3, 7)


def test_the_sale_list_queries_do_not_grow_with_the_number_of_rows(superuser_client):
    for _ in range(2):
        SaleItemFactory(sale=SaleFactory())
    superuser_client.get("/admin/catalog/sale/")  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get("/admin/catalog/sale/").status_code == 200

    for _ in range(6):
        sale = SaleFactory()
        SaleItemFactory(sale=sale)
        SaleItemFactory(sale=sale)
    with CaptureQueriesContext(connection) as many:
        response = superuser_client.get("/admin/catalog/sale/")

    assert response.context["cl"].result_count == 8
    assert len(many) == len(few), [query["sql"] for query in many]


# --- Holds and customers, read-only ----------------------------------------------------------


def test_holds_and_customers_are_listed_read_only_with_filters(superuser_client):
    item = SaleItemFactory(
        sale=SaleFactory(name="Summer drop", starts_at=NOW - timedelta(hours=1)),
        variant=ProductVariantFactory(sku="BOOT-42"),
    )
    other = SaleItemFactory(sale=SaleFactory(starts_at=NOW - timedelta(hours=1)))
    sale_units_take(sale_item_id=item.pk, quantity=2, customer_key="user:7", reference="N-100")
    sale_units_take(sale_item_id=other.pk, quantity=1, customer_key="user:8", reference="N-101")
    hold = SaleHold.objects.get(reference="N-100")

    holds = superuser_client.get(
        "/admin/catalog/salehold/", {"sale_item__sale__id__exact": item.sale_id, "status": "held"}
    )
    customers = superuser_client.get(
        "/admin/catalog/salecustomer/", {"sale__id__exact": item.sale_id}
    )
    sale_page = superuser_client.get(f"/admin/catalog/sale/{item.sale_id}/change/")
    hold_page = superuser_client.get(f"/admin/catalog/salehold/{hold.pk}/change/")

    assert [h.reference for h in holds.context["cl"].result_list] == ["N-100"]
    assert "BOOT-42" in holds.content.decode() and "Summer drop" in holds.content.decode()
    assert [(c.customer_key, c.units) for c in customers.context["cl"].result_list] == [
        ("user:7", 2)
    ]
    assert f"/admin/catalog/salehold/?sale_item__sale__id__exact={item.sale_id}" in (
        sale_page.content.decode()
    )
    assert hold_page.status_code == 200
    assert 'type="submit"' not in hold_page.content.decode().split('id="content-main"')[1]
    assert superuser_client.get("/admin/catalog/salehold/add/").status_code == 403
    assert superuser_client.post(f"/admin/catalog/salehold/{hold.pk}/delete/").status_code == 403
    assert SaleCustomer.objects.count() == 2
