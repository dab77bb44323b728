"""The merchant's back office for the catalog (Django admin)."""

import warnings
from decimal import Decimal
from io import BytesIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.paginator import UnorderedObjectListWarning
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from catalog.models import Category, Product, ProductImage, ProductVariant
from catalog.services import product_image_make_thumbnail
from catalog.tests.factories import (
    CategoryFactory,
    ProductFactory,
    ProductImageFactory,
    ProductVariantFactory,
)

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "/admin/catalog/category/",
    "/admin/catalog/product/",
    "/admin/catalog/productvariant/",
]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hash with MD5 here: the production hasher costs about half a second per password."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("owner@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def staff_without_permissions(django_user_model):
    return django_user_model.objects.create_user("clerk@example.com", "pw", is_staff=True)


@pytest.fixture
def merchant_client(client, django_user_model):
    """A staff user who holds every catalog permission, and nothing more."""
    user = django_user_model.objects.create_user("merchant@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="catalog"))
    client.force_login(user)
    return client


@pytest.fixture(params=["superuser", "merchant"])
def catalog_admin_client(request):
    return request.getfixturevalue(f"{request.param}_client")


def _jpeg(name: str = "boot.jpg", size: tuple[int, int] = (1200, 900)) -> SimpleUploadedFile:
    buffer = BytesIO()
    Image.new("RGB", size, "teal").save(buffer, format="JPEG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def _product_form(category: Category, *, variants=(), images=(), **fields) -> dict:
    """Return the POST data of the product add page, with its two inlines."""
    data = {
        "name": "Trail Boot",
        "slug": "trail-boot",
        "category": str(category.pk),
        "brand": "Northwind",
        "description": "Waterproof.",
        "is_active": "on",
        "variants-TOTAL_FORMS": str(len(variants)),
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        "images-TOTAL_FORMS": str(len(images)),
        "images-INITIAL_FORMS": "0",
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
        "_save": "Save",
        **fields,
    }
    for index, variant in enumerate(variants):
        values = {"options": "{}", "is_active": "on", "position": "0", **variant}
        data.update({f"variants-{index}-{key}": value for key, value in values.items()})
    for index, image in enumerate(images):
        values = {"alt_text": "", "position": "0", **image}
        data.update({f"images-{index}-{key}": value for key, value in values.items()})
    return data


def _media_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    if not root.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _variant_list_form(variants) -> dict:
    """Return the POST data of the variant changelist's editable columns."""
    data = {
        "form-TOTAL_FORMS": str(len(variants)),
        "form-INITIAL_FORMS": str(len(variants)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, variant in enumerate(variants):
        values = {
            "id": str(variant.pk),
            "price": str(variant.price),
            "stock": str(variant.stock),
            "is_active": "on",
        }
        data.update({f"form-{index}-{key}": value for key, value in values.items()})
    return data


# --- Who may enter -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", *CHANGELISTS])
def test_anonymous_visitors_are_sent_to_the_admin_login(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


@pytest.mark.parametrize("path", ["/admin/", *CHANGELISTS])
def test_customers_are_sent_to_the_admin_login(client, django_user_model, path):
    customer = django_user_model.objects.create_user("customer@example.com", "pw")
    client.force_login(customer)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


@pytest.mark.parametrize("path", CHANGELISTS)
def test_staff_without_catalog_permissions_are_refused(client, staff_without_permissions, path):
    client.force_login(staff_without_permissions)

    response = client.get(path)

    assert response.status_code == 403


def test_staff_without_catalog_permissions_cannot_use_the_category_autocomplete(
    client, staff_without_permissions
):
    CategoryFactory(name="Boots")
    client.force_login(staff_without_permissions)

    response = client.get(
        "/admin/autocomplete/",
        {"app_label": "catalog", "model_name": "product", "field_name": "category", "term": "B"},
    )

    assert response.status_code == 403


def test_staff_without_catalog_permissions_cannot_run_a_bulk_action(
    client, staff_without_permissions
):
    product = ProductFactory(is_active=True)
    client.force_login(staff_without_permissions)

    response = client.post(
        "/admin/catalog/product/",
        {"action": "make_inactive", ACTION_CHECKBOX_NAME: [str(product.pk)], "index": "0"},
    )

    assert response.status_code == 403
    product.refresh_from_db()
    assert product.is_active is True


# --- Changelists and forms -----------------------------------------------------------------


def test_category_changelist_lists_categories_with_product_counts(catalog_admin_client):
    boots = CategoryFactory(name="Boots")
    CategoryFactory(name="Hiking boots", parent=boots)
    CategoryFactory(name="Tents")
    ProductFactory.create_batch(2, category=boots)

    response = catalog_admin_client.get("/admin/catalog/category/")

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert changelist.result_count == 3
    counts = {category.name: category._product_count for category in changelist.result_list}
    assert counts == {"Boots": 2, "Hiking boots": 0, "Tents": 0}


def test_product_changelist_shows_price_with_currency_and_total_stock(catalog_admin_client):
    ProductFactory(
        name="Trail Boot",
        variants=[{"price": Decimal("24.00"), "stock": 7}, {"price": "19.99", "stock": 8}],
    )
    ProductFactory(name="Camp Mug", variants=[{"price": Decimal("6.50"), "stock": 3}])
    ProductFactory(name="Tent", variants=[{"price": Decimal("199.00"), "stock": 40}])

    response = catalog_admin_client.get("/admin/catalog/product/")

    assert response.status_code == 200
    assert response.context["cl"].result_count == 3
    content = response.content.decode()
    assert "from €19.99" in content
    assert "from €6.50" in content
    assert "from €199.00" in content
    assert '<td class="field-stock">15</td>' in content
    assert '<strong style="color:#b45309">3 · low</strong>' in content
    assert '<td class="field-stock">40</td>' in content


def test_variant_changelist_lists_every_variant_with_its_stock_status(catalog_admin_client):
    product = ProductFactory(name="Trail Boot", variants=[])
    ProductVariantFactory(product=product, sku="BOOT-42", stock=12, options={"size": "42"})
    ProductVariantFactory(product=product, sku="BOOT-43", stock=2, options={"size": "43"})
    ProductVariantFactory(product=product, sku="BOOT-44", stock=5, options={})

    response = catalog_admin_client.get("/admin/catalog/productvariant/")

    assert response.status_code == 200
    changelist = response.context["cl"]
    # Lowest stock first, so what needs restocking is on top.
    assert [variant.sku for variant in changelist.result_list] == ["BOOT-43", "BOOT-44", "BOOT-42"]
    content = response.content.decode()
    assert '<strong style="color:#b45309">2 · low</strong>' in content
    assert '<strong style="color:#b45309">5 · low</strong>' in content
    assert '<td class="field-stock_status">12</td>' in content


def _add_rows(path: str, count: int) -> None:
    for _ in range(count):
        if path == "/admin/catalog/category/":
            CategoryFactory(parent=CategoryFactory())
        else:
            ProductFactory(variants=[{"stock": 9}, {"stock": 12}])


@pytest.mark.parametrize("path", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_the_number_of_rows(superuser_client, path):
    _add_rows(path, 2)
    superuser_client.get(path)  # warm the session and content-type caches
    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get(path).status_code == 200

    _add_rows(path, 4)
    with CaptureQueriesContext(connection) as many:
        response = superuser_client.get(path)

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 6
    assert len(many) == len(few), [query["sql"] for query in many]


def test_variant_changelist_marks_variants_without_stock_as_out_of_stock(
    catalog_admin_client,
):
    product = ProductFactory(variants=[])
    ProductVariantFactory(product=product, sku="BOOT-42", stock=0)
    ProductVariantFactory(product=product, sku="BOOT-43", stock=9)

    response = catalog_admin_client.get("/admin/catalog/productvariant/")

    assert response.status_code == 200
    assert response.content.decode().count("0 · out of stock") == 1


def test_product_changelist_marks_products_without_stock_as_out_of_stock(catalog_admin_client):
    ProductFactory(variants=[{"stock": 0}, {"stock": 0}])
    ProductFactory(variants=[])
    ProductFactory(variants=[{"stock": 30}])

    response = catalog_admin_client.get("/admin/catalog/product/")

    assert response.status_code == 200
    assert response.content.decode().count("0 · out of stock") == 2


def test_product_add_page_offers_both_inlines(catalog_admin_client):
    response = catalog_admin_client.get("/admin/catalog/product/add/")

    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="variants-TOTAL_FORMS"' in content
    assert 'name="variants-0-sku"' in content
    assert 'name="images-TOTAL_FORMS"' in content
    assert 'name="images-0-image"' in content


def test_product_change_page_shows_price_variants_and_thumbnail(catalog_admin_client):
    product = ProductFactory(
        name="Trail Boot",
        variants=[{"sku": "BOOT-42", "price": Decimal("24.00")}, {"price": Decimal("19.99")}],
    )
    image = ProductImageFactory(product=product, alt_text="Side view")
    product_image_make_thumbnail(image=image)

    response = catalog_admin_client.get(f"/admin/catalog/product/{product.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert '<div class="readonly">from €19.99</div>' in content
    assert 'value="BOOT-42"' in content
    image.refresh_from_db()
    assert f'<img src="{image.thumbnail.url}" alt="Side view"' in content


# --- Adding a product ----------------------------------------------------------------------


def test_adding_a_product_with_variants_and_an_image_prices_it_and_makes_a_thumbnail(
    catalog_admin_client, settings
):
    category = CategoryFactory()
    data = _product_form(
        category,
        variants=[
            {"sku": "BOOT-42", "options": '{"size": "42"}', "price": "24.00", "stock": "7"},
            {"sku": "BOOT-43", "options": '{"size": "43"}', "price": "19.99", "stock": "0"},
            # A hidden variant does not count towards the price.
            {"sku": "BOOT-44", "price": "9.99", "stock": "3", "is_active": ""},
        ],
        images=[{"image": _jpeg(size=(1200, 900)), "alt_text": "Side view"}],
    )

    response = catalog_admin_client.post("/admin/catalog/product/add/", data)

    assert response.status_code == 302, response.context["errors"]
    product = Product.objects.get()
    assert response["Location"] == "/admin/catalog/product/"
    assert (product.name, product.slug, product.category) == ("Trail Boot", "trail-boot", category)
    assert product.price_from == Decimal("19.99")
    assert product.currency == "EUR"
    variants = {variant.sku: variant for variant in product.variants.all()}
    assert sorted(variants) == ["BOOT-42", "BOOT-43", "BOOT-44"]
    assert variants["BOOT-42"].options == {"size": "42"}
    assert (variants["BOOT-43"].price, variants["BOOT-43"].stock) == (Decimal("19.99"), 0)
    assert variants["BOOT-44"].is_active is False
    image = product.images.get()
    assert (image.width, image.height, image.alt_text) == (1200, 900, "Side view")
    assert image.thumbnail.name.endswith("-thumb.jpg")
    thumbnail_path = settings.MEDIA_ROOT / image.thumbnail.name
    assert thumbnail_path.is_file()
    with Image.open(thumbnail_path) as thumbnail:
        assert thumbnail.format == "JPEG"
        assert thumbnail.size == (480, 360)


def test_adding_a_product_without_active_variants_leaves_it_unpriced(catalog_admin_client):
    category = CategoryFactory()

    response = catalog_admin_client.post("/admin/catalog/product/add/", _product_form(category))

    assert response.status_code == 302
    product = Product.objects.get()
    assert product.price_from is None
    assert product.variants.count() == 0


def test_uploading_a_file_that_is_not_an_image_is_refused_and_creates_nothing(
    catalog_admin_client, settings
):
    category = CategoryFactory()
    not_an_image = SimpleUploadedFile(
        "boot.jpg", b"%PDF-1.4 definitely not a picture", content_type="image/jpeg"
    )
    data = _product_form(
        category,
        variants=[{"sku": "BOOT-42", "price": "24.00", "stock": "7"}],
        images=[{"image": not_an_image}],
    )

    response = catalog_admin_client.post("/admin/catalog/product/add/", data)

    assert response.status_code == 200
    image_form = response.context["inline_admin_formsets"][1].formset.forms[0]
    assert image_form.errors["image"] == [
        "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
    ]
    assert Product.objects.count() == 0
    assert ProductVariant.objects.count() == 0
    assert ProductImage.objects.count() == 0
    assert _media_files(settings) == []


def test_uploading_an_image_in_a_format_the_shop_does_not_serve_is_refused(
    catalog_admin_client, settings
):
    category = CategoryFactory()
    buffer = BytesIO()
    Image.new("RGB", (40, 40), "teal").save(buffer, format="BMP")
    bitmap = SimpleUploadedFile("boot.bmp", buffer.getvalue(), content_type="image/bmp")

    response = catalog_admin_client.post(
        "/admin/catalog/product/add/", _product_form(category, images=[{"image": bitmap}])
    )

    assert response.status_code == 200
    image_form = response.context["inline_admin_formsets"][1].formset.forms[0]
    assert image_form.errors["image"] == ["Upload a JPEG, PNG, WebP or GIF image."]
    assert Product.objects.count() == 0
    assert _media_files(settings) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stock", "-1", "Ensure this value is greater than or equal to 0."),
        ("price", "-0.01", "Ensure this value is greater than or equal to 0."),
        ("price", "NaN", "Enter a number."),
    ],
)
def test_a_variant_with_a_negative_amount_is_refused_and_creates_nothing(
    catalog_admin_client, field, value, message
):
    category = CategoryFactory()
    variant = {"sku": "BOOT-42", "price": "24.00", "stock": "7", field: value}

    response = catalog_admin_client.post(
        "/admin/catalog/product/add/", _product_form(category, variants=[variant])
    )

    assert response.status_code == 200
    variant_form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert variant_form.errors[field] == [message]
    assert Product.objects.count() == 0
    assert ProductVariant.objects.count() == 0


def test_a_duplicate_sku_is_refused_and_creates_nothing(catalog_admin_client):
    ProductVariantFactory(sku="BOOT-42")
    category = CategoryFactory()

    response = catalog_admin_client.post(
        "/admin/catalog/product/add/",
        _product_form(category, variants=[{"sku": "BOOT-42", "price": "1.00", "stock": "1"}]),
    )

    assert response.status_code == 200
    variant_form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert variant_form.errors["sku"] == ["Product variant with this SKU already exists."]
    assert Product.objects.count() == 1
    assert ProductVariant.objects.count() == 1


# --- Bulk actions --------------------------------------------------------------------------


def test_make_inactive_hides_exactly_the_selected_products(catalog_admin_client):
    first, second, untouched = ProductFactory.create_batch(3, is_active=True)

    response = catalog_admin_client.post(
        "/admin/catalog/product/",
        {
            "action": "make_inactive",
            ACTION_CHECKBOX_NAME: [str(first.pk), str(second.pk)],
            "index": "0",
        },
    )

    assert response.status_code == 302
    assert dict(Product.objects.values_list("pk", "is_active")) == {
        first.pk: False,
        second.pk: False,
        untouched.pk: True,
    }


def test_make_active_shows_exactly_the_selected_products(catalog_admin_client):
    first, second, untouched = ProductFactory.create_batch(3, is_active=False)

    response = catalog_admin_client.post(
        "/admin/catalog/product/",
        {"action": "make_active", ACTION_CHECKBOX_NAME: [str(second.pk)], "index": "0"},
    )

    assert response.status_code == 302
    assert dict(Product.objects.values_list("pk", "is_active")) == {
        first.pk: False,
        second.pk: True,
        untouched.pk: False,
    }


def test_a_bulk_action_without_a_selection_changes_nothing(catalog_admin_client):
    ProductFactory.create_batch(2, is_active=True)

    response = catalog_admin_client.post(
        "/admin/catalog/product/", {"action": "make_inactive", "index": "0"}
    )

    assert response.status_code == 302
    assert list(Product.objects.values_list("is_active", flat=True)) == [True, True]


# --- Editing stock and prices from the variant list ----------------------------------------


def test_editing_stock_in_the_variant_list_saves_it(catalog_admin_client):
    product = ProductFactory(variants=[])
    boot_42 = ProductVariantFactory(product=product, sku="BOOT-42", stock=7)
    boot_43 = ProductVariantFactory(product=product, sku="BOOT-43", stock=9)

    data = _variant_list_form([boot_42, boot_43])
    data["form-0-stock"] = "25"

    response = catalog_admin_client.post("/admin/catalog/productvariant/", data)

    assert response.status_code == 302
    assert dict(ProductVariant.objects.values_list("sku", "stock")) == {
        "BOOT-42": 25,
        "BOOT-43": 9,
    }


def test_changing_a_price_in_the_variant_list_refreshes_the_products_price_from(
    catalog_admin_client,
):
    product = ProductFactory(
        variants=[{"sku": "BOOT-42", "price": Decimal("24.00")}, {"sku": "BOOT-43"}]
    )
    assert product.price_from == Decimal("19.99")
    variants = list(ProductVariant.objects.order_by("sku"))
    data = _variant_list_form(variants)
    data["form-0-price"] = "12.50"

    response = catalog_admin_client.post("/admin/catalog/productvariant/", data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.price_from == Decimal("12.50")


def test_hiding_the_cheapest_variant_in_the_list_refreshes_the_price_from(catalog_admin_client):
    product = ProductFactory(
        variants=[{"sku": "BOOT-42", "price": Decimal("24.00")}, {"sku": "BOOT-43"}]
    )
    variants = list(ProductVariant.objects.order_by("sku"))
    data = _variant_list_form(variants)
    data["form-1-is_active"] = ""

    response = catalog_admin_client.post("/admin/catalog/productvariant/", data)

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.price_from == Decimal("24.00")


def test_negative_stock_in_the_variant_list_is_refused_and_nothing_changes(
    catalog_admin_client,
):
    product = ProductFactory(variants=[{"sku": "BOOT-42", "stock": 7, "price": Decimal("9")}])
    variant = product.variants.get()
    data = _variant_list_form([variant])
    data["form-0-stock"] = "-3"
    data["form-0-price"] = "1.00"

    response = catalog_admin_client.post("/admin/catalog/productvariant/", data)

    assert response.status_code == 200
    assert response.context["cl"].formset.errors == [
        {"stock": ["Ensure this value is greater than or equal to 0."]}
    ]
    variant.refresh_from_db()
    product.refresh_from_db()
    assert (variant.stock, variant.price) == (7, Decimal("9.00"))
    assert product.price_from == Decimal("9.00")


# --- Keeping price_from right when variants go away or move ---------------------------------


def test_deleting_the_cheapest_variant_in_the_product_form_refreshes_price_from(
    catalog_admin_client,
):
    product = ProductFactory(
        name="Trail Boot",
        slug="trail-boot",
        variants=[{"sku": "CHEAP", "price": Decimal("5")}, {"sku": "DEAR", "price": Decimal("9")}],
    )
    cheap, dear = product.variants.order_by("sku")
    data = _product_form(product.category, name=product.name, slug=product.slug)
    data.update({"variants-TOTAL_FORMS": "2", "variants-INITIAL_FORMS": "2"})
    for index, variant in enumerate([cheap, dear]):
        data.update(
            {
                f"variants-{index}-id": str(variant.pk),
                f"variants-{index}-product": str(product.pk),
                f"variants-{index}-sku": variant.sku,
                f"variants-{index}-options": "{}",
                f"variants-{index}-price": str(variant.price),
                f"variants-{index}-stock": str(variant.stock),
                f"variants-{index}-is_active": "on",
                f"variants-{index}-position": "0",
            }
        )
    data["variants-0-DELETE"] = "on"

    response = catalog_admin_client.post(f"/admin/catalog/product/{product.pk}/change/", data)

    assert response.status_code == 302
    assert list(product.variants.values_list("sku", flat=True)) == ["DEAR"]
    product.refresh_from_db()
    assert product.price_from == Decimal("9.00")


def test_deleting_the_cheapest_variant_in_the_variant_admin_refreshes_price_from(
    catalog_admin_client,
):
    product = ProductFactory(
        variants=[{"sku": "CHEAP", "price": Decimal("5")}, {"sku": "DEAR", "price": Decimal("9")}]
    )
    cheap = product.variants.get(sku="CHEAP")

    response = catalog_admin_client.post(
        f"/admin/catalog/productvariant/{cheap.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert list(product.variants.values_list("sku", flat=True)) == ["DEAR"]
    product.refresh_from_db()
    assert product.price_from == Decimal("9.00")


def test_bulk_deleting_variants_refreshes_price_from(catalog_admin_client):
    product = ProductFactory(
        variants=[{"sku": "CHEAP", "price": Decimal("5")}, {"sku": "DEAR", "price": Decimal("9")}]
    )
    cheap = product.variants.get(sku="CHEAP")

    response = catalog_admin_client.post(
        "/admin/catalog/productvariant/",
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [str(cheap.pk)], "post": "yes"},
    )

    assert response.status_code == 302
    assert list(product.variants.values_list("sku", flat=True)) == ["DEAR"]
    product.refresh_from_db()
    assert product.price_from == Decimal("9.00")


def test_moving_a_variant_to_another_product_refreshes_both_prices(catalog_admin_client):
    source = ProductFactory(
        variants=[{"sku": "CHEAP", "price": Decimal("5")}, {"sku": "DEAR", "price": Decimal("9")}]
    )
    target = ProductFactory(variants=[{"sku": "OTHER", "price": Decimal("7")}])
    cheap = source.variants.get(sku="CHEAP")

    response = catalog_admin_client.post(
        f"/admin/catalog/productvariant/{cheap.pk}/change/",
        {
            "product": str(target.pk),
            "sku": "CHEAP",
            "options": "{}",
            "price": "5.00",
            "stock": str(cheap.stock),
            "is_active": "on",
            "position": "0",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    source.refresh_from_db()
    target.refresh_from_db()
    assert target.price_from == Decimal("5.00")
    assert source.price_from == Decimal("9.00")


# --- Autocomplete and search ---------------------------------------------------------------


def test_category_autocomplete_finds_categories_by_name(catalog_admin_client):
    boots = CategoryFactory(name="Boots", slug="boots")
    CategoryFactory(name="Tents", slug="tents")

    response = catalog_admin_client.get(
        "/admin/autocomplete/",
        {"app_label": "catalog", "model_name": "product", "field_name": "category", "term": "bo"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "results": [{"id": str(boots.pk), "text": "Boots"}],
        "pagination": {"more": False},
    }


def test_category_autocomplete_pages_through_an_ordered_list(catalog_admin_client):
    CategoryFactory(name="Boots")

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnorderedObjectListWarning)
        response = catalog_admin_client.get(
            "/admin/autocomplete/",
            {"app_label": "catalog", "model_name": "product", "field_name": "category"},
        )

    assert response.status_code == 200


def test_product_search_by_sku_finds_the_product_once(catalog_admin_client):
    ProductFactory(
        name="Trail Boot",
        variants=[{"sku": "BOOT-42", "stock": 7}, {"sku": "BOOT-43", "stock": 8}],
    )
    ProductFactory(name="Camp Mug", variants=[{"sku": "MUG-1", "stock": 9}])

    response = catalog_admin_client.get("/admin/catalog/product/", {"q": "BOOT-4"})

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert changelist.result_count == 1
    assert [product.name for product in changelist.result_list] == ["Trail Boot"]


@pytest.mark.parametrize("term", ["BOOT-4", "Trail"])
def test_product_search_shows_the_true_total_stock(catalog_admin_client, term):
    ProductFactory(
        name="Trail Boot",
        variants=[{"sku": "BOOT-42", "stock": 7}, {"sku": "BOOT-43", "stock": 8}],
    )

    response = catalog_admin_client.get("/admin/catalog/product/", {"q": term})

    assert response.status_code == 200
    assert [product._stock for product in response.context["cl"].result_list] == [15]
    assert '<td class="field-stock">15</td>' in response.content.decode()


def test_variant_search_by_sku_finds_the_variant(catalog_admin_client):
    ProductVariantFactory(sku="BOOT-42", stock=7)
    ProductVariantFactory(sku="MUG-1", stock=7)

    response = catalog_admin_client.get("/admin/catalog/productvariant/", {"q": "boot-42"})

    assert response.status_code == 200
    assert [variant.sku for variant in response.context["cl"].result_list] == ["BOOT-42"]


# --- The category tree ---------------------------------------------------------------------


def _category_form(category: Category, parent: Category | None) -> dict:
    return {
        "name": category.name,
        "slug": category.slug,
        "parent": str(parent.pk) if parent else "",
        "description": category.description,
        "position": str(category.position),
        "is_active": "on" if category.is_active else "",
        "_save": "Save",
    }


def test_a_category_cannot_move_under_its_own_descendant(catalog_admin_client):
    outdoor = CategoryFactory(name="Outdoor")
    boots = CategoryFactory(name="Boots", parent=outdoor)
    hiking = CategoryFactory(name="Hiking boots", parent=boots)

    response = catalog_admin_client.post(
        f"/admin/catalog/category/{outdoor.pk}/change/", _category_form(outdoor, parent=hiking)
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"] == [
        "A category cannot sit inside itself or one of its subcategories."
    ]
    assert dict(Category.objects.values_list("name", "parent")) == {
        "Outdoor": None,
        "Boots": outdoor.pk,
        "Hiking boots": boots.pk,
    }


def test_a_category_cannot_be_its_own_parent(catalog_admin_client):
    boots = CategoryFactory(name="Boots")

    response = catalog_admin_client.post(
        f"/admin/catalog/category/{boots.pk}/change/", _category_form(boots, parent=boots)
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"] == [
        "A category cannot sit inside itself or one of its subcategories."
    ]
    boots.refresh_from_db()
    assert boots.parent is None


def test_a_category_can_move_to_another_branch(catalog_admin_client):
    outdoor = CategoryFactory(name="Outdoor")
    boots = CategoryFactory(name="Boots", parent=outdoor)
    footwear = CategoryFactory(name="Footwear")

    response = catalog_admin_client.post(
        f"/admin/catalog/category/{boots.pk}/change/", _category_form(boots, parent=footwear)
    )

    assert response.status_code == 302
    boots.refresh_from_db()
    assert boots.parent == footwear


# --- Stock edits never write back units sold meanwhile ---------------------------------------


def test_variant_pages_carry_the_stock_they_show(catalog_admin_client):
    variant = ProductVariantFactory(stock=10)

    change_page = catalog_admin_client.get(f"/admin/catalog/productvariant/{variant.pk}/change/")
    list_page = catalog_admin_client.get("/admin/catalog/productvariant/")

    assert 'name="initial-stock" value="10"' in change_page.content.decode()
    assert 'name="initial-form-0-stock" value="10"' in list_page.content.decode()


def test_a_stock_edit_in_the_list_keeps_the_units_sold_while_the_page_was_open(
    catalog_admin_client,
):
    # Given the list was shown with 10 on hand, and then a checkout took 3
    variant = ProductVariantFactory(sku="BOOT-42", stock=10)
    data = _variant_list_form([variant])
    data["form-0-stock"] = "15"  # the merchant adds 5
    data["initial-form-0-stock"] = "10"
    ProductVariant.objects.filter(pk=variant.pk).update(stock=7)

    # When the merchant saves
    response = catalog_admin_client.post("/admin/catalog/productvariant/", data)

    # Then the 5 are added to what is on hand now: the sale is not undone
    assert response.status_code == 302
    variant.refresh_from_db()
    assert variant.stock == 12


def test_a_price_edit_does_not_write_back_an_old_stock(catalog_admin_client):
    variant = ProductVariantFactory(sku="BOOT-42", stock=10, price=Decimal("20.00"))
    data = _variant_list_form([variant])
    data["form-0-price"] = "18.00"
    data["initial-form-0-stock"] = "10"
    ProductVariant.objects.filter(pk=variant.pk).update(stock=7)

    catalog_admin_client.post("/admin/catalog/productvariant/", data)

    variant.refresh_from_db()
    assert (variant.price, variant.stock) == (Decimal("18.00"), 7)


def test_a_stock_cut_larger_than_what_is_left_stops_at_zero_with_a_warning(superuser_client):
    variant = ProductVariantFactory(sku="BOOT-42", stock=10)
    data = {
        "product": str(variant.product_id),
        "sku": "BOOT-42",
        "options": "{}",
        "price": "19.99",
        "stock": "3",  # the merchant removes 7 of the 10 shown
        "initial-stock": "10",
        "is_active": "on",
        "position": "0",
        "_save": "Save",
    }
    ProductVariant.objects.filter(pk=variant.pk).update(stock=2)  # 8 sold meanwhile

    response = superuser_client.post(
        f"/admin/catalog/productvariant/{variant.pk}/change/", data, follow=True
    )

    variant.refresh_from_db()
    assert variant.stock == 0
    assert "BOOT-42: units were sold while you edited; its stock is now 0, not below." in (
        response.content.decode()
    )


def test_a_stock_edit_in_the_product_page_keeps_the_units_sold_meanwhile(superuser_client):
    product = ProductFactory(variants=[{"sku": "BOOT-42", "stock": 10}])
    variant = product.variants.get()
    data = _product_form(
        product.category,
        name=product.name,
        slug=product.slug,
        variants=[
            {"id": str(variant.pk), "product": str(product.pk), "sku": "BOOT-42",
             "price": "19.99", "stock": "14"},
        ],
    )  # fmt: skip
    data["variants-INITIAL_FORMS"] = "1"
    data["initial-variants-0-stock"] = "10"  # what the page showed
    ProductVariant.objects.filter(pk=variant.pk).update(stock=6)

    response = superuser_client.post(f"/admin/catalog/product/{product.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    variant.refresh_from_db()
    assert variant.stock == 10  # 6 on hand + the 4 added
