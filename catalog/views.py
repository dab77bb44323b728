"""Catalog pages: home, category listing, product detail and search. Thin: parse, select, render."""

from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from catalog import selectors
from catalog.context_processors import category_tree_for_request
from catalog.forms import ProductFilterForm, SearchForm
from catalog.models import Product
from catalog.seo import meta_description, product_structured_data


def _page(request: HttpRequest, products):
    """Return the requested page; a page number that is not a number or out of range is
    answered with the first or last page, never an error."""
    return Paginator(products, settings.SHOP_PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))


def _canonical(request: HttpRequest, path: str, page_number: int) -> str:
    suffix = f"?page={page_number}" if page_number > 1 else ""
    return request.build_absolute_uri(path + suffix)


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "catalog/home.html",
        {
            "featured_products": selectors.product_cards_with_sale(
                selectors.product_list_featured()
            ),
            "new_products": selectors.product_cards_with_sale(selectors.product_list_newest()),
            "canonical_url": request.build_absolute_uri("/"),
        },
    )


@require_safe
def category_detail(request: HttpRequest, slug: str) -> HttpResponse:
    tree = category_tree_for_request(request)
    category = tree.get(slug)
    if category is None:
        raise Http404("No such category.")
    form = ProductFilterForm(request.GET)
    filters = form.filters()
    products = selectors.product_cards_with_sale(
        selectors.product_list(category_ids=tree.descendant_ids(category), **filters)
    )
    page = _page(request, products)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "catalog/category_detail.html",
        {
            "category": category,
            "ancestors": tree.ancestors(category),
            "subcategories": category.tree_children,
            "form": form,
            "sort": filters["sort"],
            "page_obj": page,
            "query_string": query.urlencode(),
            "canonical_url": _canonical(request, category.get_absolute_url(), page.number),
            "meta_description": meta_description(
                category.description, fallback=f"Shop {category.name} at {settings.SHOP_NAME}."
            ),
        },
    )


@require_safe
def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        page = selectors.product_page(slug=slug)
    except Product.DoesNotExist:
        raise Http404("No such product.") from None
    product, variants = page.product, page.variants
    for variant in variants:
        variant.sale = page.offers.get(variant.pk)
    chosen = next((v for v in variants if str(v.pk) == request.GET.get("variant", "")), None)
    if chosen is None:
        chosen = next((v for v in variants if v.stock > 0), variants[0] if variants else None)
    tree = category_tree_for_request(request)
    category = tree.by_id.get(product.category_id)
    return render(
        request,
        "catalog/product_detail.html",
        {
            "product": product,
            "variants": variants,
            "chosen_variant": chosen,
            "sale": chosen.sale if chosen else None,
            "images": page.images,
            "ancestors": ([*tree.ancestors(category), category] if category else []),
            "canonical_url": request.build_absolute_uri(product.get_absolute_url()),
            "meta_description": meta_description(product.description, fallback=product.name),
            "structured_data": product_structured_data(request, product, sale_offers=page.offers),
        },
    )


@require_safe
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    query = form.query()
    products = selectors.product_cards_with_sale(selectors.product_search(query=query))
    page = _page(request, products) if query else None
    return render(
        request,
        "catalog/search.html",
        {
            "form": form,
            "query": query,
            "page_obj": page,
            "query_string": urlencode({"q": query}) if query else "",
            "canonical_url": request.build_absolute_uri(request.path),
        },
    )
